from __future__ import annotations

import pytest
import torch
from torch import nn

from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.errors import ShapeError
from interplab.eval.features import (
    dead_fraction,
    feature_recovery,
    l0,
    loss_recovered,
    max_cosines,
    mmcs,
    score_dictionary,
    variance_explained,
)
from interplab.methods.dictionaries import DictionaryConfig, SparseDictionary


def test_mmcs_of_exact_permuted_and_random_dictionaries():
    true = torch.randn(20, 10, generator=torch.Generator().manual_seed(0))
    assert mmcs(true, 3.0 * true[torch.randperm(20)]) == pytest.approx(1.0)
    basis = torch.eye(5)
    assert mmcs(basis, -basis) == pytest.approx(0.0)  # sign matters: latents are non-negative
    random = torch.randn(20, 10, generator=torch.Generator().manual_seed(1))
    assert mmcs(true, random) < 0.8
    with pytest.raises(ShapeError, match="same d"):
        mmcs(true, torch.randn(5, 9))


def test_feature_recovery_counts_by_hand():
    e = torch.eye(4)
    learned = torch.stack([e[0], e[1], (e[2] + e[3]) / 2**0.5, e[0] + 0.01 * e[1]])
    rec = feature_recovery(e, learned, threshold=0.9)
    assert rec.recall == pytest.approx(0.5)  # features 0 and 1 found
    assert rec.precision == pytest.approx(0.75)  # latents 0, 1, 3 match; latent 2 is a blend
    assert rec.f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    live = torch.tensor([True, True, False, True])
    assert feature_recovery(e, learned, 0.9, live=live).precision == pytest.approx(1.0)
    assert torch.allclose(max_cosines(e, learned)[2:], torch.full((2,), 2**-0.5))


def test_proxies():
    latents = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    assert l0(latents) == pytest.approx(1.5)
    assert dead_fraction(latents) == pytest.approx(0.5)
    x = torch.randn(100, 5)
    assert variance_explained(x, x) == pytest.approx(1.0)
    assert variance_explained(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-6)


def _identity_sae(d: int) -> SparseDictionary:
    """relu(x) - relu(-x) = x: a ReLU SAE that reconstructs exactly."""
    sae = SparseDictionary(DictionaryConfig(d_in=d, d_latent=2 * d))
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 1))
        sae.W_dec.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 0))
        sae.b_enc.zero_(), sae.b_dec.zero_()
    return sae


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Linear(4, 6)
        self.mid = nn.Identity()
        self.b = nn.Linear(6, 3)
        for p in self.parameters():
            nn.init.normal_(p, generator=g)

    def forward(self, x):
        return self.b(self.mid(torch.relu(self.a(x))))


def test_loss_recovered_is_one_for_exact_and_zero_for_ablation_level_reconstructions():
    model = wrap_module(_Net(), ["mid"])
    site, inputs = Site.module("mid"), torch.randn(32, 4)
    assert loss_recovered(model, site, inputs, _identity_sae(6)) == pytest.approx(1.0)
    nothing = _identity_sae(6)
    with torch.no_grad():
        nothing.W_dec.zero_()
    assert loss_recovered(model, site, inputs, nothing) == pytest.approx(0.0, abs=1e-6)
    half = _identity_sae(6)
    with torch.no_grad():
        half.W_dec.mul_(0.5)
    assert 0.0 < loss_recovered(model, site, inputs, half, ablation="mean") < 1.0


def test_loss_recovered_rejects_a_dictionary_of_the_wrong_width():
    model = wrap_module(_Net(), ["mid"])
    with pytest.raises(ShapeError, match="width 5 -> 5 but module:mid has width 6"):
        loss_recovered(model, Site.module("mid"), torch.randn(4, 4), _identity_sae(5))


def test_score_dictionary_reports_ground_truth_next_to_proxies():
    true = torch.eye(6)
    x = torch.rand(64, 6)
    scores = score_dictionary(_identity_sae(6), x, true_directions=true)
    assert scores.mmcs == pytest.approx(1.0) and scores.recall == 1.0
    assert scores.variance_explained == pytest.approx(1.0)
    assert scores.dead_fraction == pytest.approx(0.5)  # the negative half never fires on x >= 0
    assert scores.precision == 1.0  # dead latents are not counted against precision
    assert set(scores.as_dict()) >= {
        "mmcs",
        "feature_f1",
        "l0",
        "variance_explained",
        "loss_recovered",
    }
    assert score_dictionary(_identity_sae(6), x).mmcs is None
