"""Faithfulness curves of edge rankings on large models, with prompt-bootstrap intervals.

For a ranking of the full graph's edges, the circuit of size k keeps the top k edges and ablates
the rest. f(C) = (m(C) - m(∅)) / (m(N) - m(∅)) with m the task's mean logit difference (MIB);
CPR = area under f over the size fraction, CMD = area under |1 - f| (trapezoid rule, as in
:mod:`interplab.eval.faithfulness`). Every m is kept per prompt, so one bootstrap over prompts
(the same resampled prompts for m(C), m(N) and m(∅)) gives a 95% interval for f, CPR and CMD.

Baselines ranked by the same curve:

    random        edges in a seeded random order (the curve is averaged over ``n_seeds`` orders)
    patch_nodes   node-level activation patching: an edge ranks by the smaller score of its two
                  ends (embeddings and logits count as kept), so the top k edges are the graph
                  induced by the best nodes
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.eval.faithfulness import DEFAULT_SIZES, _trapz
from interplab.eval.stats import bootstrap_indices
from interplab.methods.circuits.running import CircuitRunner

Tensor = torch.Tensor


@dataclass(frozen=True)
class Curve:
    """f per size (fractions of the graph's edges) with 95% bootstrap intervals over prompts."""

    method: str
    ablation: str
    sizes: tuple[float, ...]
    n_edges: tuple[int, ...]
    f: tuple[float, ...]
    f_low: tuple[float, ...]
    f_high: tuple[float, ...]
    cpr: float
    cpr_ci: tuple[float, float]
    cmd: float
    cmd_ci: tuple[float, float]
    m_full: float
    m_empty: float
    n_prompts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def best_small(self, max_size: float = 0.05) -> tuple[float, float] | None:
        """(size, f) of the most faithful circuit no larger than ``max_size``, if any."""
        pts = [(s, v) for s, v in zip(self.sizes, self.f) if s <= max_size]
        return max(pts, key=lambda p: p[1]) if pts else None


def edge_order(scores: Mapping, layout_edges: Sequence) -> list[int]:
    """Edge ids from highest to lowest score (ties by edge order)."""
    return sorted(range(len(layout_edges)), key=lambda i: (-scores[layout_edges[i]], i))


def node_edge_order(node_scores: Mapping, layout_edges: Sequence) -> list[int]:
    """Edge ids ranked by the smaller node score of their ends (see the module docstring)."""
    inf = float("inf")
    key = lambda n: node_scores.get(n, inf) if n.kind in ("head", "mlp") else inf  # noqa: E731
    ranks = [min(key(e.sender), key(e.receiver)) for e in layout_edges]
    return sorted(range(len(layout_edges)), key=lambda i: (-ranks[i], i))


def random_order(n: int, seed: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def _counts(sizes: Sequence[float], n: int) -> list[int]:
    return [int(round(s * n)) for s in sizes]


def curve_values(
    runner: CircuitRunner, order: Sequence[int], sizes: Sequence[float], full: Tensor, empty: Tensor
) -> Tensor:
    """[n_sizes, n_prompts] per-prompt metric keeping the top edges of ``order`` (the empty and
    the full circuit reuse ``empty`` / ``full``)."""
    n = len(runner.layout)
    return torch.stack(
        [empty if k == 0 else full if k == n else runner.keep(order[:k]) for k in _counts(sizes, n)]
    )


def make_curve(
    method: str,
    runner: CircuitRunner,
    values: Tensor,
    full: Tensor,
    empty: Tensor,
    sizes: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> Curve:
    """The :class:`Curve` of per-prompt ``values`` [n_sizes, n_prompts] given per-prompt m(N)
    and m(∅) [n_prompts]."""
    sizes = tuple(float(s) for s in sizes)
    denom = float(full.mean() - empty.mean())
    if abs(denom) < 1e-9:
        raise ConfigError(
            "m(N) equals m(∅): ablating every edge does not change the metric, so "
            "faithfulness is undefined; check the task's corrupted prompts"
        )
    f = ((values.mean(1) - empty.mean()) / denom).tolist()
    n = values.shape[1]
    idx = bootstrap_indices(n, n_boot, seed)
    num = values[:, idx].mean(2) - empty[idx].mean(1)  # [sizes, boot]
    den = full[idx].mean(1) - empty[idx].mean(1)
    fb = num / den.where(den.abs() > 1e-9, torch.full_like(den, float("nan")))
    lo, hi = fb.nanquantile(0.025, dim=1).tolist(), fb.nanquantile(0.975, dim=1).tolist()
    cprs = torch.tensor([_trapz(sizes, fb[:, b].tolist()) for b in range(n_boot)])
    cmds = torch.tensor([_trapz(sizes, (1 - fb[:, b]).abs().tolist()) for b in range(n_boot)])
    q = lambda t: (float(t.nanquantile(0.025)), float(t.nanquantile(0.975)))  # noqa: E731
    return Curve(
        method,
        runner.ablation,
        sizes,
        tuple(_counts(sizes, len(runner.layout))),
        tuple(f),
        tuple(lo),
        tuple(hi),
        _trapz(sizes, f),
        q(cprs),
        _trapz(sizes, [abs(1 - v) for v in f]),
        q(cmds),
        float(full.mean()),
        float(empty.mean()),
        n,
    )


def compare(
    runner: CircuitRunner,
    orders: Mapping[str, Sequence[int] | list[Sequence[int]]],
    sizes: Sequence[float] = DEFAULT_SIZES,
    progress: bool = False,
) -> list[Curve]:
    """One :class:`Curve` per named ranking. A value that is a list of rankings (random seeds)
    is averaged per prompt before the curve is taken."""
    from tqdm.auto import tqdm

    sizes = tuple(sorted(float(s) for s in sizes))
    if not sizes or sizes[0] < 0 or sizes[-1] > 1:
        raise ConfigError(f"sizes are fractions of edges in [0, 1], got {sizes}")
    full = runner.values(None)
    empty = runner.values(torch.ones(len(runner.layout)))
    out = []
    for name, order in tqdm(
        list(orders.items()),
        desc=f"faithfulness [{runner.ablation}]",
        disable=not progress,
        leave=False,
    ):
        many = order if order and isinstance(order[0], (list, tuple)) else [order]
        values = torch.stack([curve_values(runner, o, sizes, full, empty) for o in many]).mean(0)
        out.append(make_curve(name, runner, values, full, empty, sizes))
    return out
