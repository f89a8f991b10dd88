"""Bootstrap intervals and ranks for the report (numpy only; seeded, so reports are reproducible)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    n: int

    def fmt(self, digits: int = 2) -> str:
        if self.n < 2:  # one cell: a bootstrap over it is a point, not an interval
            return f"{self.mean:.{digits}f} (one cell, no interval)"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def bootstrap_mean(values: Sequence[float], seed: int = 0, n_boot: int = N_BOOT) -> Interval:
    """The mean with a 95% percentile-bootstrap interval (n = len(values))."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Interval(float(x.mean()), float(lo), float(hi), int(x.size))


@dataclass(frozen=True)
class RankInterval:
    rank: int  # rank of the point estimate (1 = best)
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
