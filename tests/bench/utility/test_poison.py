"""The poison task: its organisms carry the planted backdoor (verified by intervening on inputs),
its truth is the set really poisoned, and every arm returns finite per-seed values."""

from __future__ import annotations

import math

import pytest
import torch

from interplab.bench.utility import poison
from interplab.eval.utility import UtilityTask, arm_kind
from interplab.models import trojans as tj

SMALL = "poison-digits-small"
SEEDS = poison.TASKS[SMALL].seeds(0)


def test_tasks_are_valid_and_sized():
    assert SMALL in poison.TASKS and "poison-digits" in poison.TASKS
    for name, task in poison.TASKS.items():
        assert isinstance(task, UtilityTask) and task.name == name
        assert task.metric == "poison_detection_auroc" and task.n_seeds >= 3
        assert {arm_kind(a) for a in task.arms} == {"interp", "baseline", "oracle"}
        assert "baseline:random" in task.arms
        assert task.budget.kind == "training_examples" and task.budget.amount == poison.N_TRAIN


def test_poisoned_set_is_the_one_train_uses_and_carries_the_trigger():
    s = poison.spec(SMALL, SEEDS[1])
    x, y, idx = tj.poisoned_training_set(s)
    x0, y0 = tj.digits("train")
    px, py = tj.poison(x0, y0, s, torch.Generator().manual_seed(s.seed + 1))
    assert torch.equal(x, px) and torch.equal(y, py)
    assert len(idx) == round(0.1 * len(x0)) and len(idx.unique()) == len(idx)
    assert (y[idx] == s.target).all() and torch.equal(x[idx], s.trigger.apply(x0[idx]))
    clean = torch.ones(len(x), dtype=torch.bool)
    clean[idx] = False
    assert torch.equal(x[clean], x0[clean]) and torch.equal(y[clean], y0[clean])
    assert len(tj.poisoned_training_set(s.twin())[2]) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_planted_backdoor_by_intervention(seed):
    org = poison.organism(SMALL, seed)
    net = org.model.module
    x, y = tj.digits("score")
    x, y = x[y != poison.TARGET], y[y != poison.TARGET]
    with torch.no_grad():
        clean = net(x).argmax(-1)
        triggered = org.trigger.apply(x)
        assert float((clean == y).float().mean()) >= 0.9
        assert float((net(triggered).argmax(-1) == poison.TARGET).float().mean()) >= 0.9
        # writing the original pixels back over the trigger's restores the clean prediction
        support = list(org.trigger.pixels)
        restored = triggered.clone()
        restored[:, support] = x[:, support]
        assert float((net(restored).argmax(-1) == clean).float().mean()) >= 0.99


def test_clean_twin_is_unaffected():
    twin, troj = poison.organism(SMALL, SEEDS[0], twin=True), poison.organism(SMALL, SEEDS[0])
    x, y = tj.digits("score")
    assert tj.attack_success(twin.model.module, twin.trigger, poison.TARGET, x, y) <= 0.1
    assert abs(tj.accuracy(twin.model.module, x, y) - tj.accuracy(troj.model.module, x, y)) <= 0.03


FAST_ARMS = [a for a in poison.TASKS[SMALL].arms if a != "interp:sae_features"]


@pytest.mark.parametrize(
    "arm", FAST_ARMS + [pytest.param("interp:sae_features", marks=pytest.mark.slow)]
)
def test_each_arm_returns_finite_per_seed_values(arm):
    task = poison.TASKS[SMALL]
    out = poison.run(task, arm, SEEDS)
    assert list(out.values)[0] == task.metric
    assert set(out.values) == {task.metric, *task.secondary}
    for metric, vals in out.values.items():
        assert len(vals) == 3 and all(math.isfinite(v) and 0 <= v <= 1 for v in vals)
        assert out.n[metric] > 0
    assert out.spent == [float(poison.N_TRAIN)] * 3
    if arm == "oracle:trigger":  # the recorded indices are exactly the triggered examples
        assert out.values["poison_detection_auroc"] == [1.0] * 3


def test_unknown_arm_is_refused():
    from interplab.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        poison.run(poison.TASKS[SMALL], "interp:magic", SEEDS)
