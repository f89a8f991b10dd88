"""The fairness-credit utility task: arms run end to end and only the oracle reads the truth."""

from __future__ import annotations

import math
import time

import pytest

from interplab.bench.utility import fairness as B
from interplab.eval.utility import UtilityTask

SMALL = "fairness-credit-small"
#: a 4-organism population (2 reliant) so the quick tests train little
TINY = (("age", "none", 0), ("age", "strong", 0), ("sex", "none", 0), ("sex", "weak", 0))


@pytest.fixture
def tiny(monkeypatch) -> UtilityTask:
    monkeypatch.setitem(B.POPULATIONS, SMALL, (TINY, 3))
    return B.TASKS[SMALL]


def test_tasks_are_valid_and_listed_without_torch_work():
    for name, task in B.TASKS.items():
        assert task.metric == "reliance_detection_auroc"
        assert set(task.arms) == set(B.ARMS) and task.n_seeds >= 3
        orgs, _ = B.POPULATIONS[name]
        assert {lv for _, lv, _ in orgs} == {"none", "weak", "strong"}


@pytest.mark.parametrize("arm", B.ARMS)
def test_every_arm_gives_finite_metrics_on_one_seed(tiny, arm):
    run = B.run(tiny, arm, [0])
    assert not run.failed, (arm, run.failed)
    assert math.isfinite(run.values[tiny.metric][0])
    proxy = run.values["proxy_detection_auroc"][0]
    assert math.isnan(proxy) == (arm == "baseline:parity_audit")
    if arm == "oracle:planted":
        assert run.values[tiny.metric][0] == 1.0 and proxy == 1.0
    per_org = run.details["per_seed"][0]["per_organism"]
    assert [p["organism"] for p in per_org] == [f"fair-credit-{a}-{lv}-v{v}" for a, lv, v in TINY]


def test_no_arm_but_the_oracle_reads_the_truth(tiny, monkeypatch):
    """Each arm's scores with the real truth and with a falsified one (proxy and decoy swapped,
    reliance reversed) must be identical, except the oracle's."""
    real = B.load_population(tiny, 0)
    seen: list = []
    monkeypatch.setattr(
        B,
        "_metrics",
        lambda scored, orgs: (
            seen.append(scored)
            or {
                "reliance_detection_auroc": 0.5,
                "proxy_detection_auroc": 0.5,
                "proxy_over_decoy_rate": 0.5,
            }
        ),
    )

    def falsified(task, seed):
        out = []
        for o in real:
            t = dict(o.truth, proxy=o.truth["decoy"], decoy=o.truth["proxy"])
            t.update(
                reliant=not o.truth["reliant"], level="none" if o.truth["reliant"] else "strong"
            )
            out.append(type(o)(**{**vars(o), "truth": t}))
        return out

    for arm in tiny.arms:
        seen.clear()
        B._one_seed(tiny, arm, 0)
        monkeypatch.setattr(B, "load_population", falsified)
        B._one_seed(tiny, arm, 0)
        monkeypatch.setattr(B, "load_population", lambda task, seed: real)
        a, b = seen
        same = all(
            _same(x["reliance"], y["reliance"]) and _same(x["features"], y["features"])
            for x, y in zip(a, b)
        )
        assert same == (arm != "oracle:planted"), arm


def _same(u, v) -> bool:
    import torch

    if u is None or v is None:
        return u is v
    u, v = torch.as_tensor(u, dtype=torch.float64), torch.as_tensor(v, dtype=torch.float64)
    return bool(torch.allclose(u, v, rtol=1e-9, atol=1e-9))


@pytest.mark.slow
def test_small_task_all_arms_three_seeds_and_time(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    from interplab.zoo import fairness as Z

    Z.get.cache_clear()
    task = B.TASKS[SMALL]
    start = time.process_time()
    runs = {arm: B.run(task, arm, task.seeds(0)) for arm in task.arms}
    spent = time.process_time() - start
    for arm, run in runs.items():
        assert not run.failed, (arm, run.failed)
        assert all(math.isfinite(v) for v in run.values[task.metric])
    assert runs["oracle:planted"].values[task.metric] == [1.0, 1.0, 1.0]
    assert spent < 25.0  # the quick-suite budget of this task, one core, empty cache
