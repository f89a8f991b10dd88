"""Utility tasks as data: arm names, budgets, intervals over seeds and the verdict."""

import math

import pytest

from interplab.errors import ConfigError, UnknownNameError
from interplab.eval.utility import ArmEstimate, Budget, UtilityTask, arm_kind, bounds_of, summarise, verdict

ARMS = ("interp:a", "baseline:b", "baseline:random", "oracle:o")


def _task(**kw):
    spec = {"name": "t", "metric": "worst_group_accuracy", "arms": list(ARMS),
            "budget": {"kind": "training_examples", "amount": 100}}
    spec.update(kw)
    return UtilityTask.from_dict(spec)


def test_arm_kinds_come_from_the_prefix():
    assert [arm_kind(a) for a in ARMS] == ["interp", "baseline", "baseline", "oracle"]
    for bad in ("sae", "interp:", "expert:x"):
        with pytest.raises(ConfigError, match="<kind>:<name>"):
            arm_kind(bad)


def test_a_task_without_a_budget_is_refused_with_the_fix():
    spec = {"name": "t", "metric": "m", "arms": list(ARMS)}
    with pytest.raises(ConfigError, match="missing budget.*amount"):
        UtilityTask.from_dict(spec)
    with pytest.raises(ConfigError, match="'kind' and 'amount'"):
        _task(budget={"amount": 3})
    with pytest.raises(UnknownNameError, match="budget kind"):
        _task(budget={"kind": "coffee", "amount": 3})
    with pytest.raises(ConfigError, match="positive"):
        Budget("queries", 0)


def test_an_unknown_arm_is_named_with_the_known_ones():
    t = _task()
    assert t.check_arm("interp:a") == "interp:a"
    with pytest.raises(UnknownNameError) as e:
        t.check_arm("interp:zzz")
    assert "interp:zzz" in str(e.value) and "baseline:b" in str(e.value)


def test_a_task_needs_interp_two_baselines_and_three_seeds():
    with pytest.raises(ConfigError, match="two baseline"):
        _task(arms=["interp:a", "baseline:b", "oracle:o"])
    with pytest.raises(ConfigError, match="no interp"):
        _task(arms=["baseline:a", "baseline:b"])
    with pytest.raises(ConfigError, match="at least 3 seeds"):
        _task(n_seeds=2)
    assert _task().seeds(2) == [2000, 2001, 2002]


def test_summarise_is_a_student_t_interval_over_seeds():
    e = summarise([0.5, 0.6, 0.7], n=40)
    assert e.mean == pytest.approx(0.6)
    half = 4.303 * 0.1 / math.sqrt(3)
    assert (e.low, e.high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert e.n == 40 and e.n_seeds == 3 and ArmEstimate.from_dict(e.as_dict()) == e
    with pytest.raises(ConfigError):
        summarise([0.5, float("nan"), 0.7], n=3)
    clipped = summarise([0.0, 1.0, 1.0], n=3, bounds=bounds_of("worst_group_accuracy"))
    assert clipped.low == 0.0 and clipped.high == 1.0 and bounds_of("queries_used") is None


def test_verdict_follows_the_intervals_and_ignores_the_oracle():
    def est(vals):
        return summarise(vals, n=10)

    tight_hi, tight_lo = est([0.90, 0.91, 0.92]), est([0.50, 0.51, 0.52])
    wide = est([0.3, 0.9, 0.6])
    oracle = est([1.0, 1.0, 1.0])
    assert verdict({"interp:a": tight_hi, "baseline:b": tight_lo, "oracle:o": oracle})["verdict"] == "better"
    v = verdict({"interp:a": tight_lo, "baseline:b": tight_hi, "baseline:c": wide, "oracle:o": oracle})
    assert v["verdict"] == "worse" and v["baseline"] == "baseline:b" and v["oracle"] == "oracle:o"
    assert verdict({"interp:a": wide, "baseline:b": tight_lo})["verdict"] == "no better"
    assert verdict({"interp:a": wide})["verdict"] == "no baseline arm run"
