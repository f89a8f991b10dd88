"""Spurious-feature removal task: the planted cue is verified by intervention, every arm runs on
the quick task and returns finite per-seed values, and bad input is refused."""

from __future__ import annotations

import math

import pytest
import torch

from interplab.bench.utility import spurious as task_mod
from interplab.errors import ConfigError, UnknownNameError
from interplab.eval.utility import UtilityTask
from interplab.methods.erasure import fit_leace
from interplab.models import spurious as sp
from interplab.zoo.spurious import load

SMALL = "spurious-digits-small"


@pytest.fixture(scope="module")
def organisms():
    return [(load(SMALL, s), load(SMALL, s, oracle=True)) for s in range(3)]


def _flip_agreement(net, strength):
    test = sp.cued("test", "random", strength)
    x, _ = sp.digits("test")
    with torch.no_grad():
        a = net(sp.apply_cue(x, test.cue, strength)).argmax(-1)
        b = net(sp.apply_cue(x, 1 - test.cue, strength)).argmax(-1)
    return float((a == b).float().mean())


def test_flipping_the_cue_flips_the_spurious_model_but_not_the_oracle(organisms):
    for org, oracle in organisms:
        s = org.spec.strength
        assert org.truth["info"]["train_accuracy"] > 0.99
        assert _flip_agreement(org.net, s) < 0.2  # the cue decides most predictions
        assert _flip_agreement(oracle.net, s) > 0.85  # the oracle mostly ignores it
        assert org.truth["cue_flip_rate"] > 0.8 and oracle.truth["cue_flip_rate"] < 0.15


def test_organisms_are_cached_and_seeds_differ(organisms):
    again = load(SMALL, 0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.net.state_dict().values(), organisms[0][0].net.state_dict().values())
    )
    assert not torch.equal(organisms[0][0].net.hidden.weight, organisms[1][0].net.hidden.weight)


def test_leace_leaves_no_linear_cue_in_the_hidden_layer(organisms):
    org, _ = organisms[0]
    budget = sp.balanced_subset(sp.cued("heldout", "random", org.spec.strength), 32, seed=0)
    with torch.no_grad():
        h = org.net.features(budget.x)
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

    assert {"spurious-digits-small", "spurious-digits"} <= set(track.TASKS)
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
    assert out.n["worst_group_accuracy"] == 500 and len(out.spent) == 3
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
        load("spurious-words", 0)
    with pytest.raises(ConfigError):
        load(SMALL, -1)


def test_track_job_runs_one_arm():
    from interplab.bench.tracks import Job
    from interplab.bench.tracks import utility as track

    out = track.run_job(Job("utility", SMALL, "interp:concept_erasure", None, 0))
    art = out.artifacts["utility"]
    assert art["metric"] == "worst_group_accuracy" and "worst_group_accuracy" in art["estimates"]
    with pytest.raises(UnknownNameError):
        track.run_job(Job("utility", SMALL, "baseline:nothing", None, 0))


def test_dfr_and_neuron_ablation_tune_by_the_same_cv_on_the_budget(monkeypatch):
    """Equal tuning: DFR's L2 penalty and the unit ablation's k are both chosen by 4-fold CV on
    the 128 budget images (every fold fit sees 96 of them, the final refit all 128; the test
    split never enters), and the baseline random ablation takes the interp arm's k."""
    from interplab.methods import erasure

    task = task_mod.TASKS[SMALL]
    fits, ranks = [], []
    real_fit, real_rank = task_mod._refit_heads, erasure.rank_units

    def fit_spy(h, y, l2s, *a, **kw):  # DFR's readout refits (every penalty of a fold at once)
        fits.append((h.shape[0], tuple(l2s)))
        return real_fit(h, y, l2s, *a, **kw)

    def rank_spy(h, cue, **kw):
        ranks.append(h.shape[0])
        return real_rank(h, cue, **kw)

    monkeypatch.setattr(task_mod, "_refit_heads", fit_spy)
    monkeypatch.setattr(erasure, "rank_units", rank_spy)
    _, _, dfr = task_mod._one_seed(task_mod.DIGITS, task, "baseline:dfr", 0)
    sel = dfr["selection"]
    assert sel["param"] == "l2" and sel["grid"] == list(task_mod.DFR_L2) and sel["examples"] == 128
    assert dfr["l2"] == sel["value"] and len(sel["cv_score"]) == len(task_mod.DFR_L2)
    assert fits[:-1] == [(96, task_mod.DFR_L2)] * 4 and fits[-1] == (128, (sel["value"],))

    _, _, abl = task_mod._one_seed(task_mod.DIGITS, task, "interp:neuron_ablation", 0)
    sel = abl["selection"]
    assert sel["param"] == "k" and sel["grid"] == task_mod._k_ladder(64) and sel["examples"] == 128
    assert abl["k"] == sel["value"] and len(abl["units"]) == abl["k"]
    assert ranks == [96] * (4 * len(sel["grid"])) + [128]
    _, _, rnd = task_mod._one_seed(task_mod.DIGITS, task, "baseline:random", 0)
    assert rnd["k"] == abl["k"] and rnd["selection"]["from"] == "interp:neuron_ablation"


def test_a_failing_seed_is_recorded_and_the_others_still_run(monkeypatch):
    real = task_mod._one_seed

    def flaky(family, task, arm, seed):
        if seed == 1:
            raise RuntimeError("out of memory")
        return real(family, task, arm, seed)

    monkeypatch.setattr(task_mod, "_one_seed", flaky)
    out = task_mod.run(task_mod.TASKS[SMALL], "baseline:original", [0, 1])
    assert out.failed == [{"seed": 1, "error": "RuntimeError: out of memory"}]
    assert math.isfinite(out.values["worst_group_accuracy"][0]) and math.isnan(
        out.values["worst_group_accuracy"][1]
    )
