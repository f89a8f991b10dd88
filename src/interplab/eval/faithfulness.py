"""MIB-style faithfulness of the top-k edges of a ranking.

f(C) = (m(C) - m(∅)) / (m(N) - m(∅)), where m(C) runs the model keeping only the edges of C
(the rest ablated), N is the full graph (the clean run) and ∅ ablates every edge. Circuit sizes
are fractions of the graph's edges; CPR = area under f, CMD = area under |1 - f|, both by the
trapezoid rule over the size fraction (x from the smallest to the largest size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.methods.circuits import EdgePatcher, EdgeScores
from interplab.tasks import Task

DEFAULT_SIZES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class Faithfulness:
    """f at each circuit size. ``sizes``: fractions of edges; ``n_edges``: edges kept."""

    sizes: tuple[float, ...]
    n_edges: tuple[int, ...]
    f: tuple[float, ...]
    m_full: float
    m_empty: float
    cpr: float
    cmd: float
    ablation: str
    metric: str


def faithfulness_of(
    keep_fn, n_total: int, m_full: float, m_empty: float, sizes: Sequence[float]
) -> tuple[list[int], list[float]]:
    counts, values = [], []
    denom = m_full - m_empty
    if abs(denom) < 1e-12:
        raise ConfigError(
            "m(N) equals m(∅): ablating every edge does not change the metric, so "
            "faithfulness is undefined; check the task's corrupted inputs and metric"
        )
    for s in sizes:
        k = int(round(s * n_total))
        counts.append(k)
        values.append((keep_fn(k) - m_empty) / denom)
    return counts, values


def faithfulness(
    model: Any,
    task: Task,
    scores: EdgeScores,
    *,
    ablation: str | None = None,
    metric: Any = "logit_diff",
    sizes: Sequence[float] = DEFAULT_SIZES,
) -> Faithfulness:
    """f(top-k edges of ``scores``) for each size in ``sizes``; ablation defaults to the one the
    scores were computed with."""
    ablation = ablation or scores.ablation
    if ablation not in ("zero", "mean", "resample"):
        raise ConfigError(
            f"faithfulness needs an ablation (zero, mean, resample); got {ablation!r}"
        )
    sizes = tuple(sorted(float(s) for s in sizes))
    if not sizes or sizes[0] < 0 or sizes[-1] > 1:
        raise ConfigError(f"sizes are fractions of edges in [0, 1], got {sizes}")
    eng = EdgePatcher(model, task, ablation, metric=metric)
    order = [
        eng.index.edge_id[e]
        for e in sorted(scores.scores, key=lambda e: (-scores.scores[e], e))
        if e in eng.index.edge_id
    ]
    n = eng.n_edges

    def keep_top(k: int) -> float:
        keep = torch.zeros(n)
        keep[order[:k]] = 1.0
        return eng.score_keep(keep)

    m_full = eng.score_keep(torch.ones(n))
    m_empty = eng.score_keep(torch.zeros(n))
    counts, f = faithfulness_of(keep_top, n, m_full, m_empty, sizes)
    cpr = _trapz(sizes, f)
    cmd = _trapz(sizes, [abs(1 - v) for v in f])
    return Faithfulness(
        sizes, tuple(counts), tuple(f), m_full, m_empty, cpr, cmd, ablation, eng.metric.name
    )


def _trapz(x: Sequence[float], y: Sequence[float]) -> float:
    return float(sum((x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(x, x[1:], y, y[1:])))
