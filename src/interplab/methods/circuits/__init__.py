"""Circuit discovery: methods that score every edge (or node) of a transformer's circuit graph.

    from interplab.methods.circuits import find_circuit
    from interplab.tasks import Task
    scores = find_circuit("eap", model, task, ablation="resample", metric="logit_diff")
    circuit = scores.to_circuit(top_k=20)

The methods are registered in :mod:`interplab.methods.registry` (family ``circuits``):
``patch_edges``, ``acdc``, ``eap``, ``eap_ig``, ``edge_pruning`` (methods) and ``random``,
``weight_norm``, ``activation_norm`` (baselines); ``registry.names("circuits")`` lists them.
Every one takes ``(model, task, *, ablation, metric, ...)`` with ``ablation`` "zero" | "mean" | "resample" and
``metric`` "logit_diff" | "kl" | "l2" | "accuracy" | a callable, and returns
:class:`EdgeScores` (``patch_nodes``: :class:`NodeScores`) whose ``cost`` counts the forward
and backward passes it used.

One engine with two backends (:mod:`.eap`): stacked (:class:`EdgePatcher`, small graphs, any
sub-graph) and running sums (:mod:`.running`, the full graph of a large model).
"""

from __future__ import annotations

from typing import Any

from interplab.methods import registry
from interplab.methods.circuits.acdc import DEFAULT_THRESHOLDS, acdc, acdc_once
from interplab.methods.circuits.baselines import activation_norm, random_scores, weight_norm
from interplab.methods.circuits.eap import BACKENDS, STACKED_MAX_EDGES, eap, eap_ig, ig_points
from interplab.methods.circuits.engine import EdgePatcher, PassCounter
from interplab.methods.circuits.graph import EdgeIndex, model_graph
from interplab.methods.circuits.masks import edge_pruning
from interplab.methods.circuits.patching import patch_edges, patch_nodes
from interplab.methods.circuits.scores import EdgeScores, NodeScores
from interplab.tasks import Task


def find_circuit(
    method: str,
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: Any = None,
    **options: Any,
) -> EdgeScores:
    """Run the registered circuit method ``method`` (``registry.names("circuits")``).
    ``metric=None`` uses each method's default (kl for ACDC, logit_diff for EAP/EAP-IG,
    task.metric otherwise)."""
    spec = registry.get("circuits", method)
    if metric is not None:
        options["metric"] = metric
    return spec.fn(model, task, ablation=ablation, **options)


__all__ = [
    "BACKENDS",
    "DEFAULT_THRESHOLDS",
    "STACKED_MAX_EDGES",
    "EdgeIndex",
    "EdgePatcher",
    "EdgeScores",
    "NodeScores",
    "PassCounter",
    "acdc",
    "acdc_once",
    "activation_norm",
    "eap",
    "eap_ig",
    "edge_pruning",
    "find_circuit",
    "ig_points",
    "model_graph",
    "patch_edges",
    "patch_nodes",
    "random_scores",
    "weight_norm",
]
