"""``interplab circuit`` end to end on a tiny random Llama (the loader is swapped), and its
one-line errors; ``induction`` / ``models`` input checks that need no model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama


@pytest.fixture
def tiny_lm(monkeypatch):
    from interplab.cli import _common

    model = random_llama(
        LlamaConfig(
            d_vocab=64, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64
        ),
        seed=2,
    )
    monkeypatch.setattr(_common, "load_lm", lambda name: model)
    return model


def test_circuit_writes_json_and_an_offline_page(tiny_lm, tmp_path):
    out, page = tmp_path / "c.json", tmp_path / "c.html"
    res = CliRunner().invoke(
        app,
        [
            "circuit",
            "tiny",
            "--task",
            "induction",
            "--method",
            "eap_ig",
            "--steps",
            "2",
            "--n-prompts",
            "6",
            "--batch-size",
            "4",
            "--no-progress",
            "--threads",
            "1",
            "--json",
            str(out),
            "--html",
            str(page),
            "--neuronpedia",
            str(tmp_path / "np.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["ablations"]) == {"mean", "resample"} and data["eval_held_out"]
    block = data["ablations"]["mean"]
    scores = block["methods"]["eap_ig"]["scores"]
    assert len(scores) == data["n_edges"] == len(data["edges"])
    assert min(scores) < 0 < max(scores)  # signed: the JSON keeps the sign
    methods = [c["method"] for c in block["curves"]]
    assert methods == ["eap_ig", "eap_ig |score|", "random"]
    assert [c["ranking"] for c in block["curves"]] == ["signed", "absolute", "random"]
    for c in block["curves"]:
        assert c["sizes"] == [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
        assert c["f"][-1] == pytest.approx(1.0) and c["cpr_ci"][0] <= c["cpr"] <= c["cpr_ci"][1]
        assert all(k <= n for k, n in zip(c["n_kept"], c["n_edges"]))  # pruning only removes
    row = block["summary"]["eap_ig"]
    assert row["mib_cpr"] == block["curves"][0]["cpr"]  # CPR from the signed ranking
    assert row["mib_cmd"] == block["curves"][1]["cmd"]  # CMD from the absolute ranking
    drawn = block["drawn"]
    assert drawn["n_kept"] == len(block["top_edges"]) <= drawn["top"]
    assert drawn["f_ci"][0] <= drawn["f"] <= drawn["f_ci"][1]
    graph = json.loads((tmp_path / "np.json").read_text())
    ids = {n["node_id"] for n in graph["nodes"]}
    assert graph["links"] and all(l["source"] in ids and l["target"] in ids for l in graph["links"])
    assert {"metadata", "qParams", "nodes", "links"} <= set(graph)
    assert any(n["feature_type"] == "logit" for n in graph["nodes"])
    html = page.read_text()
    assert "circuit-threshold" in html and "attn-tokens" in html and "https://" not in html
    assert "MIB CPR" in html and "linear axis" in html and "The drawn circuit" in html


@pytest.mark.parametrize("option", ["--json", "--html", "--neuronpedia"])
def test_an_unwritable_output_fails_before_the_model_loads(monkeypatch, tmp_path, option):
    import time

    from interplab.cli import _common

    def no_load(name):  # the check must come first
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(_common, "load_lm", no_load)
    bad = tmp_path / "missing-dir" / "out.json"
    start = time.perf_counter()
    res = CliRunner().invoke(app, ["circuit", "tiny", option, str(bad)])
    assert time.perf_counter() - start < 5
    assert res.exit_code != 0 and "missing-dir" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "gt"], "unknown task 'gt'"),
        (["--ablation", "median"], "unknown ablation 'median'"),
        (["--method", "acdc"], "unknown method 'acdc'"),
        (["--n-prompts", "0"], "--n-prompts must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--rule", "simpson", "--n-prompts", "2"], "integration rule"),
    ],
)
def test_circuit_bad_input_is_one_line(tiny_lm, args, message):
    res = CliRunner().invoke(
        app, ["circuit", "tiny", "--task", "induction", "--no-progress", *args]
    )
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-seqs", "0"], "--n-seqs must be at least 1"),
        (["--seq-len", "1"], "--seq-len must be at least 2"),
    ],
)
def test_induction_bad_input_is_one_line(args, message):
    res = CliRunner().invoke(app, ["induction", "smollm2-135m", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_models_hint_follows_the_cache(monkeypatch, tmp_path):
    from interplab.models.pretrained import registry

    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path / "elsewhere"))
    rows = {r["name"]: r for r in registry.list_models()}
    assert str(tmp_path / "elsewhere") in rows["mnist-mlp"]["install"]
    assert "not installed" not in rows["mnist-mlp"]["source"]
