"""The ``interplab steer`` page in headless Chromium: the fluency table (KL and perplexity per
intervention, numbers as in the JSON), the greedy continuations, and the non-monotonic note."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from tests.cli.test_steer_cmd import tiny_lm  # noqa: F401  (fixture)
from tests.report.browser import Browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_steer_page_shows_fluency_and_non_monotonic_note(tiny_lm, tmp_path):  # noqa: F811
    from interplab.cli.steer_cmd import monotonicity_notes
    from interplab.report.steering import steering_report

    out = tmp_path / "s.json"
    res = CliRunner().invoke(
        app,
        ["steer", "tiny", "--alpha", "1,2", "--n-prompts", "6", "--n-fit", "8", "--random", "1"]
        + ["--threads", "1", "--no-progress", "--json", str(out)],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    # make +2 weaker than +1 whatever the random tiny model did, so the note must be drawn
    summary = data["summary"]
    rows = {(r["kind"], r["alpha"]): r for r in summary["rows"]}
    one = rows[("add", 1.0)]["mean_log_odds"]
    rows[("add", 2.0)]["mean_log_odds"] = {**one, "value": one["value"] - 1.0}
    data["notes"] = [n for n in data["notes"] if not n.startswith("Not monotonic")]
    data["notes"] += monotonicity_notes(summary)
    page = tmp_path / "s.html"
    page.write_text(steering_report(data, summary), encoding="utf-8")
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = json.loads(
            browser.evaluate("""JSON.stringify({
            rows: [...document.querySelectorAll('#fluency tr.fluency-row')].map(r => [
                r.children[0].innerText, r.querySelector('.kl').innerText,
                r.querySelector('.ppl').innerText, r.getBoundingClientRect().height > 0]),
            samples: [...document.querySelectorAll('pre.sample')].filter(
                p => p.getBoundingClientRect().height > 0).length,
            note: [...document.querySelectorAll('li.nonmonotonic')].map(l => l.innerText),
            resources: performance.getEntriesByType('resource').map(r => r.name)})""")
        )
        want = data["fluency"]["rows"]
        assert [r[0] for r in stats["rows"]] == [r["label"] for r in want]
        for shown, r in zip(stats["rows"], want):
            assert shown[1].startswith(f"{r['kl']['value']:.3f}")
            assert shown[2] == f"{r['perplexity']:.2f}" and shown[3]
        assert stats["samples"] == 3 * len(want)
        assert any(n.startswith("Not monotonic in alpha: +2 x gap") for n in stats["note"])
        assert stats["resources"] == [] and browser.errors() == []
    finally:
        browser.close()
