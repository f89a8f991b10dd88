"""The ``interplab failure`` page and the failures report section render in a real headless
Chromium: no console errors, no external URLs, the clean vs adversarial input drawn, the units
that carried the failure listed, and the restoration check shown."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from tests.report.browser import Browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]

_SVG_NS = "http://www.w3.org/2000/svg"


def _external_urls(text: str) -> list[str]:
    return [u for u in re.findall(r"(?:https?:)?//[^\s'\"<>)]+", text.replace(_SVG_NS, ""))]


def _stats(browser: Browser) -> dict:
    return json.loads(
        browser.evaluate("""JSON.stringify({
        drawn: [...document.querySelectorAll('#inputs svg, #inputs .tok')].filter(
            e => e.getBoundingClientRect().width > 5 && e.getBoundingClientRect().height > 5).length,
        inputs: document.querySelectorAll('#inputs .input').length,
        changed: document.querySelectorAll('#inputs .tok.changed').length,
        units: [...document.querySelectorAll('#units tr.unit td:first-child')].map(t => t.textContent),
        check: (document.getElementById('restoration') || {}).textContent || '',
        truth: (document.getElementById('truth') || {}).textContent || '',
        truthVisible: !!document.getElementById('truth') &&
            document.getElementById('truth').getBoundingClientRect().height > 0,
        baselines: [...document.querySelectorAll('#baselines tr')].map(r => r.textContent),
        font: getComputedStyle(document.body).fontFamily,
        resources: performance.getEntriesByType('resource').map(r => r.name)})""")
    )


@pytest.mark.parametrize(
    "model,args,n_units",
    [
        ("twin-patch-digits", ["--index", "3", "--eps", "0.2"], 16),
        ("trojan-token", ["--index", "2"], 2),
    ],
)
def test_failure_page_renders_in_chromium(tmp_path, model, args, n_units):
    page = tmp_path / "failure.html"
    res = CliRunner().invoke(app, ["failure", model, *args, "--html", str(page), "--json", "-"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["success"], "the page test needs an input the attack flips"
    assert _external_urls(page.read_text()) == []
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = _stats(browser)
        assert stats["inputs"] >= 2  # clean and adversarial side by side
        if data["kind"] == "digits":
            assert stats["drawn"] == 3  # clean, adversarial, difference
        else:
            assert stats["drawn"] == 16 and stats["changed"] == 2 * data["swaps"]
        assert stats["units"] == data["units"] and len(stats["units"]) == n_units
        assert "Restoration check" in stats["check"]
        # site-named units, the planted truth beside them, the baselines, the shared style
        assert all(u.startswith(("L0.mlp[", "L0.H")) for u in stats["units"])
        assert stats["truthVisible"]
        if data["truth_units"]:
            assert all(u in stats["truth"] for u in data["truth_units"])
        else:
            assert "clean twin" in stats["truth"]
        assert any("random sets" in r and "Wilson" in r for r in stats["baselines"])
        assert any("activation_change" in r for r in stats["baselines"])
        assert "system-ui" in stats["font"]
        assert ("restores" if data["restored"] else "does not restore") in stats["check"]
        assert stats["resources"] == []
        assert browser.errors() == []
    finally:
        browser.close()


def test_failures_report_section_renders_in_chromium(tmp_path):
    from interplab.bench.store import ResultsStore
    from interplab.bench.tracks import Job, get_track
    from interplab.report.html import build_html

    tr = get_track("failures")
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for method in ("random", "attribution"):
            job = Job("failures", "trojan-patch-digits", method, None, 0)
            out = tr.run(job)
            rows = [r.for_job(job, 1.0).as_dict() for r in out.rows]
            store.record(job, rows, out.artifacts, 1.0)
        text = build_html(store, "failures")
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    assert _external_urls(text) == []
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = json.loads(
            browser.evaluate("""JSON.stringify({
            heading: !!document.getElementById('failures-track'),
            triggers: [...document.querySelectorAll('.card svg')].filter(
                s => s.getBoundingClientRect().width > 50 && /trigger|mask/.test(s.getAttribute('aria-label'))).length,
            rows: [...document.querySelectorAll('table tr')].filter(
                r => /trojan-patch-digits/.test(r.textContent) && /n=/.test(r.textContent)).length,
            resources: performance.getEntriesByType('resource').map(r => r.name)})""")
        )
        assert stats["heading"] and stats["triggers"] == 3 and stats["rows"] >= 1
        assert stats["resources"] == []
        assert browser.errors() == []
    finally:
        browser.close()
