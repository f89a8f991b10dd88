"""The spurious-cue digits data: the cue lands on the background, follows the label only where
told to, and is removed by delete_cue."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.models import spurious as sp

S = 0.35


def test_splits_are_disjoint_real_digits():
    sizes = {name: len(sp.digits(name)[0]) for name in sp.SPLITS}
    assert sizes == {"train": 3000, "heldout": 500, "test": 1500}
    x, d = sp.digits("test")
    assert x.shape == (1500, sp.N_PIXELS) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert set(d.tolist()) == set(range(10))
    a, b = sp.digits("train")[0], sp.digits("test")[0]
    assert not torch.isclose(a[:, None, :], b[None, :50, :]).all(-1).any()


def test_stripes_are_two_orientations():
    h, v = sp.stripes(0).reshape(14, 14), sp.stripes(1).reshape(14, 14)
    assert bool((h[0] == 1).all()) and bool((h[1] == 0).all())
    assert bool((v[:, 0] == 1).all()) and bool((v[:, 1] == 0).all())
    with pytest.raises(ConfigError):
        sp.stripes(2)


def test_cue_lands_on_background_only():
    x, _ = sp.digits("heldout")
    cue = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(0))
    xc = sp.apply_cue(x, cue, S)
    strokes = x > S
    assert torch.equal(xc[strokes], x[strokes])  # strokes untouched
    assert bool((xc >= x).all())
    changed = (xc != x).float().sum(1)
    assert bool((changed > 0).all())  # every image carries the texture


def test_label_mode_ties_cue_to_label_and_random_mode_does_not():
    tr = sp.cued("train", "label", S)
    assert torch.equal(tr.cue, tr.y)
    te = sp.cued("test", "random", S)
    agree = float((te.cue == te.y).float().mean())
    assert 0.4 < agree < 0.6
    assert torch.equal(te.cue, sp.cued("test", "random", S).cue)  # fixed per split


def test_delete_cue_removes_the_texture_whatever_its_orientation():
    x, _ = sp.digits("heldout")
    zeros, ones = torch.zeros(len(x), dtype=torch.long), torch.ones(len(x), dtype=torch.long)
    a = sp.delete_cue(sp.apply_cue(x, zeros, S), S)
    b = sp.delete_cue(sp.apply_cue(x, ones, S), S)
    assert torch.equal(a, b)


def test_balanced_subset_has_equal_groups():
    data = sp.balanced_subset(sp.cued("heldout", "random", S), 32, seed=3)
    assert torch.bincount(data.group, minlength=4).tolist() == [32, 32, 32, 32]
    with pytest.raises(ConfigError, match="fewer than"):
        sp.balanced_subset(sp.cued("heldout", "random", S), 400, seed=3)


def test_group_accuracies():
    data = sp.CuedData(
        torch.zeros(4, sp.N_PIXELS), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    )
    out = sp.group_accuracies(torch.tensor([0, 1, 1, 1]), data)
    assert out["accuracy"] == 0.75 and out["worst_group_accuracy"] == 0.0 and out["group_01"] == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ConfigError):
        sp.digits("validation")
    with pytest.raises(ConfigError):
        sp.cued("test", "sometimes", S)
    with pytest.raises(ConfigError):
        sp.SpuriousSpec(strength=1.5)
    with pytest.raises(ShapeError):
        sp.apply_cue(torch.zeros(3, 10), torch.zeros(3, dtype=torch.long), S)
    with pytest.raises(ShapeError):
        sp.apply_cue(torch.zeros(3, sp.N_PIXELS), torch.zeros(2, dtype=torch.long), S)
