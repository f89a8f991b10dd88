from __future__ import annotations

import pytest
import torch

from interplab.data.synthetic import SyntheticConfig, SyntheticFeatures
from interplab.errors import ConfigError


def test_batches_are_a_pure_function_of_seed_and_index():
    org = SyntheticFeatures(SyntheticConfig(n_features=32, d=16, seed=1))
    a, b = org.sample(64, 5), org.sample(64, 5)
    assert torch.equal(a.x, b.x) and torch.equal(a.active, b.active)
    assert not torch.equal(a.x, org.sample(64, 6).x)
    assert not torch.equal(
        a.x, SyntheticFeatures(SyntheticConfig(n_features=32, d=16, seed=2)).sample(64, 5).x
    )
    streamed = list(org.batches(64, n_batches=2, start=5))
    assert torch.equal(streamed[0].x, a.x) and len(streamed) == 2


def test_ground_truth_explains_every_sample():
    org = SyntheticFeatures(SyntheticConfig(n_features=32, d=16, d_out=8))
    fb = org.sample(256)
    assert torch.allclose(org.directions.norm(dim=1), torch.ones(32))
    assert torch.allclose(fb.x, fb.coefficients @ org.directions)
    assert torch.allclose(fb.y, fb.coefficients @ org.out_directions)
    assert torch.equal(fb.active, fb.coefficients > 0)


def test_zipf_frequencies_and_mean_active():
    org = SyntheticFeatures(SyntheticConfig(n_features=64, d=16, mean_active=5, zipf_exponent=1.0))
    fb = org.sample(20000)
    freq = fb.active.float().mean(0)
    assert abs(float(fb.active.sum(1).float().mean()) - 5) < 0.3
    assert float(org.probabilities.max() / org.probabilities.min()) > 30  # Zipf spread
    assert torch.corrcoef(torch.stack([freq, org.probabilities]))[0, 1] > 0.99


def test_correlated_groups_fire_together():
    cfg = SyntheticConfig(
        n_features=64,
        d=16,
        mean_active=2,
        n_groups=2,
        group_size=4,
        group_prob=0.1,
        group_correlation=0.9,
    )
    fb = SyntheticFeatures(cfg).sample(20000)
    a = fb.active.float()
    within = torch.corrcoef(a[:, :4].T)[0, 1:].mean()
    across = torch.corrcoef(a[:, [0, 20]].T)[0, 1]
    assert within > 0.5 and abs(float(across)) < 0.05


def test_hierarchy_children_need_their_parent_and_exclude_each_other():
    cfg = SyntheticConfig(
        n_features=32, d=16, mean_active=4, n_hierarchies=2, children_per_parent=3
    )
    org = SyntheticFeatures(cfg)
    fb = org.sample(5000)
    for parent in (0, 4):
        kids = fb.active[:, parent + 1 : parent + 4]
        assert not (kids.any(1) & ~fb.active[:, parent]).any()
        assert torch.equal(kids.sum(1), fb.active[:, parent].long())
    assert int((org.parent >= 0).sum()) == 6


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(n_features=0), "n_features"),
        (dict(mean_active=0), "mean_active"),
        (dict(magnitude="gaussian"), "magnitude"),
        (dict(n_features=8, n_groups=3, group_size=4), "groups and hierarchies need 12"),
    ],
)
def test_bad_config_names_the_problem(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        SyntheticConfig(**kwargs)
