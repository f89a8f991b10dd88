"""The ``interplab circuit`` page in a real headless Chromium: the drawn circuit's f is stated,
MIB's scores are in the table, graph nodes carry visible labels, negative edges are dashed, no
two x-axis tick labels overlap on either chart, and there are no console errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama
from tests.report.browser import Browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_circuit_page_in_chromium(monkeypatch, tmp_path):
    from interplab.cli import _common

    model = random_llama(
        LlamaConfig(
            d_vocab=64, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64
        ),
        seed=2,
    )
    monkeypatch.setattr(_common, "load_lm", lambda name: model)
    page = tmp_path / "c.html"
    args = ["circuit", "tiny", "--task", "induction", "--method", "eap", "--n-prompts", "6"]
    res = CliRunner().invoke(app, [*args, "--no-progress", "--html", str(page), "--top", "40"])
    assert res.exit_code == 0, res.output
    browser = Browser(tmp_path / "profile")
    try:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1366,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.load(page.resolve().as_uri())
        state = json.loads(
            browser.evaluate("""JSON.stringify({
            text: document.body.innerText,
            nodes: document.querySelectorAll('#circuit-svg circle.node').length,
            labels: [...document.querySelectorAll('#circuit-svg text.node-label')].map(t => t.textContent),
            labelBoxes: [...document.querySelectorAll('#circuit-svg text.node-label')].filter(t => t.getBBox().width > 0).length,
            dashed: document.querySelectorAll('#circuit-svg line.edge[stroke-dasharray]').length,
            edges: [...document.querySelectorAll('#circuit-svg line.edge')].length,
            overlaps: [...document.querySelectorAll('svg')].map(svg => {
              const b = [...svg.querySelectorAll('text.x-tick')].map(t => t.getBoundingClientRect())
                .sort((p, q) => p.left - q.left);
              return b.slice(1).filter((r, i) => r.left < b[i].right).length; }),
            ticks: document.querySelectorAll('text.x-tick').length})""")
        )
        assert "The drawn circuit" in state["text"] and "recovers f =" in state["text"]
        assert "MIB CPR" in state["text"] and "f at 5%" in state["text"]
        assert state["nodes"] > 0 and state["labelBoxes"] == state["nodes"]
        assert "logits" in state["labels"]
        assert 0 < state["edges"] and 0 <= state["dashed"] < state["edges"]
        assert state["ticks"] >= 4 and sum(state["overlaps"]) == 0
        assert browser.errors() == []
    finally:
        browser.close()
