"""``interplab patch`` on a tiny random Llama: heads ranked by |effect| with the sign and the
unit, in the text, the JSON (every head) and the page (checked in headless Chromium)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from interplab.cli.models_cmd import rank_heads, register
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama
from tests.methods.steering.test_sentiment_check import WordTokenizer


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def tiny_lm(monkeypatch):
    from interplab.cli import _common

    model = random_llama(
        LlamaConfig(
            d_vocab=512, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64
        ),
        seed=3,
    )
    model.tokenizer = WordTokenizer(vocab=512)
    monkeypatch.setattr(_common, "load_lm", lambda name: model)
    return model


def test_rank_heads_orders_by_magnitude_and_keeps_the_sign():
    import torch

    scores = torch.tensor([[0.10, -0.40], [0.30, -0.25]])
    ranked = rank_heads(scores, gap=2.0)
    assert [h["head"] for h in ranked] == ["L0.H1", "L1.H0", "L1.H1", "L0.H0"]
    assert [h["sign"] for h in ranked] == ["-", "+", "-", "+"]
    assert ranked[0]["logit_diff_change"] == pytest.approx(-0.8)
    assert [h["rank"] for h in ranked] == [1, 2, 3, 4]


def _run(app, tmp_path, *extra):
    js, page = tmp_path / "p.json", tmp_path / "p.html"
    res = CliRunner().invoke(
        app,
        ["patch", "tiny", "--n-prompts", "4", "--top-k", "5", "--threads", "1"]
        + ["--json", str(js), "--html", str(page), *extra],
    )
    assert res.exit_code == 0, res.output
    return res, json.loads(js.read_text()), page


def test_patch_ranks_by_magnitude_with_sign_and_unit(app, tiny_lm, tmp_path):
    res, data, page = _run(app, tmp_path)
    assert "fraction of the clean-corrupted logit-difference gap" in data["score_unit"]
    assert data["gap"] == pytest.approx(data["clean_logit_diff"] - data["corrupt_logit_diff"])
    for key in ("attribution_patching", "activation_patching"):
        ranked = data[key]["ranked_heads"]
        assert len(ranked) == 2 * 4  # JSON keeps every head
        mags = [abs(h["score"]) for h in ranked]
        assert mags == sorted(mags, reverse=True)
        flat = [v for row in data[key]["scores"] for v in row]
        assert max(mags) == pytest.approx(max(abs(v) for v in flat))
        # the printed top 5 are the 5 largest |scores|, each with its sign
        for h in ranked[:5]:
            assert f"{h['head']:<8} {h['sign']:>4} {h['score']:>+16.3f}" in res.output
    assert "Δ logit diff" in res.output and "gap" in res.output
    html = page.read_text()
    assert "sign</th>" in html and "fraction of the clean" in html


def test_patch_checks_output_path_before_loading(app, monkeypatch, tmp_path):
    from interplab.cli import _common

    def refuse(name):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(_common, "load_lm", refuse)
    from interplab.cli.main import app as main_app

    res = CliRunner().invoke(main_app, ["patch", "--html", str(tmp_path)])
    assert res.exit_code == 2 and "is a directory" in res.output


@pytest.mark.slow
@pytest.mark.browser
def test_patch_page_shows_signed_ranking_in_chromium(app, tiny_lm, tmp_path):
    from tests.report.browser import Browser

    _, data, page = _run(app, tmp_path)
    browser = Browser(tmp_path / "profile")
    try:
        browser.load(page.resolve().as_uri())
        stats = json.loads(
            browser.evaluate("""JSON.stringify({
            tables: [...document.querySelectorAll('table.ranked')].map(t =>
                [...t.querySelectorAll('tr.head')].map(r => [
                    r.children[1].innerText, r.children[2].innerText, +r.children[3].innerText,
                    r.getBoundingClientRect().height > 0])),
            unit: document.getElementById('unit').innerText,
            resources: performance.getEntriesByType('resource').map(r => r.name)})""")
        )
        assert len(stats["tables"]) == 2
        for rows, key in zip(stats["tables"], ("activation_patching", "attribution_patching")):
            want = data[key]["ranked_heads"][:10]
            assert [r[0] for r in rows] == [h["head"] for h in want]
            assert [r[1] for r in rows] == ["−" if h["score"] < 0 else "+" for h in want]
            assert all(r[3] for r in rows)
        assert "fraction of the clean-corrupted logit-difference gap" in stats["unit"]
        assert stats["resources"] == [] and browser.errors() == []
    finally:
        browser.close()
