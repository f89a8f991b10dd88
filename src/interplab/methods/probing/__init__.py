"""Linear probes, scikit-learn style, with a control task for selectivity (Hewitt & Liang 2019).

    probe = LinearProbe().fit(X_train, y_train)
    acc = probe.score(X_test, y_test)
    result = probe_selectivity(X, y, types)   # accuracy on y minus accuracy on a control task

The control task gives every *type* (e.g. the token at the position) a random label drawn from
the real labels' distribution, fixed per type: a probe that merely memorises types scores well
on it; selectivity = real accuracy - control accuracy rewards probes that read the variable.

Shapes: n = examples, d = features, c = classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


class LinearProbe:
    """Multinomial logistic regression trained with full-batch L-BFGS (torch; deterministic,
    warning-free). ``weight_decay``: L2 penalty on the weights."""

    def __init__(self, *, weight_decay: float = 1e-3, max_iter: int = 200, seed: int = 0):
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.seed = seed
        self.classes_: list[Any] | None = None
        self.W: Tensor | None = None  # [d, c]
        self.b: Tensor | None = None  # [c]
        self.mu: Tensor | None = None
        self.sd: Tensor | None = None

    def fit(self, X: Tensor, y: Sequence[Any]) -> "LinearProbe":
        """X [n, d] features, y n labels (any hashable values)."""
        X = _check_x(X, len(y))
        self.classes_ = sorted(set(y), key=repr)
        index = {repr(c): i for i, c in enumerate(self.classes_)}
        target = torch.tensor([index[repr(v)] for v in y])
        self.mu, self.sd = X.mean(0), X.std(0).clamp_min(1e-6)
        Xn = (X - self.mu) / self.sd
        gen = torch.Generator().manual_seed(self.seed)
        W = (torch.randn(X.shape[1], len(self.classes_), generator=gen) * 0.01).requires_grad_()
        b = torch.zeros(len(self.classes_), requires_grad=True)
        opt = torch.optim.LBFGS([W, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(Xn @ W + b, target) + self.weight_decay * W.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.W, self.b = W.detach(), b.detach()
        return self

    def predict(self, X: Tensor) -> list[Any]:
        if self.W is None or self.classes_ is None:
            raise ConfigError("this LinearProbe is not fitted yet; call fit(X, y) first")
        X = _check_x(X, None)
        ids = (((X - self.mu) / self.sd) @ self.W + self.b).argmax(-1).tolist()
        return [self.classes_[i] for i in ids]

    def score(self, X: Tensor, y: Sequence[Any]) -> float:
        """Accuracy on (X, y)."""
        pred = self.predict(X)
        return sum(repr(p) == repr(t) for p, t in zip(pred, y)) / max(1, len(y))


def _check_x(X: Tensor, n: int | None) -> Tensor:
    if not isinstance(X, Tensor) or X.dim() != 2:
        raise ShapeError(f"probe features must be a [n, d] tensor, got "
                         f"{getattr(X, 'shape', type(X).__name__)}; flatten [b, p, d] "
                         "activations with x.reshape(-1, d)")
    if n is not None and X.shape[0] != n:
        raise ShapeError(f"{X.shape[0]} feature rows but {n} labels")
    return X.detach().float()


def control_labels(y: Sequence[Any], types: Sequence[Any], seed: int = 0) -> list[Any]:
    """Hewitt & Liang control task: each distinct type gets one label sampled from y's
    empirical distribution (seeded); every example of that type carries it."""
    if len(y) != len(types):
        raise ShapeError(f"{len(y)} labels but {len(types)} types")
    gen = torch.Generator().manual_seed(seed)
    table: dict[str, Any] = {}
    for t in sorted({repr(t) for t in types}):
        table[t] = y[int(torch.randint(0, len(y), (1,), generator=gen))]
    return [table[repr(t)] for t in types]


@dataclass(frozen=True)
class ProbeResult:
    """Held-out accuracy on the variable and on the control task; selectivity = difference."""

    accuracy: float
    control_accuracy: float
    selectivity: float
    majority_baseline: float
    n_train: int
    n_test: int


def probe_selectivity(X: Tensor, y: Sequence[Any], types: Sequence[Any], *,
                      test_fraction: float = 0.3, seed: int = 0, **probe_kw: Any) -> ProbeResult:
    """Fit a probe on the variable ``y`` and on the control task of ``types``; report held-out
    accuracies and selectivity. Examples are shuffled (seeded) before the split."""
    X = _check_x(X, len(y))
    n = X.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, int(n * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    ctrl = control_labels(y, types, seed)
    pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731
    real = LinearProbe(seed=seed, **probe_kw).fit(X[tr], pick(y, tr)).score(X[te], pick(y, te))
    fake = LinearProbe(seed=seed, **probe_kw).fit(X[tr], pick(ctrl, tr)).score(X[te], pick(ctrl, te))
    counts: dict[str, int] = {}
    for v in pick(y, te):
        counts[repr(v)] = counts.get(repr(v), 0) + 1
    return ProbeResult(real, fake, real - fake, max(counts.values()) / n_test, len(tr), n_test)


__all__ = ["LinearProbe", "ProbeResult", "control_labels", "probe_selectivity"]
