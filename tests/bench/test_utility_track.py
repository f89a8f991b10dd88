"""The utility track's plumbing on a fake task: rows and artifacts per arm, errors, and the
report section and summary card that state the verdict."""

from __future__ import annotations

import sys
import types

import pytest

from interplab.bench.store import ResultsStore
from interplab.bench.tracks import Job, utility
from interplab.errors import InterplabError
from interplab.eval.utility import ArmRun, UtilityTask
from interplab.report.html import build_html
from interplab.report.utility import collect, task_verdict

#: per-arm per-seed values of the fake task: interp clearly below the best baseline
VALUES = {
    "interp:probe": [0.60, 0.62, 0.61],
    "baseline:strong": [0.80, 0.81, 0.79],
    "baseline:random": [0.50, 0.48, 0.52],
    "oracle:truth": [1.0, 1.0, 0.99],
}


_ADDED: list[tuple[str, tuple[str, ...]]] = []


def _add_task(monkeypatch, name, task, module):
    """Run ``task`` under ``name`` with ``module``; its arms registered until the test ends."""
    from interplab.bench.utility import add_task

    _ADDED.append((name, add_task(name, task, module)))


@pytest.fixture(autouse=True)
def _remove_added_tasks():
    from interplab.bench.utility import remove_task

    yield
    while _ADDED:
        remove_task(*_ADDED.pop())


@pytest.fixture
def fake_task(monkeypatch):
    task = UtilityTask.from_dict(
        {
            "name": "fake-small",
            "metric": "concept_auroc",
            "arms": list(VALUES),
            "budget": {"kind": "queries", "amount": 64, "note": "same for all"},
            "secondary": ["queries_used"],
        }
    )
    mod = types.ModuleType("fake_utility_task")
    calls = []

    def run(t, arm, seeds):
        calls.append((arm, tuple(seeds)))
        vals = VALUES[arm]
        return ArmRun(
            {"concept_auroc": vals, "queries_used": [10.0, 12.0, 11.0]},
            {"concept_auroc": 100, "queries_used": 10},
            spent=[10, 12, 11],
            details={"x": float("nan")},
        )

    mod.run = run
    monkeypatch.setitem(sys.modules, "fake_utility_task", mod)
    monkeypatch.setitem(utility.TASKS, "fake-small", task)
    _add_task(monkeypatch, "fake-small", task, "fake_utility_task")
    return calls


def _run_all(store, seed=1):
    for arm in VALUES:
        job = Job("utility", "fake-small", arm, None, seed)
        out = utility.run_job(job)
        rows = [r.for_job(job, 0.1).as_dict() for r in out.rows]
        store.record(job, rows, out.artifacts, 0.1)


def test_one_job_runs_one_arm_on_the_tasks_seeds(fake_task):
    out = utility.run_job(Job("utility", "fake-small", "interp:probe", None, 2))
    assert fake_task == [("interp:probe", (2000, 2001, 2002))]
    assert [r["metric"] for r in out.rows] == ["concept_auroc", "queries_used"]
    assert out.rows[0]["value"] == pytest.approx(0.61)
    art = out.artifacts["utility"]
    assert art["kind"] == "interp" and art["budget"] == {
        "kind": "queries",
        "amount": 64,
        "note": "same for all",
    }
    est = art["estimates"]["concept_auroc"]
    assert est["low"] < 0.61 < est["high"] and est["n"] == 100 and est["n_seeds"] == 3
    assert art["details"] == {"x": None}  # JSON-safe


def test_unknown_task_or_arm_is_a_clear_error(fake_task):
    with pytest.raises(InterplabError, match="unknown utility task"):
        utility.run_job(Job("utility", "nope", "interp:probe", None, 0))
    with pytest.raises(InterplabError, match="fake-small.*interp:sae"):
        utility.run_job(Job("utility", "fake-small", "interp:sae", None, 0))


