from __future__ import annotations

import pytest

from interplab.bench.tracks.features import METHODS, ORGANISMS, run_feature_job
from interplab.errors import UnknownNameError


def test_synthetic_job_rows():
    rows = run_feature_job("synthetic-features-16x32", "sae-topk", 0, steps=100)
    assert [r["metric"] for r in rows] == ["mmcs", "feature_f1", "l0", "variance_explained"]
    assert all(set(r) == {"organism", "method", "ablation", "metric", "value", "seconds"} for r in rows)
    assert all(r["organism"] == "synthetic-features-16x32" and r["ablation"] is None for r in rows)
    values = {r["metric"]: r["value"] for r in rows}
    assert values["mmcs"] > 0.9 and 0 < values["l0"] <= 4


def test_superposition_transcoder_job_reports_loss_recovered():
    rows = run_feature_job("superposition-8x3", "transcoder", 1, steps=100)
    values = {r["metric"]: r["value"] for r in rows}
    assert set(values) == {"mmcs", "feature_f1", "l0", "variance_explained", "loss_recovered"}
    assert values["loss_recovered"] > 0.0


def test_registered_names_parse_and_unknown_names_teach():
    assert "synthetic-features-64x128" in ORGANISMS and "superposition-20x5" in ORGANISMS
    assert METHODS == ("sae-relu", "sae-topk", "sae-jumprelu", "transcoder")
    with pytest.raises(UnknownNameError, match="Did you mean 'sae-topk'"):
        run_feature_job("superposition-20x5", "sae-topK", 0)
    with pytest.raises(UnknownNameError, match="Valid organisms"):
        run_feature_job("superposition", "sae-topk", 0)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_full_64x128_jobs_recover_the_features(method):
    values = {r["metric"]: r["value"] for r in run_feature_job("synthetic-features-64x128", method, 0)}
    assert values["mmcs"] >= 0.99


def test_track_interface_for_the_bench_runner(monkeypatch):
    from interplab.bench.tracks import Job, track

    mod = track("features")
    monkeypatch.setitem(mod.STEPS, "synthetic", 100)
    assert mod.ABLATIONS == (None,) and set(mod.SUITES) >= {"quick", "full"}
    for part in mod.SUITES["quick"]:
        assert set(part["organisms"]) <= set(mod.ORGANISMS) and set(part["methods"]) <= set(METHODS)
    out = mod.run_job(Job("features", "synthetic-features-8x16", "sae-topk", None, 0))
    assert {r["metric"] for r in out.rows} >= {"mmcs", "feature_f1"}
    values = out.artifacts["max_cosines"]["values"]
    assert len(values) == 16 and all(-1.0 <= v <= 1.0 for v in values)
