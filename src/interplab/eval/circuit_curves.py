"""Faithfulness curves of edge rankings on large models, with prompt-bootstrap intervals.

For a ranking of the full graph's edges, the circuit of size k keeps the top k edges and ablates
the rest. f(C) = (m(C) - m(∅)) / (m(N) - m(∅)) with m the task's mean logit difference (MIB);
CPR = area under f over the size fraction, CMD = area under |1 - f| (trapezoid rule, as in
:mod:`interplab.eval.faithfulness`). Every m is kept per prompt, so one bootstrap over prompts
(the same resampled prompts for m(C), m(N) and m(∅)) gives a 95% interval for f, CPR and CMD.

MIB's definition (Mueller et al. 2025, circuit localisation), followed by :func:`mib_curve`:
the sizes are :data:`MIB_SIZES` (0.1% .. 100% of the edges, no empty circuit), the circuit of
size s keeps the first ``int(s * n_edges)`` edges of the ranking, then drops every kept edge that
cannot carry the input to the logits through kept edges (:func:`prune_kept`); CPR ranks edges by
their signed score (higher = the edge supports the behaviour), CMD by the absolute score, and
both areas are linear in the size fraction. interplab adds ``log_area``: the mean f per decade
of size (trapezoid over log10 s from 0.1% to 100%, divided by 3), which weighs the small
circuits a reader cares about as much as the large ones that dominate the linear area.

Baselines ranked by the same curve:

    random        edges in a seeded random order (the curve is averaged over ``n_seeds`` orders)
    patch_nodes   node-level activation patching: an edge ranks by the smaller score of its two
                  ends (embeddings and logits count as kept), so the top k edges are the graph
                  induced by the best nodes
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.eval.faithfulness import DEFAULT_SIZES, _trapz
from interplab.eval.stats import bootstrap_indices
from interplab.methods.circuits.running import CircuitRunner, GraphLayout

Tensor = torch.Tensor

#: MIB's circuit sizes (fractions of the edges), smallest first.
MIB_SIZES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


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
    ranking: str = "absolute"
    n_kept: tuple[int, ...] = ()
    log_area: float = float("nan")
    log_area_ci: tuple[float, float] = (float("nan"), float("nan"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def best_small(self, max_size: float = 0.05) -> tuple[float, float] | None:
        """(size, f) of the most faithful circuit no larger than ``max_size``, if any."""
        pts = [(s, v) for s, v in zip(self.sizes, self.f) if s <= max_size]
        return max(pts, key=lambda p: p[1]) if pts else None


def edge_order(scores: Mapping, layout_edges: Sequence) -> list[int]:
    """Edge ids from highest to lowest score (ties by edge order)."""
    return sorted(range(len(layout_edges)), key=lambda i: (-scores[layout_edges[i]], i))


def value_order(values: Tensor) -> list[int]:
    """Edge ids from highest to lowest ``values`` [n_edges] (ties by edge id)."""
    ids = torch.arange(len(values))
    # stable sort on -values keeps ties in id order
    return ids[torch.sort(-values.double(), stable=True).indices].tolist()


def prune_kept(layout: GraphLayout, kept: Tensor) -> Tensor:
    """Drop kept edges that cannot carry the input to the logits through kept edges (MIB's
    ``apply_topn(..., prune=True)``): an edge stays if its sender is reached from the
    embeddings and its receiver reaches the logits, both through kept edges. ``kept``:
    bool [n_edges]; returns a new bool tensor."""
    senders, receivers = layout.senders, layout.receivers
    sender_id = layout.index.sender_id
    es, er = layout.edge_sender, layout.edge_receiver
    # the sender id of each receiver's node (None for the logits)
    recv_sender = torch.tensor([sender_id.get(node, -1) for node, _ in receivers])
    kept = kept.bool()
    reached = torch.zeros(len(senders), dtype=torch.bool)
    live = torch.zeros(len(senders), dtype=torch.bool)
    into, out_of = layout.edges_into, layout.edges_out_of
    for i, node in enumerate(senders):  # senders are numbered in topological order
        if node.kind not in ("head", "mlp"):
            reached[i] = True  # embeddings
            continue
        e = into[i]
        reached[i] = bool((kept[e] & reached[es[e]]).any()) if len(e) else False
    to_logits = recv_sender < 0
    for i in range(len(senders) - 1, -1, -1):
        e = out_of[i]
        if len(e):
            r = er[e]
            ok = to_logits[r] | live[recv_sender[r].clamp(min=0)]
            live[i] = bool((kept[e] & ok).any())
    recv_live = to_logits | live[recv_sender.clamp(min=0)]
    return kept & reached[es] & recv_live[er]


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


class PointCache:
    """Per-prompt metric values of circuits already run, keyed by their kept-edge set, so two
    rankings that keep the same edges at a size (or the empty / full circuit) cost one run."""

    def __init__(self, runner: CircuitRunner, full: Tensor, empty: Tensor):
        self.runner, self.full, self.empty = runner, full, empty
        self.values: dict[str, Tensor] = {}
        self.runs = 0

    def __call__(self, kept: Tensor) -> Tensor:
        n_kept = int(kept.sum())
        if n_kept == 0:
            return self.empty
        if n_kept == len(kept):
            return self.full
        key = hashlib.sha1(kept.numpy().tobytes()).hexdigest()
        if key not in self.values:
            self.values[key] = self.runner.values((~kept).float())
            self.runs += 1
        return self.values[key]


def mib_points(
    layout: GraphLayout,
    order: Sequence[int],
    sizes: Sequence[float] = MIB_SIZES,
    prune: bool = True,
) -> list[Tensor]:
    """The kept-edge sets (bool [n_edges]) of MIB's circuits of ``sizes`` from ``order``."""
    n = len(layout)
    ids = torch.as_tensor(list(order), dtype=torch.long)
    out = []
    for s in sizes:
        kept = torch.zeros(n, dtype=torch.bool)
        kept[ids[: int(s * n)]] = True
        out.append(prune_kept(layout, kept) if prune else kept)
    return out