def test_report_states_that_interpretability_loses(fake_task, tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        _run_all(store)
        v = task_verdict(collect(store)["fake-small"])
        assert (
            v["verdict"] == "worse"
            and v["baseline"] == "baseline:strong"
            and v["oracle"] == "oracle:truth"
        )
        page = build_html(store, "t")
    assert "interpretability loses" in page and "baseline:strong" in page
    assert page.count("<svg class='bars'") == 1 and "64 queries" in page


def test_every_arm_is_labelled_and_the_suites_split_by_size():
    from interplab.eval.utility import arm_kind

    assert all(arm_kind(m) in ("interp", "baseline", "oracle") for m in utility.METHODS)
    quick = {o for part in utility.SUITES["quick"] for o in part["organisms"]}
    full = {o for part in utility.SUITES["full"] for o in part["organisms"]}
    assert all(o.endswith("-small") for o in quick) and not quick & full


def test_a_spec_runs_each_tasks_own_arms_and_rejects_an_arm_no_task_has(tmp_path):
    from interplab.bench.spec import parse_spec
    from interplab.errors import SpecError

    text = """
[utility]
organisms = ["audit-compiled-small", "spurious-digits-small"]
methods = ["interp:white_box", "baseline:dfr", "oracle:program"]
"""
    jobs = {(j.organism, j.method) for j in parse_spec(text).all_jobs()}
    assert jobs == {
        ("audit-compiled-small", "interp:white_box"),
        ("audit-compiled-small", "oracle:program"),
        ("spurious-digits-small", "baseline:dfr"),
    }
    with pytest.raises(SpecError) as e:
        parse_spec(
            text.replace('"oracle:program"', '"oracle:program", "interp:concept_erasure"')
            .replace('"spurious-digits-small"', '"poison-digits-small"')
            .replace('"baseline:dfr", ', "")
        )
    msg = str(e.value)
    assert "<spec>:4:" in msg and "interp:concept_erasure" in msg and "applies to none" in msg
    assert "poison-digits-small: " in msg and "interp:spectral_signature" in msg


#: the fake task again, where the interp arm is clearly the best but fails on some seeds
STRONG_INTERP = {
    "interp:probe": [0.95, 0.96, 0.97],
    "baseline:strong": [0.60, 0.61, 0.62],
    "baseline:random": [0.50, 0.48, 0.52],
    "oracle:truth": [1.0, 1.0, 0.99],
}


@pytest.fixture
def failing_task(monkeypatch):
    """A fake task whose arms run through run_seeds; ``FAIL[arm]`` names the seeds (by position)
    on which the arm raises ("raise") or returns NaN ("nan")."""
    from interplab.eval.utility import run_seeds

    task = UtilityTask.from_dict(
        {
            "name": "flaky-small",
            "metric": "concept_auroc",
            "arms": list(STRONG_INTERP),
            "budget": {"kind": "training_examples", "amount": 64},
        }
    )
    fail: dict[str, dict[int, str]] = {}
    mod = types.ModuleType("flaky_utility_task")

    def run(t, arm, seeds):
        def one(seed):
            pos = seeds.index(seed)
            how = fail.get(arm, {}).get(pos)
            if how == "raise":
                raise FloatingPointError(f"seed {seed} diverged")
            v = float("nan") if how == "nan" else STRONG_INTERP[arm][pos]
            return {"concept_auroc": v}, 64.0, {"selection": {"param": "c", "value": 0.1}}

        values, spent, per_seed, failed = run_seeds(("concept_auroc",), seeds, one)
        return ArmRun(values, {"concept_auroc": 100}, spent, {"per_seed": per_seed}, failed)

    mod.run = run
    monkeypatch.setitem(sys.modules, "flaky_utility_task", mod)
    monkeypatch.setitem(utility.TASKS, "flaky-small", task)
    _add_task(monkeypatch, "flaky-small", task, "flaky_utility_task")
    return fail


def _run_flaky(store):
    from interplab.bench.runner import execute_job

    for arm in STRONG_INTERP:
        job = Job("utility", "flaky-small", arm, None, 0)
        rows, arts, secs, error = execute_job(job, 1)
        if error is None:
            store.record(job, rows, arts, secs)
        else:
            store.record_failure(job, error, secs)


def test_without_failures_the_fake_interp_arm_wins(failing_task, tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _run_flaky(store)
        assert task_verdict(collect(store)["flaky-small"])["verdict"] == "better"


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_a_failed_seed_is_recorded_shown_and_costs_the_win(failing_task, tmp_path, how):
    failing_task["interp:probe"] = {1: how}
    out = utility.run_job(Job("utility", "flaky-small", "interp:probe", None, 0))
    art = out.artifacts["utility"]
    assert art["n_failed"] == 1 and [f["seed"] for f in art["failed"]] == [1]
    assert ("diverged" if how == "raise" else "concept_auroc") in art["failed"][0]["error"]
    est = art["estimates"]["concept_auroc"]
    assert est["n_seeds"] == 2 and est["n_failed"] == 1 and est["value"] == pytest.approx(0.96)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _run_flaky(store)
        v = task_verdict(collect(store)["flaky-small"])
        page = build_html(store, "t")
    assert v["verdict"] == "no better" and v["failed"] == {"interp:probe": 1}
    assert "Failed seeds: interp:probe 1" in page and "not counted better" in page
    assert "c = 0.1, 0.1" in page  # the chosen hyperparameter per seed is shown


def test_an_arm_whose_every_seed_fails_is_a_failed_job_and_still_listed(failing_task, tmp_path):
    from interplab.eval.utility import ArmFailedError

    failing_task["baseline:strong"] = {0: "raise", 1: "raise", 2: "nan"}
    with pytest.raises(
        ArmFailedError, match="every one of its 3 seeds failed.*seed 0: FloatingPointError"
    ):
        utility.run_job(Job("utility", "flaky-small", "baseline:strong", None, 0))
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _run_flaky(store)
        arms = collect(store)["flaky-small"]
        assert "every one of its 3 seeds failed" in arms["baseline:strong"]["job_error"]
        v = task_verdict(arms)
        page = build_html(store, "t")
    # the strongest baseline failed: the interp arm beats what is left, but is not called better
    assert v["verdict"] == "no better" and v["baseline"] == "baseline:random"
    assert v["failed"] == {"baseline:strong": 1} and "job failed" in page
    assert "Failed seeds: baseline:strong all (the job failed)" in page
