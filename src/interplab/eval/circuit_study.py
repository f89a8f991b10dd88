"""Find and check a circuit on a large model in one call: scores, curves and baselines.

    scores    each method (EAP, EAP-IG, edge pruning, ...) over the full edge graph, once per
              ablation (mean, resample), on ``task``
    curves    MIB's faithfulness curves (:func:`~interplab.eval.circuit_curves.mib_curve`) on
              held-out prompts (``eval_task``), so a circuit is not judged on the prompts that
              chose it: each method's signed ranking (MIB's CPR), its absolute ranking (MIB's
              CMD), a random edge order and, optionally, node-level activation patching
    drawn     the ``top`` edges of the first method's signed ranking, pruned as MIB prunes, with
              their own f and interval: the circuit the page draws
    result    a JSON-ready dict: task, passes, wall time split into scoring and curves, every
              edge's signed score, the curves with 95% prompt-bootstrap intervals, MIB's CPR
              and CMD, f at 1%, 2% and 5% of the edges, the drawn circuit

Signed scores: positive means the edge supports the behaviour (ablating it lowers the metric
m), as MIB ranks them for CPR. EAP and EAP-IG return d m / d(ablation), so their signed score is
its negative; methods that score how much to keep an edge (edge pruning) have one ranking, used
for both CPR and CMD.

Cost is counted in forward passes of the eval prompts: a circuit already run (the same kept
edges from another ranking, the empty and the full circuit) is not run again.

Used by ``interplab circuit`` and ``benchmarks/real_circuit.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from interplab.eval.circuit_curves import (
    MIB_SIZES,
    PointCache,
    make_curve,
    mib_curve,
    node_edge_order,
    prune_kept,
    random_order,
    value_order,
)
from interplab.methods.circuits import find_circuit
from interplab.methods.circuits.running import (
    CircuitRunner,
    GraphLayout,
    patch_nodes_full,
    progress_bar,
)

#: Rankings that are baselines, never highlighted as the best method.
BASELINES = ("random", "patch_nodes")
#: Methods whose scores are d m / d(ablation strength): signed importance is minus the score.
GRADIENT_METHODS = ("eap", "eap_ig")
#: Circuit sizes whose f the summary reports (fractions of the edges).
REPORTED_SIZES = (0.01, 0.02, 0.05)


def _scores(method: str, model: Any, task: Any, ablation: str, options: dict) -> Any:
    """The method's scores (signed for the gradient methods)."""
    kwargs = dict(options)
    if method in GRADIENT_METHODS:
        kwargs["signed"] = True
    return find_circuit(method, model, task, ablation=ablation, **kwargs)


