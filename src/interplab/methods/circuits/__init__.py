"""Circuit discovery: methods that score every edge (or node) of a transformer's circuit graph.

    from interplab.methods.circuits import CircuitTask, find_circuit, acdc, eap, eap_ig
    scores = find_circuit("eap", model, task, ablation="resample", metric="logit_diff")
    circuit = scores.to_circuit(top_k=20)

Every method takes ``ablation`` ("zero" | "mean" | "resample") and ``metric`` ("logit_diff" |
"kl" | "l2" | "accuracy" | a callable) and returns :class:`EdgeScores` (``patch_nodes``:
:class:`NodeScores`) with the forward/backward passes it used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interplab.errors import unknown_name
from interplab.methods.circuits.acdc import DEFAULT_THRESHOLDS, acdc, acdc_once
from interplab.methods.circuits.baselines import activation_norm, random_scores, weight_norm
from interplab.methods.circuits.eap import eap, eap_ig
from interplab.methods.circuits.engine import EdgePatcher, PassCounter
from interplab.methods.circuits.graph import EdgeIndex, model_graph
from interplab.methods.circuits.patching import patch_edges, patch_nodes
from interplab.methods.circuits.scores import EdgeScores, NodeScores
from interplab.methods.circuits.task import METRICS, CircuitTask, Metric, resolve_metric

#: Edge-scoring methods by name: fn(model, task, *, ablation, metric, **options) -> EdgeScores.
EDGE_METHODS: dict[str, Callable[..., EdgeScores]] = {
    "patch_edges": patch_edges,
    "acdc": acdc,
    "eap": eap,
    "eap_ig": eap_ig,
    "random": random_scores,
    "weight_norm": weight_norm,
    "activation_norm": activation_norm,
}


def find_circuit(
    method: str,
    model: Any,
    task: CircuitTask,
    *,
    ablation: str = "resample",
    metric: Any = None,
    **options: Any,
) -> EdgeScores:
    """Run the edge-scoring ``method`` (a name in :data:`EDGE_METHODS`). ``metric=None`` uses
    each method's default (kl for ACDC, logit_diff for EAP/EAP-IG, task.metric otherwise)."""
    if method not in EDGE_METHODS:
        raise unknown_name("circuit method", method, tuple(EDGE_METHODS))
    if metric is not None:
        options["metric"] = metric
    return EDGE_METHODS[method](model, task, ablation=ablation, **options)


__all__ = [
    "DEFAULT_THRESHOLDS",
    "EDGE_METHODS",
    "METRICS",
    "CircuitTask",
    "EdgeIndex",
    "EdgePatcher",
    "EdgeScores",
    "Metric",
    "NodeScores",
    "PassCounter",
    "acdc",
    "acdc_once",
    "activation_norm",
    "eap",
    "eap_ig",
    "find_circuit",
    "model_graph",
    "patch_edges",
    "patch_nodes",
    "random_scores",
    "resolve_metric",
    "weight_norm",
]
