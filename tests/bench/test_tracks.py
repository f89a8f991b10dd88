"""The real benchmark tracks end to end (organisms, methods, metrics)."""

import json

import pytest
from typer.testing import CliRunner

from interplab.bench.spec import parse_spec, suite
from interplab.bench.tracks import Job, get_track
from interplab.errors import SpecError


@pytest.mark.parametrize("organism", ["compiled-reverse", "compiled-frac_prevs"])
@pytest.mark.parametrize("method", ["patch_edges", "acdc"])
@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_compiled_circuits_are_scored_against_both_truths(organism, method, ablation):
    t = get_track("circuits")
    rows = {
        r["metric"]: r["value"] for r in t.run(Job("circuits", organism, method, ablation)).rows
    }
    rand = {
        r["metric"]: r["value"] for r in t.run(Job("circuits", organism, "random", ablation)).rows
    }
    for metric in ("edge_auroc", "edge_auroc_designed"):
        assert rows[metric] > rand[metric]  # the method ranks true edges above a random ranking
    assert 0.0 <= rows["cmd"] <= 1.0 and rows["cpr"] > 0.5


def test_scores_flip_when_the_ablation_does_not_match_the_ground_truth():
    """ACDC run with resample ablation: the resample truth (2 edges: the token value path and the
    head's write to the logits) is recovered; the zero-ablation and the designed truth are not."""
    out = get_track("circuits").run(Job("circuits", "compiled-reverse", "acdc", "resample"))
    rows = {r["metric"]: r["value"] for r in out.rows}
    assert rows["edge_auroc"] >= 0.95
    assert rows["edge_auroc_mismatched"] <= 0.8 and rows["edge_auroc_designed"] <= 0.8
    used = out.artifacts["ground_truth_used"]
    assert (used["ablation"], used["edges"], used["designed_edges"]) == ("resample", 2, 13)
    assert "held-out" in used["source"]


def test_random_baseline_is_worse_than_patching():
    t = get_track("circuits")
    auc = {
        m: {
            r["metric"]: r["value"]
            for r in t.run(Job("circuits", "compiled-frac_prevs", m, "zero")).rows
        }["edge_auroc"]
        for m in ("random", "patch_edges")
    }
    assert auc["random"] < 0.8 < auc["patch_edges"]


def test_every_builtin_suite_name_is_valid():
    common = {
        "circuits",
        "features",
        "causal",
        "failures",
        "data_attribution",
        "rationales",
        "utility",
    }
    # the causal-variable and copyright tracks run SmolLM2 for minutes: full suite only
    full = common | {"variables_real", "copyright"}
    for name, expected in (("quick", common), ("full", full)):
        spec = suite(name)
        assert {t.track for t in spec.tracks} == expected
        for t in spec.tracks:
            track = get_track(t.track)
            assert set(t.organisms) <= set(track.organism_names()), t
            assert set(t.methods) <= set(track.method_names()), t
            assert set(t.ablations) <= set(track.ablations), t


def test_unknown_names_in_a_real_spec_list_the_valid_ones():
    with pytest.raises(SpecError) as info:
        parse_spec('[circuits]\norganisms = ["compiled-revers"]\nmethods = ["acdc"]\n', "s.toml")
    assert "s.toml:2: unknown organism 'compiled-revers'" in str(info.value)
    assert "compiled-reverse" in str(info.value)