def circuit_study(
    model: Any,
    task: Any,
    *,
    eval_task: Any = None,
    methods: Sequence[str] = ("eap_ig",),
    ablations: Sequence[str] = ("mean", "resample"),
    steps: int = 5,
    rule: str = "midpoint",
    batch_size: int = 8,
    eval_batch_size: int = 32,
    n_random: int = 1,
    node_patching: bool = False,
    sizes: Sequence[float] = MIB_SIZES,
    prune: bool = True,
    top: int = 300,
    method_options: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
    model_name: str = "",
) -> dict[str, Any]:
    """Score, rank and check; see the module docstring. Edges are scored on ``task`` (chunks of
    ``batch_size`` prompts) and the curves measured on ``eval_task`` (chunks of
    ``eval_batch_size``; default: ``task`` itself, which the result marks as in-sample).
    ``method_options``: extra keyword arguments per method (e.g. ``{"edge_pruning": {...}}``)."""
    if isinstance(methods, str):
        methods = (methods,)
    held_out = eval_task is not None
    eval_task = eval_task if held_out else task
    start = time.perf_counter()
    layout = GraphLayout(model)
    edges = layout.edges
    n = len(layout)
    out: dict[str, Any] = {
        "model": model_name,
        "task": task.name,
        "task_description": task.description,
        "methods": list(methods),
        "method": methods[0],
        "steps": steps if "eap_ig" in methods else None,
        "rule": rule if "eap_ig" in methods else None,
        "n_prompts": len(task),
        "n_eval_prompts": len(eval_task),
        "eval_held_out": held_out,
        "batch_size": batch_size,
        "eval_batch_size": eval_batch_size,
        "n_edges": n,
        "n_random_seeds": n_random,
        "sizes": list(sizes),
        "pruned": prune,
        "baselines": list(BASELINES),
        "score_sign": "positive: the edge supports the behaviour (ablating it lowers m)",
        "edges": [str(e) for e in edges],
        "ablations": {},
    }
    score_seconds = curve_seconds = 0.0
    for ablation in ablations:
        block: dict[str, Any] = {"methods": {}, "curves": []}
        signed: dict[str, torch.Tensor] = {}
        for method in methods:
            options = dict((method_options or {}).get(method, {}))
            if method == "eap_ig":
                options.setdefault("steps", steps)
                options.setdefault("rule", rule)
            options.setdefault("batch_size", batch_size)
            options.setdefault("progress", progress)
            t0 = time.perf_counter()
            result = _scores(method, model, task, ablation, options)
            score_seconds += time.perf_counter() - t0
            values = torch.tensor([result.scores[e] for e in edges], dtype=torch.float64)
            signed[method] = -values if method in GRADIENT_METHODS else values
            block["methods"][method] = {
                "forward_passes": result.cost.forward,
                "backward_passes": result.cost.backward,
                "seconds": result.seconds,
                "signed_sum": float(signed[method].sum()),
                "two_rankings": method in GRADIENT_METHODS,
                "scores": [round(float(v), 7) for v in signed[method]],
            }
        t0 = time.perf_counter()
        runner = CircuitRunner(model, eval_task, ablation, eval_batch_size, layout=layout)
        full = runner.values(None)
        empty = runner.values(torch.ones(n))
        cache = PointCache(runner, full, empty)
        plans: list[tuple[str, str, list[int] | list[list[int]]]] = []
        for method in methods:
            plans.append((method, "signed", value_order(signed[method])))
            if method in GRADIENT_METHODS:
                plans.append((f"{method} |score|", "absolute", value_order(signed[method].abs())))
        randoms = [random_order(n, s) for s in range(n_random)]
        plans.append(("random", "random", randoms[0] if n_random == 1 else randoms))
        if node_patching:
            nodes = patch_nodes_full(
                model,
                eval_task,
                ablation=ablation,
                batch_size=eval_batch_size,
                progress=progress,
                runner=runner,
            )
            plans.append(("patch_nodes", "absolute", node_edge_order(nodes.scores, edges)))
            block["node_patching"] = {str(k): v for k, v in nodes.scores.items()}
        bar = progress_bar(
            len(plans) * len(sizes) + 1, f"faithfulness [{ablation}] (circuits)", progress
        )
        curves = [
            mib_curve(name, ranking, cache, order, sizes, prune, on_point=bar.update)
            for name, ranking, order in plans
        ]
        # the drawn circuit: the first method's top edges, pruned like every curve point
        first = methods[0]
        order = value_order(signed[first])
        kept = torch.zeros(n, dtype=torch.bool)
        kept[order[: min(top, n)]] = True
        if prune:
            kept = prune_kept(layout, kept)
        drawn_vals = cache(kept)
        bar.update(1)
        bar.close()
        drawn_curve = make_curve("drawn", runner, drawn_vals.unsqueeze(0), full, empty, (1.0,))
        curve_seconds += time.perf_counter() - t0
        kept_ids = [i for i in order[: min(top, n)] if kept[i]]
        block["drawn"] = {
            "method": first,
            "ranking": "signed",
            "top": min(top, n),
            "n_kept": len(kept_ids),
            "fraction": len(kept_ids) / n,
            "f": drawn_curve.f[0],
            "f_ci": [drawn_curve.f_low[0], drawn_curve.f_high[0]],
        }
        block["top_edges"] = [
            {
                "edge": str(edges[i]),
                "sender": str(edges[i].sender),
                "receiver": str(edges[i].receiver),
                "channel": edges[i].channel,
                "score": float(signed[first][i]),
            }
            for i in kept_ids
        ]
        block["curves"] = [c.to_dict() for c in curves]
        block["summary"] = summarise(curves, methods)
        block["curve_forward_passes"] = runner.forward
        block["curve_circuits_run"] = cache.runs
        block["m_full"], block["m_empty"] = float(full.mean()), float(empty.mean())
        out["ablations"][ablation] = block
    out["score_seconds"] = score_seconds
    out["curve_seconds"] = curve_seconds
    out["seconds"] = time.perf_counter() - start
    return out


def summarise(curves: Sequence[Any], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per ranking name: MIB's CPR (signed ranking) and CMD (absolute ranking) with intervals,
    interplab's log area, and f at :data:`REPORTED_SIZES` with intervals."""
    by_name = {c.method: c for c in curves}
    out: dict[str, dict[str, Any]] = {}
    names = [*methods, *[c.method for c in curves if c.ranking == "random"]]
    names += [c.method for c in curves if c.method == "patch_nodes"]
    for name in names:
        cpr_curve = by_name.get(name)
        if cpr_curve is None:
            continue
        cmd_curve = by_name.get(f"{name} |score|", cpr_curve)
        f_at = {}
        for s in REPORTED_SIZES:
            if s in cpr_curve.sizes:
                i = cpr_curve.sizes.index(s)
                f_at[str(s)] = [cpr_curve.f[i], cpr_curve.f_low[i], cpr_curve.f_high[i]]
        out[name] = {
            "baseline": name in BASELINES or cpr_curve.ranking == "random",
            "mib_cpr": cpr_curve.cpr,
            "mib_cpr_ci": list(cpr_curve.cpr_ci),
            "mib_cmd": cmd_curve.cmd,
            "mib_cmd_ci": list(cmd_curve.cmd_ci),
            "log_area": cpr_curve.log_area,
            "log_area_ci": list(cpr_curve.log_area_ci),
            "f_at": f_at,
            "n_prompts": cpr_curve.n_prompts,
        }
    return out
