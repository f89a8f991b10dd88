"""Estimates with 95% intervals: the one statistics module of interplab.

    Estimate          a value with its interval [low, high] and n, the number of samples
    wilson            a proportion with its Wilson score interval
    estimate          a mean with its normal-approximation interval (mean ± 1.96 s / sqrt(n))
    t_interval        a mean with its Student-t interval (few samples: per-seed values)
    bootstrap_indices the resamples every torch bootstrap here draws (seeded)
    bootstrap_mean    a mean with a percentile-bootstrap interval (torch; order statistics)
    bootstrap_ratio   1 − mean(num)/mean(den) with a percentile-bootstrap interval (paired)
    bootstrap_interval  a mean with a percentile-bootstrap interval for report pages (numpy)
    bootstrap_ranks   ranks of methods with the interval of each rank over resampled units

Every bootstrap is seeded, so a number is the same on every run. Two resamplers exist on
purpose: the torch one (``bootstrap_indices``) gives the bench's stored numbers, the numpy one
(``bootstrap_interval``, ``bootstrap_ranks``) gives the report's; each keeps its seeds and
resampling order so that no published number moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interplab.errors import ConfigError

Tensor = torch.Tensor

#: the normal 97.5% quantile: a two-sided 95% interval is value ± Z95 × standard error
Z95 = 1.96
#: two-sided 97.5% quantiles of Student's t for df = 1..30 (beyond: the normal Z95)
T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
#: resamples of the report's bootstrap (:func:`bootstrap_interval`, :func:`bootstrap_ranks`)
N_BOOT = 2000


@dataclass(frozen=True)
class Estimate:
    """A value (mean, proportion or ratio) with a 95% interval and the number of samples behind
    it. ``mean``, ``lo`` and ``hi`` are the same numbers under the report's names."""

    value: float
    low: float
    high: float
    n: int

    @property
    def mean(self) -> float:
        return self.value

    @property
    def lo(self) -> float:
        return self.low

    @property
    def hi(self) -> float:
        return self.high

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    def fmt(self, digits: int = 2) -> str:
        """``value [low, high]``; one sample has no interval and says so."""
        if self.n < 2:  # one cell: a bootstrap over it is a point, not an interval
            return f"{self.value:.{digits}f} (one cell, no interval)"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Wilson score interval for ``successes`` out of ``n`` (n = 0: NaN)."""
    if n == 0:
        return NAN_ESTIMATE
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def estimate(values: Sequence[float]) -> Estimate:
    """The mean of the finite ``values`` with a normal 95% interval, mean ± 1.96 s / sqrt(n)
    (s: sample standard deviation; n: the finite values; one value: NaN bounds; none: NaN)."""
    v = torch.tensor([float(x) for x in values], dtype=torch.float64)
    v = v[torch.isfinite(v)]
    n = int(v.numel())
    if n == 0:
        return NAN_ESTIMATE
    m = float(v.mean())
    half = Z95 * float(v.std()) / math.sqrt(n) if n > 1 else float("nan")
    return Estimate(m, m - half, m + half, n)


def t_interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> Estimate:
    """The mean of ``values`` (at least 2, all finite) with a Student-t 95% interval, clipped
    to ``bounds`` (the metric's range, e.g. (0, 1) for a share); n = len(values)."""
    vals = [float(v) for v in values]
    if len(vals) < 2:
        raise ConfigError(f"a t-interval needs at least 2 values, got {len(vals)}")
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"a t-interval needs finite numbers, got {vals}")
    k = len(vals)
    mean = sum(vals) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (k - 1))
    t = T975[k - 2] if k - 1 <= len(T975) else Z95
    half = t * sd / math.sqrt(k)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Estimate(mean, low, high, k)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> Tensor:
    """[n_boot, n] indices into n samples, drawn with replacement from a generator seeded
    with ``seed``: row b is resample b."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (n_boot, n), generator=gen)


def bootstrap_mean(values: Tensor, seed: int = 0, n_boot: int = 1000) -> Estimate:
    """The mean of ``values`` [n] with a 95% percentile-bootstrap interval: the 2.5% and 97.5%
    order statistics of ``n_boot`` resampled means."""
    n = len(values)
    if n == 0:
        raise ConfigError("no points to average")
    x = values.double()
    means = x[bootstrap_indices(n, n_boot, seed)].mean(1).sort().values
    return Estimate(
        float(x.mean()),
        float(means[int(0.025 * n_boot)]),
        float(means[int(0.975 * n_boot) - 1]),
        n,
    )


def bootstrap_ratio(num: Tensor, den: Tensor, *, n_boot: int = 500, seed: int = 0) -> Estimate:
    """1 - mean(num)/mean(den) with a percentile bootstrap interval over paired samples [n]."""
    n = int(num.shape[0])
    value = float(1 - num.mean() / den.mean().clamp_min(1e-12))
    idx = bootstrap_indices(n, n_boot, seed)
    boots = 1 - num[idx].mean(1) / den[idx].mean(1).clamp_min(1e-12)
    lo, hi = torch.quantile(boots, torch.tensor([0.025, 0.975], dtype=boots.dtype)).tolist()
    return Estimate(value, lo, hi, n)


def bootstrap_interval(values: Sequence[float], seed: int = 0, n_boot: int = N_BOOT) -> Estimate:
    """The mean of ``values`` with a 95% percentile-bootstrap interval (numpy; linear
    interpolation between resampled means), as the report shows it; empty: NaN with n = 0."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return NAN_ESTIMATE
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Estimate(float(x.mean()), float(lo), float(hi), int(x.size))


@dataclass(frozen=True)
class RankInterval:
    """A method's rank (1 = best) by its point estimate, with the 95% interval of its rank
    over bootstrap resamples."""

    rank: int
    lo: int
    hi: int

    def fmt(self) -> str:
        return f"{self.rank}" if self.lo == self.hi else f"{self.rank} [{self.lo}–{self.hi}]"


def bootstrap_ranks(
    table: Mapping[str, Sequence[float]],
    higher_is_better: bool = True,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict[str, RankInterval]:
    """Ranks of methods by their mean over the same units (``table[method][unit]``, equal
    lengths: paired), with the 95% interval of each method's rank over bootstrap resamples of
    the units."""
    names = list(table)
    if not names:
        return {}
    x = np.asarray([table[m] for m in names], dtype=float)  # [method, unit]
    sign = -1.0 if higher_is_better else 1.0

    def ranks(means: np.ndarray) -> np.ndarray:  # 1 = best; ties share the better rank
        order = sign * means
        return (order[..., :, None] > order[..., None, :]).sum(-1) + 1

    point = ranks(x.mean(axis=1))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[1], size=(n_boot, x.shape[1]))
    boot = ranks(x[:, idx].mean(axis=2).T)  # [boot, method]
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        m: RankInterval(int(point[i]), int(np.floor(lo[i])), int(np.ceil(hi[i])))
        for i, m in enumerate(names)
    }
