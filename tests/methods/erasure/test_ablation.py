"""Unit ranking by concept attribution, mean ablation, and the DFR readout."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.erasure import mean_ablate, rank_units, retrain_readout


def _planted(n=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randint(0, 2, (n,), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    h = torch.rand(n, 6, generator=gen)
    h[:, 4] += 3.0 * z  # unit 4 carries the concept
    h[:, 1] += 3.0 * y  # unit 1 carries the label
    return h, z, y


def test_the_planted_unit_ranks_first_and_readout_weights_matter():
    h, z, _ = _planted()
    r = rank_units(h, z)
    assert int(r.order[0]) == 4
    readout = torch.ones(6)
    readout[4] = 0.0  # a unit the output ignores carries no attribution
    assert int(rank_units(h, z, readout=readout).order[0]) != 4


def test_mean_ablation_removes_the_concept_and_keeps_the_rest():
    h, z, _ = _planted()
    r = rank_units(h, z)
    out = mean_ablate(h, r.top(1), r.means)
    assert torch.allclose(out[:, 4], torch.full((len(h),), float(h[:, 4].mean())))
    assert torch.equal(out[:, :4], h[:, :4]) and torch.equal(mean_ablate(h, r.top(0), r.means), h)


def test_retrained_readout_reads_the_label_unit():
    h, _, y = _planted(seed=1)
    ro = retrain_readout(h, y)
    acc = float((ro.logits(h).argmax(-1) == y).float().mean())
    assert acc > 0.95
    diff = ro.weight[1] - ro.weight[0]
    assert int(diff.abs().argmax()) == 1


def test_bad_input():
    h, z, y = _planted()
    with pytest.raises(ConfigError):
        rank_units(h, torch.zeros_like(z))
    with pytest.raises(ShapeError):
        rank_units(h, z[:5])
    with pytest.raises(ShapeError):
        rank_units(h, z, readout=torch.ones(3))
    with pytest.raises(ConfigError):
        rank_units(h, z).top(7)
    with pytest.raises(ConfigError):
        retrain_readout(h, y + 2)
