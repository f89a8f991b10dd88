"""Utility tasks as data: arm names, budgets, intervals over seeds, the verdict (failed seeds
counted against their arm) and the one selection protocol every arm tunes by."""

import math

import pytest

from interplab.errors import ConfigError, UnknownNameError
from interplab.eval.utility import (
    ArmEstimate,
    ArmFailedError,
    Budget,
    UtilityTask,
    arm_kind,
    bounds_of,
    cv_folds,
    run_seeds,
    select_by_cv,
    summarise,
    verdict,
)

ARMS = ("interp:a", "baseline:b", "baseline:random", "oracle:o")


def _task(**kw):
    spec = {
        "name": "t",
        "metric": "worst_group_accuracy",
        "arms": list(ARMS),
        "budget": {"kind": "training_examples", "amount": 100},
    }
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
    assert (
        verdict({"interp:a": tight_hi, "baseline:b": tight_lo, "oracle:o": oracle})["verdict"]
        == "better"
    )
    v = verdict(
        {"interp:a": tight_lo, "baseline:b": tight_hi, "baseline:c": wide, "oracle:o": oracle}
    )
    assert v["verdict"] == "worse" and v["baseline"] == "baseline:b" and v["oracle"] == "oracle:o"
    assert verdict({"interp:a": wide, "baseline:b": tight_lo})["verdict"] == "no better"
    assert verdict({"interp:a": wide})["verdict"] == "no baseline arm run"


# ---------------------------------------------------------------- equal tuning: select_by_cv


def test_cv_folds_partition_the_budget_and_keep_each_stratum_balanced():
    strata = [g for g in range(4) for _ in range(32)]  # 4 groups x 32, as the spurious budget
    folds = cv_folds(strata, 4, seed=3)
    flat = sorted(i for f in folds for i in f)
    assert flat == list(range(128))  # disjoint and complete
    for f in folds:
        assert sorted({strata[i] for i in f}) == [0, 1, 2, 3]
        assert all(sum(strata[i] == g for i in f) == 8 for g in range(4))
    assert cv_folds(strata, 4, seed=3) == folds and cv_folds(strata, 4, seed=4) != folds
    with pytest.raises(ConfigError, match="folds"):
        cv_folds([0, 1], 4)


def test_selection_scores_each_value_on_held_out_folds_only():
    seen = []

    def fold(value, train, held):
        assert not set(train) & set(held) and sorted(train + held) == list(range(40))
        seen.append((value, tuple(held)))
        return 0.0

    sel = select_by_cv("c", (1, 2), [i % 2 for i in range(40)], fold, n_folds=4, seed=0)
    assert len(seen) == 8 and {v for v, _ in seen} == {1, 2}
    assert sel.value == 1 and sel.cv_scores == (0.0, 0.0)  # a tie goes to the earlier value
    d = sel.as_dict()
    assert (
        d["param"] == "c"
        and d["grid"] == [1, 2]
        and d["examples"] == 40
        and "budget" in d["protocol"]
    )


def test_selection_prefers_the_value_that_generalises_over_one_that_memorises():
    """A lookup table fits its training folds perfectly and guesses on held-out ones; a threshold
    on the informative feature generalises. Scoring on the fitted examples would pick the
    lookup table; held-out folds must pick the threshold."""
    import random as _random

    rng = _random.Random(0)
    x = [rng.gauss(0, 1) for _ in range(80)]
    y = [int(v + rng.gauss(0, 0.5) > 0) for v in x]

    def fold(value, train, held):
        if value == "lookup":
            table = {i: y[i] for i in train}
            pred = [table.get(i, rng.randint(0, 1)) for i in held]
        else:
            pred = [int(x[i] > 0) for i in held]
        return sum(p == y[i] for p, i in zip(pred, held)) / len(held)

    sel = select_by_cv("model", ("lookup", "threshold"), y, fold, seed=1)
    assert sel.value == "threshold" and sel.cv_scores[1] > 0.75 > sel.cv_scores[0]


def test_a_value_with_a_non_finite_fold_is_out_and_none_left_is_an_error():
    def fold(value, train, held):
        return float("nan") if value == 9 and held[0] == 0 else value / 10

    assert select_by_cv("k", (9, 1), [0, 1] * 8, fold).value == 1
    with pytest.raises(ConfigError, match="no value of 'k'"):
        select_by_cv("k", (9,), [0, 1] * 8, lambda v, t, h: float("nan"))
    with pytest.raises(ConfigError, match="empty"):
        select_by_cv("k", (), [0, 1] * 8, lambda v, t, h: 0.0)


# ---------------------------------------------------------------- failed seeds count


def test_run_seeds_records_a_raising_or_nan_seed_and_runs_the_rest():
    def one(seed):
        if seed == 1:
            raise RuntimeError("diverged\nsecond line")
        return {"m": float("nan") if seed == 2 else 0.5, "s": 1.0}, 7.0, {"k": seed}

    values, spent, per_seed, failed = run_seeds(("m", "s"), [0, 1, 2, 3], one)
    assert values["m"][0] == 0.5 and math.isnan(values["m"][1]) and math.isnan(values["m"][2])
    assert values["m"][3] == 0.5 and values["s"][2] == 1.0
    assert [f["seed"] for f in failed] == [1, 2]
    assert failed[0]["error"] == "RuntimeError: diverged" and "m" in failed[1]["error"]
    assert spent[0] == 7.0 and math.isnan(spent[1]) and per_seed[1] == {"seed": 1, "failed": True}
    assert issubclass(ArmFailedError, Exception)


def test_an_interp_arm_with_a_failed_seed_is_never_better():
    hi, lo = summarise([0.90, 0.91, 0.92], n=10), summarise([0.50, 0.51, 0.52], n=10)
    hi_failed = summarise([0.90, 0.91], n=10, n_failed=1)
    assert verdict({"interp:a": hi, "baseline:b": lo})["verdict"] == "better"  # the same, complete
    v = verdict({"interp:a": hi_failed, "baseline:b": lo})
    assert (v["verdict"], v["interp"], v["baseline"], v["failed"]) == (
        "no better",
        "interp:a",
        "baseline:b",
        {"interp:a": 1},
    )
    assert v["gap"] == pytest.approx(0.905 - 0.51) and "interp:a failed 1 seed" in v["note"]
    # a baseline that failed (even one with no number at all) leaves the bar unknown
    v = verdict({"interp:a": hi, "baseline:b": lo}, failed={"baseline:c": 3})
    assert (
        v["verdict"] == "no better"
        and v["failed"] == {"baseline:c": 3}
        and "baseline:c" in v["note"]
    )
    # a failure in another interp arm, or the oracle, does not block the winner
    assert (
        verdict({"interp:a": hi, "baseline:b": lo}, failed={"interp:z": 3, "oracle:o": 1})[
            "verdict"
        ]
        == "better"
    )
    # losing still loses
    assert (
        verdict({"interp:a": summarise([0.1, 0.11], n=10, n_failed=1), "baseline:b": hi})["verdict"]
        == "worse"
    )
    # every interp arm failed: said, not hidden
    v = verdict({"baseline:b": lo, "baseline:c": hi}, failed={"interp:a": 3})
    assert v["verdict"] == "no interp arm gave a number" and "interp:a" in v["note"]
    assert ArmEstimate.from_dict(hi_failed.as_dict()) == hi_failed and hi_failed.n_seeds == 2
