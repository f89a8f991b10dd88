"""Circuit recovery: how well edge or node scores rank a ground-truth circuit.

    roc_points(scores, truth)      [(fpr, tpr)] sweeping the threshold from +inf down through
                                   every distinct score (ties move together)
    auroc(scores, truth)           area under those points, trapezoidal (= the probability a true
                                   item outscores a false one, ties counting 1/2)
    pessimistic_auroc(...)         step-function area (each segment takes its lower-left tpr),
                                   the conservative figure ACDC reports for a threshold sweep
    edge_auroc / node_auroc        the same against a :class:`Circuit` (nodes: heads and MLPs)

Use the ground truth that matches the ablation: ``truth.for_ablation(ablation)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from interplab.core.circuit import Circuit
from interplab.errors import ConfigError


def roc_points(
    scores: Mapping[Hashable, float], truth: Iterable[Hashable]
) -> list[tuple[float, float]]:
    """ROC curve of ``scores`` for the positive set ``truth`` (items missing from ``scores``
    are ignored). Starts at (0, 0), ends at (1, 1). Raises if either class is empty."""
    positives = set(truth) & set(scores)
    n_pos, n_neg = len(positives), len(scores) - len(positives)
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(
            f"ROC needs both true and false items; found {n_pos} true and {n_neg} "
            "false among the scored ones (does the truth use the same graph?)"
        )
    by_value: dict[float, list[int]] = {}
    for item, value in scores.items():
        by_value.setdefault(float(value), [0, 0])[0 if item in positives else 1] += 1
    points = [(0.0, 0.0)]
    tp = fp = 0
    for value in sorted(by_value, reverse=True):
        tp += by_value[value][0]
        fp += by_value[value][1]
        points.append((fp / n_neg, tp / n_pos))
    return points


def auroc(scores: Mapping[Hashable, float], truth: Iterable[Hashable]) -> float:
    points = roc_points(scores, truth)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))


def pessimistic_auroc(scores: Mapping[Hashable, float], truth: Iterable[Hashable]) -> float:
    points = roc_points(scores, truth)
    return sum((x1 - x0) * y0 for (x0, y0), (x1, _) in zip(points, points[1:]))


def edge_auroc(scores, truth: Circuit, *, pessimistic: bool = False) -> float:
    """AUROC of EdgeScores (or a {edge: score} mapping) against ``truth.edges``."""
    values = getattr(scores, "scores", scores)
    return (pessimistic_auroc if pessimistic else auroc)(values, truth.edges)


def node_auroc(scores, truth: Circuit, *, pessimistic: bool = False) -> float:
    """AUROC over heads and MLPs. ``scores``: NodeScores, EdgeScores (node = max incident edge)
    or a {node: score} mapping."""
    if hasattr(scores, "to_nodes"):
        scores = scores.to_nodes()
    values = getattr(scores, "scores", scores)
    values = {n: v for n, v in values.items() if n.kind in ("head", "mlp")}
    return (pessimistic_auroc if pessimistic else auroc)(values, truth.nodes)
