"""The rationales track: rows, controls, and what the issue says it must show."""

import pytest

from interplab.bench.tracks import Job, TRACK_MODULES, track
from interplab.bench.tracks import rationales as R
from interplab.errors import UnknownNameError


def _values(out):
    return {r["metric"]: r["value"] for r in out.rows}


def test_track_is_registered_with_its_baselines():
    assert TRACK_MODULES["rationales"] == "interplab.bench.tracks.rationales"
    assert track("rationales").BASELINES == ("random", "nearest_neighbour", "permutation")
    for suite in R.SUITES.values():
        assert "random" in suite["methods"]
        assert set(suite["methods"]) <= set(R.METHODS) and set(suite["organisms"]) <= set(R.ORGANISMS)


def test_linear_job_rows_and_intervals():
    out = R.run_job(Job("rationales", "credit-linear", "linear_shap", None))
    v = _values(out)
    assert v["oracle_max_abs_error"] < 1e-6 and v["attribution_agreement"] == 1.0
    assert v["claim_accuracy"] >= 0.95
    est = out.artifacts["estimates"]["claim_accuracy"]
    assert est["low"] <= est["value"] <= est["high"] + 1e-9 and est["n"] > 0


def test_not_applicable_metric_has_a_reason_and_bad_names_are_errors():
    out = R.run_job(Job("rationales", "credit-rule", "linear_shap", None))
    rows = [r for r in out.rows if r["metric"] == "attribution_agreement"]
    assert rows[0]["value"] is None and "linear" in rows[0]["reason"]
    with pytest.raises(UnknownNameError):
        R.run_job(Job("rationales", "credit-rul", "random", None))
    with pytest.raises(UnknownNameError):
        R.run_job(Job("rationales", "credit-rule", "shapp", None))


@pytest.mark.slow
def test_what_it_must_show():
    """credit-rule: the best attribution method recovers the scorecard (top-k recall ≥ 0.9), random
    far below; recourse validity 1.0 everywhere; claim accuracy ≥ 0.95 on every organism."""
    agree = {m: _values(R.run_job(Job("rationales", "credit-rule", m, None)))["attribution_agreement"]
             for m in ("kernel_shap", "integrated_gradients", "occlusion", "random")}
    best = max(v for m, v in agree.items() if m != "random")
    assert best >= 0.9 and agree["random"] < best - 0.4
    for organism in R.ORGANISMS:
        rec = _values(R.run_job(Job("rationales", organism, "recourse", None)))
        assert rec["counterfactual_validity"] == 1.0 and rec["actionability"] == 1.0, organism
        claims = R.run_job(Job("rationales", organism, "kernel_shap", None))
        assert _values(claims)["claim_accuracy"] >= 0.95, organism
