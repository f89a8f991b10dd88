"""Find and check a circuit on a large model in one call: scores, curves and baselines.

    scores    EAP or EAP-IG over the full edge graph, once per ablation (mean, resample)
    curves    faithfulness of the method's ranking beside a random-edge ranking (averaged over
              ``n_random`` seeds) and, optionally, node-level activation patching, measured on
              held-out prompts (``eval_task``) so a circuit is not judged on the prompts that
              chose it
    result    a JSON-ready dict: task, passes, wall time, the curves with 95% prompt-bootstrap
              intervals, every edge's score, the top edges as a circuit

Used by ``interplab circuit`` and ``benchmarks/real_circuit.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from interplab.eval.circuit_curves import compare, edge_order, node_edge_order, random_order
from interplab.methods.circuits import find_circuit
from interplab.methods.circuits.running import CircuitRunner, GraphLayout, patch_nodes_full

#: Circuit sizes (fractions of the edges) scored on large models.
STUDY_SIZES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0)
#: Rankings that are baselines, never highlighted as the best method.
BASELINES = ("random", "patch_nodes")


def circuit_study(
    model: Any,
    task: Any,
    *,
    eval_task: Any = None,
    method: str = "eap_ig",
    ablations: Sequence[str] = ("mean", "resample"),
    steps: int = 5,
    rule: str = "midpoint",
    batch_size: int = 8,
    n_random: int = 2,
    node_patching: bool = False,
    sizes: Sequence[float] = STUDY_SIZES,
    top: int = 300,
    progress: bool = False,
    model_name: str = "",
) -> dict[str, Any]:
    """Score, rank and check; see the module docstring. ``top`` edges per ablation are kept as
    the drawn circuit. Edges are scored on ``task`` and the curves measured on ``eval_task``
    (held-out prompts; default: ``task`` itself, which the result marks as in-sample)."""
    held_out = eval_task is not None
    eval_task = eval_task if held_out else task
    start = time.perf_counter()
    layout = GraphLayout(model)
    edges = layout.edges
    out: dict[str, Any] = {
        "model": model_name,
        "task": task.name,
        "task_description": task.description,
        "method": method,
        "steps": steps if method == "eap_ig" else None,
        "rule": rule if method == "eap_ig" else None,
        "n_prompts": len(task),
        "n_eval_prompts": len(eval_task),
        "eval_held_out": held_out,
        "batch_size": batch_size,
        "n_edges": len(layout),
        "n_random_seeds": n_random,
        "baselines": list(BASELINES),
        "edges": [str(e) for e in edges],
        "ablations": {},
    }
    for ablation in ablations:
        ig = {"steps": steps, "rule": rule} if method == "eap_ig" else {}
        scores = find_circuit(
            method, model, task, ablation=ablation, batch_size=batch_size, progress=progress, **ig
        )
        runner = CircuitRunner(model, eval_task, ablation, batch_size, layout=layout)
        order = edge_order(scores.scores, edges)
        orders: dict[str, Any] = {
            method: order,
            "random": [random_order(len(layout), s) for s in range(n_random)],
        }
        node_info = None
        if node_patching:
            nodes = patch_nodes_full(
                model,
                eval_task,
                ablation=ablation,
                batch_size=batch_size,
                progress=progress,
                runner=runner,
            )
            orders["patch_nodes"] = node_edge_order(nodes.scores, edges)
            node_info = {str(n): v for n, v in nodes.scores.items()}
        curves = compare(runner, orders, sizes, progress=progress)
        out["ablations"][ablation] = {
            "scores": [round(scores.scores[e], 7) for e in edges],
            "top_edges": [
                {
                    "edge": str(edges[i]),
                    "sender": str(edges[i].sender),
                    "receiver": str(edges[i].receiver),
                    "channel": edges[i].channel,
                    "score": scores.scores[edges[i]],
                }
                for i in order[:top]
            ],
            "forward_passes": scores.cost.forward,
            "backward_passes": scores.cost.backward,
            "seconds": scores.seconds,
            "signed_sum": scores.extra["signed_sum"],
            "node_patching": node_info,
            "curves": [c.to_dict() for c in curves],
        }
    out["seconds"] = time.perf_counter() - start
    return out
