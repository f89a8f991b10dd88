"""SHIFT with retraining on the spurious tasks: the retrain arms really refit the last layer (with
the ablated units kept out of it), their refit reaches DFR's optimum, every choice is made by CV
inside the 128 budget examples (the test split changes no choice), and the random control
ablates as many units as shift_retrain chose."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from interplab.bench.utility import spurious as task_mod
from interplab.bench.utility import spurious_text as text_mod
from interplab.methods import erasure
from interplab.methods.erasure import retrain_readout

SMALL = "spurious-digits-small"
RETRAIN = ("interp:shift_retrain", "interp:erasure_retrain", "baseline:random_retrain")
TEXT = task_mod.CueFamily(
    text_mod._load, text_mod._split, text_mod._delete_cue, text_mod.TEST_SIZE, text_mod.PER_GROUP
)


def _objective(readout, h, y, l2):
    """DFR's objective (retrain_readout's loss) at a readout, in float64."""
    z = readout.logits(h).double()
    return float(F.cross_entropy(z, y) + l2 * (readout.weight.double() ** 2).sum())


def _spy(monkeypatch, name):
    """Record every call of ``task_mod.<name>`` (args, kwargs, result)."""
    calls, real = [], getattr(task_mod, name)

    def spy(*a, **kw):
        out = real(*a, **kw)
        calls.append((a, kw, out))
        return out

    monkeypatch.setattr(task_mod, name, spy)
    return calls


def test_newton_refit_reaches_the_optimum_dfr_aims_at():
    """The retrain arms' solver minimises retrain_readout's own objective at least as well as
    retrain_readout's L-BFGS does (strictly convex: one optimum), and predicts alike."""
    gen = torch.Generator().manual_seed(0)
    h = torch.relu(torch.randn(96, 24, generator=gen))
    y = ((h[:, 0] - h[:, 1] + 0.5 * torch.randn(96, generator=gen)) > 0).long()
    l2s = task_mod.DFR_L2
    heads = task_mod._refit_heads(h, y, l2s)
    for l2, head in zip(l2s, heads):
        with torch.enable_grad():
            ref = retrain_readout(h, y, l2=l2)
        ours, theirs = _objective(head, h, y, l2), _objective(ref, h, y, l2)
        assert ours <= theirs + 1e-6 and abs(ours - theirs) < 1e-4
        agree = (head.logits(h).argmax(-1) == ref.logits(h).argmax(-1)).float().mean()
        assert float(agree) >= 0.98
        # the two rows are opposite (the symmetric optimum of a two-class softmax with L2)
        assert torch.allclose(head.weight[0], -head.weight[1])


def test_an_ablated_unit_gets_no_weight_and_changes_nothing():
    gen = torch.Generator().manual_seed(1)
    h = torch.relu(torch.randn(64, 10, generator=gen))
    y = (h[:, 2] > h[:, 3]).long()
    keep = torch.ones(2, 10, dtype=torch.bool)
    keep[1, [2, 5]] = False
    full, ablated = task_mod._refit_heads(h, y, [0.01, 0.01], keep)
    assert bool((ablated.weight[:, [2, 5]] == 0).all()) and bool((full.weight[:, 2] != 0).all())
    moved = h.clone()
    moved[:, [2, 5]] += torch.randn(64, 2, generator=gen) * 5
    assert torch.allclose(ablated.logits(moved), ablated.logits(h))
    assert not torch.allclose(full.logits(moved), full.logits(h))


def _force_k(monkeypatch, k):
    """shift_retrain's grid reduced to one k (every L2 still), to test what it does with it."""
    monkeypatch.setattr(task_mod, "_shift_grid", lambda width: [(k, l2) for l2 in task_mod.DFR_L2])


@pytest.mark.parametrize("family,task", [(task_mod.DIGITS, SMALL), (TEXT, "spurious-bios-small")])
def test_shift_retrain_refits_the_head_with_the_units_ablated(monkeypatch, family, task):
    _force_k(monkeypatch, 4)
    refits = _spy(monkeypatch, "_refit_heads")
    tasks = task_mod.TASKS if family is task_mod.DIGITS else text_mod.TASKS
    scores, spent, info = task_mod._one_seed(family, tasks[task], "interp:shift_retrain", 0)
    assert info["k"] == 4 and len(info["units"]) == 4 and spent == 128
    (h, y, l2s, keep), _, heads = refits[-1]
    assert len(h) == 128 and l2s == [info["l2"]] and info["selection"]["value"] == (4, info["l2"])
    units = torch.tensor(info["units"])
    assert torch.equal(torch.nonzero(~keep[0]).flatten().sort().values, units.sort().values)
    head = heads[0]
    assert bool((head.weight[:, units] == 0).all())  # the ablated units stay out of the head
    # ...and the ablation is in place when the refit is fit: those columns are constant
    assert bool((h[:, units] == h[0, units]).all())
    # a new head, not the original one: its effective direction differs from the trained readout
    org = family.load(task, 0, False)
    old = (org.net.out.weight[1] - org.net.out.weight[0]).detach()
    new = (head.weight[1] - head.weight[0]) / head.std
    assert float(F.cosine_similarity(old, new, dim=0)) < 0.95
    assert all(0.0 <= scores[m] <= 1.0 for m in ("worst_group_accuracy", "accuracy"))


