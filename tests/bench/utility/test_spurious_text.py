"""Text spurious-feature removal: the planted gender cue is verified by intervention, every arm
runs on the quick task and returns finite per-seed values, and bad input is refused."""

from __future__ import annotations

import math

import pytest
import torch

from interplab.bench.utility import spurious_text as task_mod
from interplab.errors import ConfigError, UnknownNameError
from interplab.eval.utility import UtilityTask
from interplab.methods.erasure import fit_leace
from interplab.models import bios as bm
from interplab.zoo.bios import load

SMALL = "spurious-bios-small"


@pytest.fixture(scope="module")
def organisms():
    return [(load(SMALL, s), load(SMALL, s, oracle=True)) for s in range(3)]


def _flip_rate(net, tokens):
    with torch.no_grad():
        return float(
            (net(tokens).argmax(-1) != net(bm.swap_gender(tokens)).argmax(-1)).float().mean()
        )


def test_swapping_gender_flips_the_spurious_model_but_not_the_oracle(organisms):
    tokens = bm.bios("test", "random").tokens
    for org, oracle in organisms:
        assert org.truth["info"]["train_accuracy"] > 0.99
        assert _flip_rate(org.net, tokens) > 0.8  # gender decides most predictions
        assert _flip_rate(oracle.net, tokens) < 0.15  # the oracle mostly ignores it
        assert org.truth["cue_flip_rate"] > 0.8 and oracle.truth["cue_flip_rate"] < 0.15


def test_swapping_profession_words_moves_the_oracle():
    """The oracle reads the profession words: replacing them by the other profession's (same
    slot, same index) changes most of its predictions."""
    oracle = load(SMALL, 0, oracle=True).net
    data = bm.bios("test", "random")
    ids = {w: i for i, w in enumerate(bm.vocab())}
    swapped = data.tokens.clone()
    for slot, (a, b) in bm.PROFESSION.items():
        for pos in bm.SLOTS[slot]:
            for x, z in list(zip(a, b)) + list(zip(b, a)):
                swapped[data.tokens[:, pos] == ids[x], pos] = ids[z]
    with torch.no_grad():
        changed = (oracle(swapped).argmax(-1) != oracle(data.tokens).argmax(-1)).float().mean()
    assert float(changed) > 0.8


def test_organisms_are_cached_and_seeds_differ(organisms):
    again = load(SMALL, 0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.net.state_dict().values(), organisms[0][0].net.state_dict().values())
    )
    assert not torch.equal(organisms[0][0].net.out.weight, organisms[1][0].net.out.weight)


def test_leace_leaves_no_linear_gender_in_the_hidden_layer(organisms):
    org, _ = organisms[0]
    budget = bm.balanced_subset(bm.bios("heldout", "random"), 32, seed=0)
    with torch.no_grad():
        h = org.net.features(budget.tokens)
    he = fit_leace(h, budget.cue).apply(h).double()
    for feats, expect_chance in ((h.double(), False), (he, True)):
        design = torch.cat([feats, torch.ones(len(feats), 1, dtype=torch.float64)], 1)
        coef = torch.linalg.lstsq(
            design, budget.cue.double()[:, None], rcond=1e-5, driver="gelsd"
        ).solution
        acc = float((((design @ coef).flatten() > 0.5).long() == budget.cue).float().mean())
        if expect_chance:
            assert abs(acc - 0.5) <= 0.05 or float((design @ coef).std()) < 1e-3
        else:
            assert acc > 0.95


def test_tasks_are_valid_and_listed():
    from interplab.bench.tracks import utility as track

    assert set(task_mod.TASKS) <= set(track.TASKS)
    assert SMALL in track.QUICK
    for t in task_mod.TASKS.values():
        assert t.metric == "worst_group_accuracy" and t.secondary == ("accuracy",)
        assert t.budget.kind == "training_examples" and "32 per" in t.budget.note


@pytest.mark.parametrize("arm", task_mod.ARMS)
def test_each_arm_gives_three_finite_values(arm, organisms):
    task = task_mod.TASKS[SMALL]
    out = task_mod.run(task, arm, [0, 1, 2])
    assert list(out.values) == ["worst_group_accuracy", "accuracy"]
    for vals in out.values.values():
        assert len(vals) == 3 and all(math.isfinite(v) and 0 <= v <= 1 for v in vals)
    assert out.n["worst_group_accuracy"] == task_mod.TEST_SIZE[SMALL] and len(out.spent) == 3
    for wga, acc in zip(*out.values.values()):
        assert wga <= acc + 1e-9


def test_original_fails_on_the_cue_and_oracle_does_not(organisms):
    task = task_mod.TASKS[SMALL]
    orig = task_mod.run(task, "baseline:original", [0, 1, 2]).values["worst_group_accuracy"]
    oracle = task_mod.run(task, "oracle:balanced", [0, 1, 2]).values["worst_group_accuracy"]
    assert max(orig) < 0.2 and min(oracle) > 0.7


def test_unknown_arm_and_missing_budget_are_refused():
    with pytest.raises(UnknownNameError):
        task_mod.run(task_mod.TASKS[SMALL], "interp:telepathy", [0, 1, 2])
    with pytest.raises(ConfigError, match="budget"):
        UtilityTask.from_dict(
            {"name": SMALL, "metric": "worst_group_accuracy", "arms": list(task_mod.ARMS)}
        )
    with pytest.raises(UnknownNameError):
        load("spurious-poems", 0)
    with pytest.raises(ConfigError):
        load(SMALL, -1)


def test_track_job_runs_one_arm():
    from interplab.bench.tracks import Job
    from interplab.bench.tracks import utility as track

    out = track.run_job(Job("utility", SMALL, "interp:concept_erasure", None, 0))
    art = out.artifacts["utility"]
    assert art["metric"] == "worst_group_accuracy" and "worst_group_accuracy" in art["estimates"]
