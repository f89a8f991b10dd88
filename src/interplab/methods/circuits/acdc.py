"""ACDC (Conmy et al. 2023): prune edges greedily from the logits backwards.

For one threshold tau: visit receivers from the output towards the input; for each incoming
edge (latest sender first) ablate it on top of everything pruned so far, and keep it pruned if
the metric gets worse by less than tau (signed for kl/l2, absolute change otherwise). A node
that no longer reaches the output has all its incoming edges pruned without a test.

:func:`acdc` sweeps several thresholds; an edge's score is the largest threshold at which it
survives (0 if none), so ``scores >= tau`` recovers the circuit at ``tau`` and a ROC curve can
be drawn from the sweep.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.scores import EdgeScores
from interplab.methods.registry import register
from interplab.tasks import MetricSpec, Task

Tensor = torch.Tensor
DEFAULT_THRESHOLDS = tuple(float(t) for t in torch.logspace(-4, 0, 9))


def acdc_once(eng: EdgePatcher, threshold: float) -> Tensor:
    """One ACDC pass at ``threshold``. Returns the keep mask [n_edges] (1 = in the circuit)."""
    index = eng.index
    keep = torch.ones(eng.n_edges)
    current = float(eng.score(1.0 - keep))
    for receiver in reversed(index.receivers):
        incoming = [i for i, e in enumerate(index.edges) if e.receiver == receiver]
        if receiver.kind != "logits" and not any(keep[j] for j in index.outgoing(receiver)):
            keep[incoming] = 0.0
            continue
        incoming.sort(
            key=lambda i: (index.edges[i].sender.order, index.edges[i].channel), reverse=True
        )
        for i in incoming:
            keep[i] = 0.0
            new = float(eng.score(1.0 - keep))
            if eng.metric.damage(new, current) < threshold:
                current = new
            else:
                keep[i] = 1.0
    return keep


@register("circuits", "acdc", kind="method", cost_unit="passes", metric="edge_auroc")
def acdc(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "kl",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    graph: Circuit | None = None,
) -> EdgeScores:
    """Run ACDC at each of ``thresholds`` (metric units). Score = largest surviving threshold.
    ``extra["circuits"]`` maps each threshold to its number of edges."""
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    scores = torch.zeros(eng.n_edges)
    sizes = {}
    for tau in sorted(thresholds):
        keep = acdc_once(eng, tau)
        scores = torch.where(keep > 0, torch.full_like(scores, tau), scores)
        sizes[tau] = int(keep.sum())
    return eng.edge_scores(scores, "acdc", start, circuit_sizes=sizes)
