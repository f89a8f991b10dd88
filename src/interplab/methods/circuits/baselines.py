"""Baselines a discovery method must beat.

random_scores      seeded uniform scores (no passes)
weight_norm        |W_out of the sender|_F * |W_in of the receiver on its channel|_F
activation_norm    mean over (batch, position) of |S_s @ W_in(receiver channel)|, the size of
                   what the receiver reads from the sender on the clean inputs (1 forward)
"""

from __future__ import annotations

import time
from typing import Any

import torch

from interplab.core.circuit import Circuit, Node
from interplab.methods.base import Cost
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.graph import EdgeIndex, model_graph
from interplab.methods.circuits.scores import EdgeScores
from interplab.methods.registry import register
from interplab.tasks import Task

Tensor = torch.Tensor


@register("circuits", "random", kind="baseline", cost_unit="none", metric="edge_auroc")
def random_scores(
    model: Any,
    task: Task | None = None,
    *,
    ablation: str = "resample",
    seed: int = 0,
    graph: Circuit | None = None,
    **_: Any,
) -> EdgeScores:
    """Uniform random scores in [0, 1), seeded."""
    index = EdgeIndex(graph if graph is not None else model_graph(model))
    values = torch.rand(len(index), generator=torch.Generator().manual_seed(seed))
    return EdgeScores(
        {e: float(values[i]) for i, e in enumerate(index.edges)}, "random", ablation, "none"
    )


def _sender_matrix(model: Any, node: Node) -> Tensor:
    m = model.model
    if node.kind == "tok_embed":
        return m.embed.W_E
    if node.kind == "pos_embed":
        return m.pos_embed.W_pos
    if node.kind == "head":
        return m.blocks[node.layer].attn.W_O[node.head]
    return m.blocks[node.layer].mlp.W_out


def _receiver_matrix(model: Any, node: Node, channel: str) -> Tensor:
    m = model.model
    if node.kind == "head":
        return getattr(m.blocks[node.layer].attn, f"W_{channel.upper()}")[node.head]
    if node.kind == "mlp":
        return m.blocks[node.layer].mlp.W_in
    return m.unembed.W_U


@register("circuits", "weight_norm", kind="baseline", cost_unit="none", metric="edge_auroc")
def weight_norm(
    model: Any,
    task: Task | None = None,
    *,
    ablation: str = "resample",
    graph: Circuit | None = None,
    **_: Any,
) -> EdgeScores:
    """Product of the Frobenius norms of the sender's output and receiver's input weights."""
    index = EdgeIndex(graph if graph is not None else model_graph(model))
    with torch.no_grad():
        scores = {
            e: float(
                _sender_matrix(model, e.sender).norm()
                * _receiver_matrix(model, e.receiver, e.channel).norm()
            )
            for e in index.edges
        }
    return EdgeScores(scores, "weight_norm", ablation, "none")


@register("circuits", "activation_norm", kind="baseline", cost_unit="passes", metric="edge_auroc")
def activation_norm(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    graph: Circuit | None = None,
    **_: Any,
) -> EdgeScores:
    """Mean norm of the sender's clean output as read through the receiver's input weights."""
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph)
    outs = eng.sender_outputs(task.clean)[1]  # [s, b, p, d]
    scores = {}
    with torch.no_grad():
        for e in eng.index.edges:
            read = outs[eng.index.sender_id[e.sender]] @ _receiver_matrix(
                model, e.receiver, e.channel
            )
            scores[e] = float(read.norm(dim=-1).mean())
    return EdgeScores(
        scores,
        "activation_norm",
        ablation,
        "none",
        cost=Cost(forward=eng.counter.forward),
        seconds=time.perf_counter() - start,
    )
