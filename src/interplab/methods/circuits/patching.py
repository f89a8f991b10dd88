"""Activation patching: ablate one node (all its outgoing edges) or one edge at a time and
measure how far the metric moves from the clean run. One forward per node or edge."""

from __future__ import annotations

import time
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.scores import EdgeScores, NodeScores
from interplab.methods.registry import register
from interplab.tasks import MetricSpec, Task


def patch_nodes(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = None,
    graph: Circuit | None = None,
) -> NodeScores:
    """Score each head and MLP by |m(node ablated) - m(clean)|: the node's output is replaced by
    its ablated value for every reader."""
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    base = float(eng.score(None))
    scores = {}
    for node in eng.index.senders:
        if node.kind not in ("head", "mlp"):
            continue
        strength = torch.zeros(eng.n_edges)
        strength[eng.index.outgoing(node)] = 1.0
        scores[node] = abs(float(eng.score(strength)) - base)
    return NodeScores(
        scores,
        "patch_nodes",
        ablation,
        eng.metric.name,
        cost=eng.cost(),
        seconds=time.perf_counter() - start,
    )


@register("circuits", "patch_edges", kind="method", cost_unit="passes", metric="edge_auroc")
def patch_edges(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = None,
    graph: Circuit | None = None,
) -> EdgeScores:
    """Path patching: score each edge by |m(edge ablated) - m(clean)|, all other edges clean."""
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    base = float(eng.score(None))
    scores = {}
    for i, edge in enumerate(eng.index.edges):
        strength = torch.zeros(eng.n_edges)
        strength[i] = 1.0
        scores[edge] = abs(float(eng.score(strength)) - base)
    return eng.edge_scores(scores, "patch_edges", start)