@pytest.mark.slow
def test_quick_suite_from_the_cli_writes_results_and_report(tmp_path):
    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["bench", "--out", str(tmp_path), "--json", "-"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0 and summary["done"] == summary["total"] > 50
    data = json.loads((tmp_path / "results.json").read_text())
    metrics = {r["metric"] for r in data["rows"]}
    assert {
        "edge_auroc",
        "edge_auroc_designed",
        "cpr",
        "cmd",
        "mmcs",
        "feature_f1",
        "l0",
        "variance_explained",
        "loss_recovered",
        "counterfactual_accuracy_interchange",
        "counterfactual_accuracy_new_input",
        "hypothesis_loss_recovered",
        "selfcheck_counterfactual_accuracy_interchange",
        "replacement_fidelity",
        "probe_selectivity",
    } <= metrics
    assert not {"counterfactual_accuracy", "iia"} & metrics  # pooled / duplicate names are gone
    assert {r["ablation"] for r in data["rows"]} == {"zero", "mean", "resample", None}
    html = (tmp_path / "report.html").read_text()
    assert (
        "Edge ROC curves" in html
        and "Feature recovery" in html
        and "Explanations that predict" in html
    )
    # A second run finds everything done and recomputes nothing.
    again = CliRunner().invoke(app, ["bench", "--out", str(tmp_path), "--json", "-"])
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped"] == summary["total"]


@pytest.mark.slow
def test_parallel_jobs_match_sequential(tmp_path):
    from interplab.bench.runner import run_bench

    text = (
        '[circuits]\norganisms = ["compiled-frac_prevs", "compiled-reverse"]\n'
        'methods = ["eap", "patch_edges"]\nablations = ["zero", "resample"]\n'
        '[features]\norganisms = ["synthetic-features-32x64"]\nmethods = ["sae-topk"]\n'
    )
    spec = parse_spec(text)
    seq = run_bench(spec, tmp_path / "seq", progress=False)
    par = run_bench(spec, tmp_path / "par", jobs=2, progress=False)
    assert seq.failed == par.failed == 0 and seq.done == par.done == 9

    def values(d):
        rows = json.loads((d / "results.json").read_text())["rows"]
        return {
            (r["organism"], r["method"], r["ablation"], r["metric"]): r["value"]
            for r in rows
            if r["metric"] != "method_seconds"
        }

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
    spec.write_text(
        '[circuits]\norganisms = ["compiled-frac_prevs", "compiled-reverse"]\n'
        'methods = ["patch_edges", "acdc", "eap", "eap_ig", "random"]\n'
        'ablations = ["zero", "mean", "resample"]\n'
    )
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        "from interplab.cli.main import run; run()",
        "bench",
        "--spec",
        str(spec),
        "--out",
        str(out),
        "--no-report",
        "--json",
        "-",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "results.sqlite"
    done_before = 0
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with contextlib.closing(sqlite3.connect(db, timeout=1)) as con:
                    done_before = con.execute(
                        "SELECT count(*) FROM jobs WHERE status='done'"
                    ).fetchone()[0]
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
def test_siit_ground_truth_per_ablation_is_verified_by_edge_patching():
    """The SIIT alignment names one head; the truth derived from the program keeps, under
    resample, only the token value path and the write to the logits. Verified here (not
    computed) with edge patching: keeping only those edges keeps the task, dropping them loses it."""
    import torch

    from interplab.bench.tracks.circuits import load
    from interplab.core.circuit import Edge, Node
    from interplab.methods.circuits import EdgePatcher

    org = load("siit-shift_by")
    head = Node.attn_head(0, 0)
    truth = org.truth.per_ablation
    assert truth["resample"].edges == {Edge(Node.tok_embed(), head, "v"), Edge(head, Node.logits())}
    # under zero ablation the model's MLP writes to the logits outside the SIIT truth: refused
    assert "zero" not in truth and "L0.MLP->logits" in org.truth.checks["refused"]["zero"]
    patcher = EdgePatcher(org.model, org.tasks["score"], ablation="resample", metric="accuracy")
    keep = torch.zeros(patcher.n_edges)
    for e in truth["resample"].edges:
        keep[patcher.index.edge_id[e]] = 1.0
    assert patcher.score_keep(keep) >= 0.9
    # without those two edges the model does no better than with every edge resampled (the
    # first two positions, None whatever the input, are still right: 0.6 on 5 positions)
    nothing = patcher.score_keep(torch.zeros(patcher.n_edges))
    assert patcher.score_keep(1.0 - keep) <= nothing + 0.02 < 0.7


# ------------------------------------------------------------------------------ causal track
@pytest.mark.parametrize("program", ["hist", "sort_unique", "sum_prev", "shift_by"])
def test_causal_compiled_organisms_are_the_library_models(program):
    """compiled-<program> is one model in every track: the library program compiled with its
    defaults; the causal track scores it on the valid inputs of length max_len."""
    import torch

    from interplab.bench.tracks.causal import load
    from interplab.compile.programs import get_program

    spec = get_program(program)
    model, truth, inputs = load(f"compiled-{program}")
    library = spec.compile()
    assert model.cfg == library.cfg and model.program.label == spec.program().label
    theirs = library.model.state_dict()
    assert theirs and model.model.state_dict().keys() == theirs.keys()
    assert all(torch.equal(v, theirs[k]) for k, v in model.model.state_dict().items())
    assert inputs and all(len(x) == spec.max_len and spec.valid(x) for x in inputs)
    assert len(inputs) == len([x for x in spec.inputs() if len(x) == spec.max_len])


def test_causal_hypotheses_are_scored_per_kind_on_equal_n_and_ground_truth_is_a_selfcheck():
    from interplab.bench.tracks.causal import N_PAIRS, job_output

    truth = job_output("compiled-sum_prev", "ground_truth")
    wrong = job_output("compiled-sum_prev", "misaligned")
    t = {r["metric"]: r["value"] for r in truth.rows}
    w = {r["metric"]: r["value"] for r in wrong.rows}
    assert all(m.startswith("selfcheck_") for m in t) and not any(
        m.startswith("selfcheck_") for m in w
    )
    for kind in ("interchange", "ablation", "new_input"):
        assert t[f"selfcheck_n_{kind}"] == w[f"n_{kind}"] == N_PAIRS
    assert t["selfcheck_counterfactual_accuracy_interchange"] == 1.0
    assert w["counterfactual_accuracy_interchange"] < 0.2 < w["counterfactual_accuracy_new_input"]
    assert "counterfactual_accuracy" not in w and "iia" not in w and "loss_recovered" not in w
    est = wrong.artifacts["estimates"]["counterfactual_accuracy_interchange"]
    assert est["n"] == N_PAIRS and est["low"] <= est["value"] <= est["high"]


def test_causal_kind_that_does_not_apply_is_reported_not_scored():
    from interplab.bench.tracks.causal import job_output

    out = job_output("compiled-hist", "ground_truth")  # its circuit is every head and MLP
    metrics = {r["metric"] for r in out.rows}
    assert "selfcheck_counterfactual_accuracy_ablation" not in metrics
    assert "selfcheck_n_interchange" in metrics
    assert "irrelevant" in out.artifacts["omitted"]["selfcheck_counterfactual_accuracy_ablation"]


def test_causal_probe_uses_a_token_position_control_or_says_why_not(monkeypatch):
    from interplab.bench.tracks.causal import job_output
    from interplab.methods import probing

    out = job_output("compiled-sum_prev", "probe")
    rows = {r["metric"]: r["value"] for r in out.rows}
    assert out.artifacts["probe"]["n_control_types"] >= probing.MIN_CONTROL_TYPES
    assert rows["probe_selectivity"] == rows["probe_accuracy"] - rows["probe_control_accuracy"]
    assert rows["probe_selectivity"] > 0.3  # was 0.000 with a 3-token control task

    def degenerate(*args, **kwargs):
        raise probing.DegenerateControlTask("control labels are constant (test)")

    monkeypatch.setattr(probing, "probe_selectivity", degenerate)
    out = job_output("compiled-sum_prev", "probe")
    assert {r["metric"] for r in out.rows} == {"probe_accuracy"}
    assert out.artifacts["omitted"]["probe_selectivity"] == "control labels are constant (test)"
