"""The shared statistics: intervals cover their value, and each bootstrap keeps its numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interplab.errors import ConfigError
from interplab.eval import stats


def test_wilson_matches_the_closed_form_and_stays_in_zero_one():
    e = stats.wilson(8, 10)
    z = 1.96
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (e.value, e.n) == (0.8, 10)
    assert e.low == pytest.approx(centre - half) and e.high == pytest.approx(centre + half)
    assert stats.wilson(10, 10).high == 1.0 and stats.wilson(0, 10).low == 0.0
    assert math.isnan(stats.wilson(0, 0).value)


def test_estimate_drops_non_finite_values_and_uses_the_sample_sd():
    e = stats.estimate([1.0, 2.0, 3.0, float("nan")])
    assert (e.value, e.n) == (2.0, 3)
    assert e.high - e.value == pytest.approx(1.96 * 1.0 / math.sqrt(3))
    assert math.isnan(stats.estimate([5.0]).low)


def test_t_interval_is_wider_than_the_normal_one_for_few_values_and_clips_to_bounds():
    vals = [0.2, 0.4, 0.9]
    t, z = stats.t_interval(vals), stats.estimate(vals)
    assert t.value == pytest.approx(z.value)
    assert t.high - t.value == pytest.approx((z.high - z.value) * 4.303 / 1.96)
    assert stats.t_interval(vals, bounds=(0.0, 1.0)).high == 1.0
    with pytest.raises(ConfigError):
        stats.t_interval([1.0])
    with pytest.raises(ConfigError):
        stats.t_interval([1.0, float("inf")])


def test_torch_bootstraps_share_one_seeded_resampler():
    x = torch.tensor([0.0, 1.0, 3.0, 4.0, 10.0], dtype=torch.float64)
    idx = stats.bootstrap_indices(5, 200, seed=3)
    assert torch.equal(idx, stats.bootstrap_indices(5, 200, seed=3))
    means = x[idx].mean(1).sort().values
    e = stats.bootstrap_mean(x, seed=3, n_boot=200)
    assert (e.low, e.high) == (float(means[5]), float(means[194]))
    assert e.low < e.value < e.high
    r = stats.bootstrap_ratio(x, x + 1.0, n_boot=200, seed=3)
    assert r.low <= r.value <= r.high
    with pytest.raises(ConfigError):
        stats.bootstrap_mean(torch.tensor([]))


def test_report_bootstrap_uses_numpy_percentiles_of_the_seeded_resamples():
    vals = [0.0, 1.0, 0.5, 0.25]
    rng = np.random.default_rng(7)
    means = np.asarray(vals)[rng.integers(0, 4, size=(stats.N_BOOT, 4))].mean(axis=1)
    e = stats.bootstrap_interval(vals, seed=7)
    assert (e.lo, e.hi) == tuple(float(q) for q in np.percentile(means, [2.5, 97.5]))
    assert e.mean == e.value == pytest.approx(0.4375)
    assert stats.bootstrap_interval([]).n == 0