def test_random_retrain_ablates_as_many_random_units_as_shift_retrain(monkeypatch):
    task = task_mod.TASKS[SMALL]
    _, _, shift = task_mod._one_seed(task_mod.DIGITS, task, "interp:shift_retrain", 1)
    _, _, rnd = task_mod._one_seed(task_mod.DIGITS, task, "baseline:random_retrain", 1)
    assert (rnd["k"], rnd["l2"]) == (shift["k"], shift["l2"])
    assert rnd["selection"]["from"] == "interp:shift_retrain"
    assert rnd["selection"]["cv_score"] == shift["selection"]["cv_score"]  # the same folds

    _force_k(monkeypatch, 8)
    refits = _spy(monkeypatch, "_refit_heads")
    _, _, rnd = task_mod._one_seed(task_mod.DIGITS, task, "baseline:random_retrain", 1)
    (h, _, l2s, keep), _, heads = refits[-1]
    assert rnd["k"] == 8 and len(h) == 128 and l2s == [rnd["l2"]] * task_mod.RANDOM_DRAWS
    assert keep.shape == (task_mod.RANDOM_DRAWS, 64) and (~keep).sum(1).tolist() == [8] * 10
    assert len({tuple(torch.nonzero(~m).flatten().tolist()) for m in keep}) > 1  # random draws
    assert all(bool((hd.weight[:, ~m] == 0).all()) for hd, m in zip(heads, keep))


@pytest.mark.parametrize("arm", RETRAIN)
def test_every_choice_is_made_inside_the_budget_set(monkeypatch, arm):
    """select_by_cv's folds index the 128 budget examples only, every fold fit (and LEACE fit)
    sees 96 of them, and scrambling the test split's labels changes no choice."""
    task = task_mod.TASKS[SMALL]
    seen = []
    real_select = task_mod.select_by_cv

    def select_spy(param, grid, strata, fold_score, **kw):
        def scored(value, tr, held):
            seen.append((len(strata), list(tr), list(held)))
            return fold_score(value, tr, held)

        return real_select(param, grid, strata, scored, **kw)

    monkeypatch.setattr(task_mod, "select_by_cv", select_spy)
    refits = _spy(monkeypatch, "_refit_heads")
    leace_rows, real_leace = [], erasure.fit_leace
    monkeypatch.setattr(
        erasure, "fit_leace", lambda x, z, **kw: leace_rows.append(len(x)) or real_leace(x, z, **kw)
    )
    _, _, info = task_mod._one_seed(task_mod.DIGITS, task, arm, 0)
    assert seen and all(n == 128 for n, _, _ in seen)
    for _, tr, held in seen:
        assert set(tr).isdisjoint(held) and set(tr) | set(held) == set(range(128))
        assert len(held) == 32
    assert [len(a[0]) for a, _, _ in refits] == [96] * 4 + [128]
    if arm == "interp:erasure_retrain":
        assert leace_rows == [96] * 4 + [128]

    def scrambled(org, split):
        data = task_mod._split(org, split)
        if split != "test":
            return data
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(7))
        return dataclasses.replace(data, y=data.y[perm])

    family = dataclasses.replace(task_mod.DIGITS, split=scrambled)
    _, _, again = task_mod._one_seed(family, task, arm, 0)
    assert again["selection"] == info["selection"]


def test_k_zero_of_shift_retrain_is_dfr():
    """k = 0 is DFR itself: shift_retrain's CV scores at k = 0 match DFR's on the same folds (up
    to one held-out image flipping where the two solvers' optima differ by ~1e-6)."""
    task = task_mod.TASKS[SMALL]
    _, _, dfr = task_mod._one_seed(task_mod.DIGITS, task, "baseline:dfr", 2)
    _, _, shift = task_mod._one_seed(task_mod.DIGITS, task, "interp:shift_retrain", 2)
    ours = shift["selection"]["cv_score"]
    for l2, score in dfr["selection"]["cv_score"].items():
        assert abs(ours[f"(0, {l2})"] - score) <= 1 / 32 + 1e-9
    assert shift["selection"]["grid"][: len(task_mod.DFR_L2)] == [(0, l2) for l2 in task_mod.DFR_L2]
