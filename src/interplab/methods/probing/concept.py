"""Concept detectors: ways to turn features [n, d] into a concept score [n], fitted on a few
labelled examples, and the AUROC that compares them.

    s = probe_scorer(X, y)                 # logistic regression on the features
    s = direction_scorer(X, y)             # projection on the difference-in-means direction
    s = random_scorer(X, seed=seed)        # projection on a random unit direction (a control)
    s = sparse_probe_scorer(Z, y)          # logistic regression on the top-k of many sparse
                                           # features (e.g. SAE latents), k by cross-validation
    auroc(s.score(X_test), y_test)

Every scorer is a :class:`LinearScorer`: ``score(X) = ((X[:, columns] - mu) / sd) @ w + b``,
higher meaning "more of the concept" (label 1). The sparse probe ranks features by the absolute
difference of their class means on its training data (Kantamneni et al. 2025, "Are sparse
autoencoders useful? A case study in sparse probing"), keeps the top k and fits a probe on them;
k is the value of a fixed ladder with the best mean AUROC over stratified folds of the training
data (ties go to the smaller k), ranking features afresh inside each fold so the held-out fold
never informs the choice.

Each scorer is registered in the ``probing`` family (``linear_probe``, ``diff_in_means``,
``sparse_probe``; ``random`` a baseline) with the call shape ``fn(X, y, *, seed=0, **settings)
-> LinearScorer``; :func:`fit_scorer` dispatches through the registry. They read features, not
a model (cost unit "none").

Shapes: n = examples, d = features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods import registry
from interplab.methods.base import Result
from interplab.methods.probing.probe import LinearProbe
from interplab.methods.registry import register

Tensor = torch.Tensor
K_LADDER = (1, 4, 16, 64, 256)
WEIGHT_DECAY = 1e-2
METRIC = "auroc"


@dataclass(frozen=True)
class LinearScorer(Result):
    """``score(X) = ((X[:, columns] - mu) / sd) @ w + b`` (columns None: all of them)."""

    w: Tensor
    b: float = 0.0
    mu: Tensor | None = None
    sd: Tensor | None = None
    columns: Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def score(self, X: Tensor) -> Tensor:
        X = _check(X)
        if self.columns is not None:
            X = X[:, self.columns]
        if X.shape[1] != self.w.shape[0]:
            raise ShapeError(f"the scorer reads {self.w.shape[0]} features, got {X.shape[1]}")
        if self.mu is not None and self.sd is not None:
            X = (X - self.mu) / self.sd
        return X @ self.w + self.b


def _check(X: Tensor, y: Sequence[int] | None = None) -> Tensor:
    if not isinstance(X, Tensor) or X.dim() != 2:
        raise ShapeError(
            f"features must be a [n, d] tensor, got {getattr(X, 'shape', type(X).__name__)}"
        )
    if y is not None:
        if len(y) != X.shape[0]:
            raise ShapeError(f"{X.shape[0]} feature rows but {len(y)} labels")
        if set(int(v) for v in y) != {0, 1}:
            raise ConfigError(f"labels must be 0/1 with both present, got {sorted(set(y))}")
    return X.detach().float()


def auroc(scores: Tensor | Sequence[float], labels: Tensor | Sequence[int]) -> float:
    """Area under the ROC curve of ``scores`` for labels 1 (or True) vs 0: the probability that
    a random positive outscores a random negative, ties counting 1/2 (Mann-Whitney U from
    average ranks, O(n log n))."""
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels).flatten().long()
    if s.shape[0] != y.shape[0]:
        raise ShapeError(f"{s.shape[0]} scores but {y.shape[0]} labels")
    if not bool(torch.isfinite(s).all()):
        raise ConfigError("AUROC scores must be finite numbers")
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"AUROC needs positives and negatives, got {n_pos} and {n_neg}")
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    ranks = (counts.cumsum(0).double() - (counts.double() - 1) / 2)[
        inverse
    ]  # 1-based, ties averaged
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fit_scorer(
    X: Tensor, y: Sequence[int], *, method: str = "linear_probe", seed: int = 0, **settings: Any
) -> LinearScorer:
    """Fit the registered concept scorer ``method`` on features ``X`` [n, d] and 0/1 labels."""
    return registry.get("probing", method).fn(X, y, seed=seed, **settings)


@register("probing", "linear_probe", kind="method", cost_unit="none", metric=METRIC)
def probe_scorer(
    X: Tensor, y: Sequence[int], *, weight_decay: float = WEIGHT_DECAY, seed: int = 0
) -> LinearScorer:
    """Logistic regression (:class:`LinearProbe`) on standardised features; the score is the
    logit of label 1 minus that of label 0."""
    X = _check(X, y)
    p = LinearProbe(weight_decay=weight_decay, seed=seed).fit(X, [int(v) for v in y])
    W, b = p.coef_, p.intercept_
    return LinearScorer(W[:, 1] - W[:, 0], float(b[1] - b[0]), p.mean_, p.scale_)


@register("probing", "diff_in_means", kind="method", cost_unit="none", metric=METRIC)
def direction_scorer(X: Tensor, y: Sequence[int], *, seed: int = 0) -> LinearScorer:
    """Projection on the difference-in-means direction (mean of label 1 minus mean of label 0)."""
    from interplab.methods.steering import diff_in_means

    X = _check(X, y)
    mask = torch.tensor([int(v) == 1 for v in y])
    d = diff_in_means(X[mask], X[~mask])
    return LinearScorer(d.vector.float(), -d.midpoint, info={"gap": d.gap})


@register("probing", "random", kind="baseline", cost_unit="none", metric=METRIC)
def random_scorer(X: Tensor, y: Sequence[int] | None = None, *, seed: int = 0) -> LinearScorer:
    """Projection on a seeded random unit direction of ``X``'s width: uses no labels (a
    control)."""
    v = torch.randn(_check(X).shape[1], generator=torch.Generator().manual_seed(seed))
    return LinearScorer(v / v.norm())


def rank_features(Z: Tensor, y: Sequence[int]) -> Tensor:
    """Feature indices by decreasing |mean over label 1 - mean over label 0|."""
    mask = torch.tensor([int(v) == 1 for v in y])
    gap = (Z[mask].double().mean(0) - Z[~mask].double().mean(0)).abs()
    return torch.argsort(gap, descending=True, stable=True)


def stratified_folds(y: Sequence[int], n_folds: int, seed: int) -> list[list[int]]:
    """``n_folds`` disjoint index lists, each with about the same share of each label."""
    gen = torch.Generator().manual_seed(seed)
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    for label in (0, 1):
        idx = [i for i, v in enumerate(y) if int(v) == label]
        perm = torch.randperm(len(idx), generator=gen).tolist()
        for j, p in enumerate(perm):
            folds[j % n_folds].append(idx[p])
    return folds


@register("probing", "sparse_probe", kind="method", cost_unit="none", metric=METRIC)
def sparse_probe_scorer(
    Z: Tensor,
    y: Sequence[int],
    *,
    ks: Sequence[int] = K_LADDER,
    n_folds: int = 4,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
) -> LinearScorer:
    """A probe on the top-k features of ``Z`` (see the module docstring); ``info`` holds the
    chosen k, the cross-validated AUROC of every k and the chosen feature indices."""
    Z = _check(Z, y)
    y = [int(v) for v in y]
    ks = sorted({min(int(k), Z.shape[1]) for k in ks if k >= 1})
    if not ks:
        raise ConfigError("the k ladder of a sparse probe must hold at least one k >= 1")
    folds = stratified_folds(y, n_folds, seed)
    cv: dict[int, float] = {}
    for k in ks:
        vals = []
        for f in folds:
            held = set(f)
            tr = [i for i in range(len(y)) if i not in held]
            ytr, yte = [y[i] for i in tr], [y[i] for i in f]
            if len(set(ytr)) < 2 or len(set(yte)) < 2:
                continue
            cols = rank_features(Z[tr], ytr)[:k]
            s = probe_scorer(Z[tr][:, cols], ytr, weight_decay=weight_decay, seed=seed)
            vals.append(auroc(s.score(Z[f][:, cols]), yte))
        cv[k] = sum(vals) / len(vals) if vals else -math.inf
    best = max(ks, key=lambda k: (cv[k], -k))
    cols = rank_features(Z, y)[:best]
    s = probe_scorer(Z[:, cols], y, weight_decay=weight_decay, seed=seed)
    return LinearScorer(
        s.w,
        s.b,
        s.mu,
        s.sd,
        cols,
        {"k": best, "cv_auroc": {str(k): v for k, v in cv.items()}, "features": cols.tolist()},
    )


_WORD = re.compile(r"[a-z']+")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def count_features(
    texts: Sequence[str], vocab: Sequence[str] | None = None
) -> tuple[Tensor, list[str]]:
    """Bag of words: counts [n, |vocab|] of each vocabulary word in each text; the vocabulary
    is the sorted words of ``texts`` when not given (words outside it are not counted)."""
    toks = [words_of(t) for t in texts]
    vocab = sorted({w for ws in toks for w in ws}) if vocab is None else list(vocab)
    index = {w: i for i, w in enumerate(vocab)}
    X = torch.zeros(len(texts), max(1, len(vocab)))
    for r, ws in enumerate(toks):
        for w in ws:
            if w in index:
                X[r, index[w]] += 1
    return X, vocab


__all__ = [
    "K_LADDER",
    "WEIGHT_DECAY",
    "LinearScorer",
    "auroc",
    "count_features",
    "direction_scorer",
    "probe_scorer",
    "random_scorer",
    "rank_features",
    "sparse_probe_scorer",
    "stratified_folds",
    "words_of",
]