def mib_curve(
    name: str,
    ranking: str,
    cache: PointCache,
    order: Sequence[int] | Sequence[Sequence[int]],
    sizes: Sequence[float] = MIB_SIZES,
    prune: bool = True,
    on_point: Callable[[], None] | None = None,
) -> Curve:
    """The MIB curve of ``order`` (see the module docstring), its per-prompt values from
    ``cache``; ``on_point`` is called after each size (progress). ``order`` may be several
    orders (e.g. random seeds): each point is then the per-prompt mean over them, and
    ``n_kept`` the mean kept count, rounded."""
    layout = cache.runner.layout
    orders = [order] if not len(order) or isinstance(order[0], int) else list(order)
    points = [mib_points(layout, o, sizes, prune) for o in orders]  # type: ignore[arg-type]
    values, kept_counts = [], []
    for at in zip(*points):
        values.append(torch.stack([cache(kept) for kept in at]).mean(0))
        kept_counts.append(round(sum(int(k.sum()) for k in at) / len(at)))
        if on_point is not None:
            on_point()
    curve = make_curve(name, cache.runner, torch.stack(values), cache.full, cache.empty, sizes)
    fields = curve.to_dict()
    fields.update(
        ranking=ranking,
        n_edges=tuple(int(s * len(layout)) for s in sizes),
        n_kept=tuple(kept_counts),
    )
    return Curve(**fields)


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
    log_sizes = [s for s in sizes if s > 0]
    if len(log_sizes) >= 2:
        lx = [math.log10(s) for s in log_sizes]
        width = lx[-1] - lx[0]
        rows = [i for i, s in enumerate(sizes) if s > 0]
        log_area = _trapz(lx, [f[i] for i in rows]) / width
        logs = torch.tensor([_trapz(lx, fb[rows, b].tolist()) / width for b in range(n_boot)])
        log_ci = q(logs)
    else:
        log_area, log_ci = float("nan"), (float("nan"), float("nan"))
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
        log_area=log_area,
        log_area_ci=log_ci,
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
