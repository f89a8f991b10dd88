"""The real benchmark tracks end to end (organisms, methods, metrics)."""

import json

import pytest
from typer.testing import CliRunner

from interplab.bench.spec import parse_spec, suite
from interplab.bench.tracks import Job, track
from interplab.errors import SpecError


@pytest.mark.parametrize("organism", ["compiled-reverse", "compiled-frac_prevs"])
@pytest.mark.parametrize("method", ["patch_edges", "acdc"])
@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_compiled_circuits_recovered_with_matching_ground_truth(organism, method, ablation):
    rows = {r["metric"]: r["value"] for r in track("circuits").run_job(
        Job("circuits", organism, method, ablation)).rows}
    assert rows["edge_auroc"] >= 0.95
    assert 0.0 <= rows["cmd"] <= 1.0 and rows["cpr"] > 0.5


def test_scores_flip_when_the_ablation_does_not_match_the_ground_truth():
    """ACDC run with resample ablation, scored against the zero-ablation ground truth."""
    out = track("circuits").run_job(Job("circuits", "compiled-reverse", "acdc", "resample"))
    rows = {r["metric"]: r["value"] for r in out.rows}
    assert rows["edge_auroc"] >= 0.95
    assert rows["edge_auroc_mismatched"] <= 0.8
    assert out.artifacts["ground_truth_used"] == {"ablation": "resample", "edges": 2,
                                                  "mismatched_against": "zero"}


def test_random_baseline_is_worse_than_patching():
    t = track("circuits")
    auc = {m: {r["metric"]: r["value"] for r in t.run_job(Job("circuits", "compiled-frac_prevs", m, "zero")).rows}["edge_auroc"]
           for m in ("random", "patch_edges")}
    assert auc["random"] < 0.8 < auc["patch_edges"]


def test_every_builtin_suite_name_is_valid():
    for name in ("quick", "full"):
        spec = suite(name)
        assert {t.track for t in spec.tracks} == {"circuits", "features", "causal"}
        for t in spec.tracks:
            mod = track(t.track)
            assert set(t.organisms) <= set(mod.ORGANISMS), t
            assert set(t.methods) <= set(mod.METHODS), t
            assert set(t.ablations) <= set(mod.ABLATIONS), t


def test_unknown_names_in_a_real_spec_list_the_valid_ones():
    with pytest.raises(SpecError) as info:
        parse_spec('[circuits]\norganisms = ["compiled-revers"]\nmethods = ["acdc"]\n', "s.toml")
    assert "s.toml:2: unknown organism 'compiled-revers'" in str(info.value)
    assert "compiled-reverse" in str(info.value)


@pytest.mark.slow
def test_quick_suite_from_the_cli_writes_results_and_report(tmp_path):
    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["bench", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0 and summary["done"] == summary["total"] > 50
    data = json.loads((tmp_path / "results.json").read_text())
    metrics = {r["metric"] for r in data["rows"]}
    assert {"edge_auroc", "node_auroc", "cpr", "cmd", "mmcs", "feature_f1", "l0",
            "variance_explained", "loss_recovered", "counterfactual_accuracy", "iia",
            "replacement_fidelity", "probe_selectivity"} <= metrics
    assert {r["ablation"] for r in data["rows"]} == {"zero", "mean", "resample", None}
    html = (tmp_path / "report.html").read_text()
    assert "Edge ROC curves" in html and "Feature recovery" in html and "Explanations that predict" in html
    # A second run finds everything done and recomputes nothing.
    again = CliRunner().invoke(app, ["bench", "--out", str(tmp_path), "--json"])
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped"] == summary["total"]


@pytest.mark.slow
def test_parallel_jobs_match_sequential(tmp_path):
    from interplab.bench.runner import run_bench

    text = ('[circuits]\norganisms = ["compiled-frac_prevs", "compiled-reverse"]\n'
            'methods = ["eap", "patch_edges"]\nablations = ["zero", "resample"]\n'
            '[features]\norganisms = ["synthetic-features-32x64"]\nmethods = ["sae-topk"]\n')
    spec = parse_spec(text)
    seq = run_bench(spec, tmp_path / "seq", progress=False)
    par = run_bench(spec, tmp_path / "par", jobs=2, progress=False)
    assert seq.failed == par.failed == 0 and seq.done == par.done == 9

    def values(d):
        rows = json.loads((d / "results.json").read_text())["rows"]
        return {(r["organism"], r["method"], r["ablation"], r["metric"]): r["value"]
                for r in rows if r["metric"] != "method_seconds"}

    seq_v, par_v = values(tmp_path / "seq"), values(tmp_path / "par")
    assert seq_v.keys() == par_v.keys()
    # Circuit scores are deterministic; dictionary training may differ in the last bits when
    # a worker uses fewer threads, so only its keys are compared.
    for key, value in seq_v.items():
        if key[0].startswith("compiled-"):
            assert abs(value - par_v[key]) <= 1e-3, key


@pytest.mark.slow
def test_killed_bench_process_resumes_without_redoing_jobs(tmp_path):
    """SIGKILL the real CLI midway; the rerun skips every job the store had marked done."""
    import contextlib
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    spec = tmp_path / "spec.toml"
    spec.write_text('[circuits]\norganisms = ["compiled-frac_prevs", "compiled-reverse"]\n'
                    'methods = ["patch_edges", "acdc", "eap", "eap_ig", "random"]\n'
                    'ablations = ["zero", "mean", "resample"]\n')
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from interplab.cli.main import run; run()",
           "bench", "--spec", str(spec), "--out", str(out), "--no-report", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "results.sqlite"
    done_before = 0
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with contextlib.closing(sqlite3.connect(db, timeout=1)) as con:
                    done_before = con.execute("SELECT count(*) FROM jobs WHERE status='done'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done_before >= 5:
                break
    assert proc.poll() is None, "the run finished before it could be killed; make the spec bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with contextlib.closing(sqlite3.connect(db)) as con:
        done_at_kill = con.execute("SELECT count(*) FROM jobs WHERE status='done'").fetchone()[0]
    assert 5 <= done_at_kill < 30
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == done_at_kill
    assert summary["done"] == 30 - done_at_kill and summary["failed"] == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len({(r["organism"], r["method"], r["ablation"]) for r in rows}) == 30


@pytest.mark.slow
def test_siit_ground_truth_is_measured_per_ablation():
    """The SIIT alignment names one head; the measured truth keeps the edges that matter:
    under resample only the token value path and the write to the logits."""
    import torch

    from interplab.bench.tracks.circuits import load
    from interplab.core.circuit import Edge, Node
    from interplab.methods.circuits import EdgePatcher

    org = load("siit-shift_by")
    head = Node.attn_head(0, 0)
    assert org.truth["resample"].edges == {Edge(Node.tok_embed(), head, "v"), Edge(head, Node.logits())}
    assert org.truth["resample"].edges < org.truth["zero"].edges  # positions matter under zero only
    patcher = EdgePatcher(org.model, org.task, ablation="resample", metric="accuracy")
    keep = torch.zeros(patcher.n_edges)
    for e in org.truth["resample"].edges:
        keep[patcher.index.edge_id[e]] = 1.0
    assert patcher.score_keep(keep) >= 0.9
    assert patcher.score_keep(1.0 - keep) <= 0.5
