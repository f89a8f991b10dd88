"""The zoo track: generated organisms scored like compiled ones, truth on inputs no scoring pair
uses, and a small zoo suite through the real bench and report."""

from __future__ import annotations

import json

import pytest

from interplab.bench.runner import run_bench
from interplab.bench.spec import load_spec, parse_spec
from interplab.bench.tracks import Job, zoo
from interplab.report.html import render_report


def test_the_zoo_suite_is_200_organisms_by_every_circuit_method_and_ablation():
    spec = load_spec("zoo")
    assert [t.track for t in spec.tracks] == ["zoo"]
    t = spec.tracks[0]
    assert len(t.organisms) >= 200 and set(t.ablations) == {"zero", "mean", "resample"}
    assert {"patch_edges", "acdc", "eap", "eap_ig", "random"} <= set(t.methods)
    assert not any(tr.track == "zoo" for tr in load_spec("quick").tracks)


def test_truth_and_scoring_use_disjoint_inputs():
    from interplab.zoo.generated import load_generated

    for name in ("generated-0-0", "generated-0-13"):
        spec = load_generated(name).spec
        a, b = zoo.split_inputs(spec, 0)
        assert not set(a) & set(b) and len(a) + len(b) == len(spec.vocab) ** spec.max_len
        org = zoo.load(name, 0)  # the rows its truth really used, against the scored rows
        assert org.check_independent()["overlap"] == 0 and org.truth.inputs


def test_a_zoo_job_scores_like_the_circuits_track_and_records_the_shape():
    out = zoo.run_job(Job("zoo", "generated-0-2", "eap_ig", "resample", 0))
    metrics = {r["metric"]: r["value"] for r in out.rows}
    assert 0.0 <= metrics["edge_auroc"] <= 1.0 and "edge_auroc_designed" in metrics
    shape = out.artifacts["organism_shape"]
    assert shape["depth"] >= 1 and shape["constructs"]


@pytest.mark.slow
def test_a_small_zoo_suite_through_the_bench_and_report(tmp_path):
    organisms = [f"generated-0-{i}" for i in range(5)]
    spec = parse_spec(
        f"[zoo]\norganisms = {json.dumps(organisms)}\n"
        'methods = ["patch_edges", "eap", "random"]\nablations = ["zero", "resample"]\n'
    )
    summary = run_bench(spec, tmp_path, progress=False, jobs=2)
    assert summary.failed == 0 and summary.done == 30
    html = render_report(tmp_path).read_text()
    assert "Zoo: circuit methods over 5 generated organisms" in html
    assert html.index("<h2>Summary</h2>") < html.index("<details><summary>Leaderboard")


@pytest.mark.slow
def test_a_siit_twin_is_scored_against_what_its_checks_verified():
    """A twin's designed truth is its alignment, verified by interchange on held-out inputs; a
    per-ablation truth whose single-edge check fails in the weights is refused and the job then
    scores the designed truth alone, saying why edge_auroc is missing."""
    assert set(zoo.TWINS) <= set(load_spec("zoo").tracks[0].organisms)
    assert not any(zoo.refused(zoo.TWINS[0], a) for a in ("zero", "mean", "resample"))
    org = zoo.load(zoo.TWINS[0])
    refused = org.truth.checks.get("refused", {})
    for ablation in ("zero", "resample"):
        out = zoo.run_job(Job("zoo", zoo.TWINS[0], "eap", ablation, 0))
        metrics = {r.metric for r in out.rows if r.value is not None}
        assert "edge_auroc_designed" in metrics
        if ablation in refused:
            assert "edge_auroc" not in metrics
            assert "refused" in out.artifacts["omitted"]["edge_auroc"]
        else:
            assert "edge_auroc" in metrics
