"""A global surrogate: a shallow decision tree fitted to the model's own decisions.

``fit_surrogate(model, held_out_rows, baseline=train_rows, depth=3)`` grows a tree greedily
(Gini impurity; numeric/ordinal splits at the rows' deciles, categorical splits one category vs
the rest) on the *model's decisions* over ``train_rows``, and reports its **fidelity**: the
share of ``held_out_rows`` on which tree and model decide alike, beside the fidelity of always predicting
the majority decision (the floor). ``rules()`` reads the tree as if-then rules.

A K-class model (K > 2) is mimicked the same way on its predicted classes (``model.predict``):
Gini impurity over K classes, each leaf the majority class, fidelity = agreement on the
predicted class. A binary model is fitted exactly as before (on its decisions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from interplab.methods.base import Cost, Result
from interplab.methods.rationales.model import DecisionModel
from interplab.methods.registry import register

Tensor = torch.Tensor
MIN_LEAF = 10


@dataclass(frozen=True)
class Node:
    feature: int = -1  # -1: a leaf
    threshold: float = 0.0  # numeric/ordinal: go left when x <= threshold
    category: int = -1  # categorical: go left when x == category
    left: Node | None = None
    right: Node | None = None
    decision: bool | int = False  # a leaf's decision (binary) or class index (K classes)
    n: int = 0


@dataclass(frozen=True)
class Surrogate(Result):
    """A fitted tree, its held-out ``fidelity`` and the majority-decision floor;
    ``cost.evaluations``: rows the model decided."""

    root: Node
    fidelity: float
    majority_fidelity: float
    n_held_out: int
    features: tuple

    classes: int = 2  # K: the tree predicts decisions (2) or class indices (K > 2)

    def predict(self, x: Tensor) -> Tensor:
        return torch.tensor(
            [_walk(self.root, row) for row in x],
            dtype=torch.bool if self.classes == 2 else torch.long,
        )

    def rules(self, outcomes: tuple[str, ...] = ("refuse", "approve")) -> list[str]:
        out: list[str] = []
        _rules(self.root, self.features, [], outcomes, out)
        return out


def _walk(node: Node, row: Tensor) -> bool | int:
    while node.feature >= 0:
        v = float(row[node.feature])
        go_left = round(v) == node.category if node.category >= 0 else v <= node.threshold
        node = node.left if go_left else node.right  # type: ignore[assignment]
    return node.decision


def _gini(y: Tensor) -> float:
    if len(y) == 0:
        return 0.0
    if y.dtype != torch.bool:  # K classes
        shares = torch.bincount(y).double() / len(y)
        return float(1 - (shares * shares).sum()) * len(y)
    p = float(y.double().mean())
    return 2 * p * (1 - p) * len(y)


def _majority(y: Tensor) -> bool | int:
    if y.dtype != torch.bool:
        return int(torch.bincount(y).argmax()) if len(y) else 0
    return bool(y.double().mean() >= 0.5) if len(y) else False


def _grow(model: DecisionModel, x: Tensor, y: Tensor, depth: int) -> Node:
    leaf = Node(decision=_majority(y), n=len(y))
    if depth == 0 or len(y) < 2 * MIN_LEAF or bool((y == y[0]).all()):
        return leaf
    best, best_split = _gini(y), None
    for j, f in enumerate(model.features):
        col = x[:, j]
        if f.kind == "categorical":
            splits = [(c, -1.0) for c in range(len(f.values))]
        else:
            qs = torch.quantile(col, torch.linspace(0.1, 0.9, 9, dtype=torch.float64)).unique()
            splits = [(-1, float(t)) for t in qs]
        for cat, thr in splits:
            mask = col.round() == cat if cat >= 0 else col <= thr
            if MIN_LEAF <= int(mask.sum()) <= len(y) - MIN_LEAF:
                g = _gini(y[mask]) + _gini(y[~mask])
                if g < best - 1e-9:
                    best, best_split = g, (j, cat, thr, mask)
    if best_split is None:
        return leaf
    j, cat, thr, mask = best_split
    return Node(
        j,
        thr,
        cat,
        _grow(model, x[mask], y[mask], depth - 1),
        _grow(model, x[~mask], y[~mask], depth - 1),
        leaf.decision,
        len(y),
    )


@register(
    "rationales", "surrogate", kind="method", cost_unit="evaluations", metric="surrogate_fidelity"
)
def fit_surrogate(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0, depth: int = 3
) -> Surrogate:
    """A depth-``depth`` tree mimicking ``model``'s decisions on the ``baseline`` rows, scored
    on the held-out rows ``x`` (deterministic: ``seed`` is unused)."""
    start = time.perf_counter()
    held_out_rows = x
    x = baseline.double()
    k = model.n_classes
    label = model.decide if k == 2 else model.predict
    root = _grow(model, x, label(x), depth)
    truth = label(held_out_rows.double())
    tree = Surrogate(root, 0.0, 0.0, len(truth), model.features, k)
    fid = float((tree.predict(held_out_rows) == truth).double().mean())
    if k == 2:
        majority = float(max(truth.double().mean(), 1 - truth.double().mean()))
    else:
        majority = float(torch.bincount(truth, minlength=k).max()) / max(1, len(truth))
    return Surrogate(
        root,
        fid,
        majority,
        len(truth),
        model.features,
        k,
        cost=Cost(evaluations=len(x) + len(truth)),
        seconds=time.perf_counter() - start,
    )


def _rules(
    node: Node, features: tuple, path: list[str], outcomes: tuple[str, ...], out: list[str]
) -> None:
    if node.feature < 0:
        out.append(
            ("if " + " and ".join(path) if path else "always") + f": {outcomes[int(node.decision)]}"
        )
        return
    f = features[node.feature]
    if node.category >= 0:
        yes, no = (
            f"{f.title} is '{f.values[node.category]}'",
            f"{f.title} is not '{f.values[node.category]}'",
        )
    elif f.kind == "ordinal":
        yes = f"{f.title} at most '{f.values[int(node.threshold)]}'"
        no = f"{f.title} above '{f.values[int(node.threshold)]}'"
    else:
        yes, no = f"{f.title} ≤ {f.show(node.threshold)}", f"{f.title} > {f.show(node.threshold)}"
    _rules(node.left, features, path + [yes], outcomes, out)  # type: ignore[arg-type]
    _rules(node.right, features, path + [no], outcomes, out)  # type: ignore[arg-type]
