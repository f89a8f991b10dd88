"""Linear probes, scikit-learn style, with a control task for selectivity (Hewitt & Liang 2019).

    probe = LinearProbe().fit(X_train, y_train)
    acc = probe.score(X_test, y_test)
    types = token_position_types(inputs)      # one (token, position) type per example
    result = probe_selectivity(X, y, types)   # accuracy on y minus accuracy on a control task

The control task gives every *type* a random label drawn from the real labels' distribution,
fixed per type: a probe that merely memorises types scores well on it; selectivity = real
accuracy - control accuracy rewards probes that read the variable. The control task is only
informative when there are many types and its labels vary: on a 3-token vocabulary with the
token as the type, all three types often draw the same label and the control is constant (every
probe then scores 1.0 on it and selectivity is 0 or negative whatever the site holds). Hence
(token, position) types, and :func:`control_task` refuses a degenerate control
(:class:`DegenerateControlTask`, with the reason) instead of returning a meaningless number.

Shapes: n = examples, d = features, c = classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Result

Tensor = torch.Tensor


class LinearProbe:
    """Multinomial logistic regression trained with full-batch L-BFGS (torch; deterministic,
    warning-free). ``weight_decay``: L2 penalty on the weights. Fitted: ``classes_``,
    ``coef_`` [d, c], ``intercept_`` [c], and the standardisation ``mean_``, ``scale_`` [d]."""

    def __init__(self, *, weight_decay: float = 1e-3, max_iter: int = 200, seed: int = 0):
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X: Tensor, y: Sequence[Any]) -> LinearProbe:
        """X [n, d] features, y n labels (any hashable values)."""
        X = _check_x(X, len(y))
        self.classes_ = sorted(set(y), key=repr)
        index = {repr(c): i for i, c in enumerate(self.classes_)}
        target = torch.tensor([index[repr(v)] for v in y])
        self.mean_, self.scale_ = X.mean(0), X.std(0).clamp_min(1e-6)
        Xn = (X - self.mean_) / self.scale_
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
        self.coef_, self.intercept_ = W.detach(), b.detach()  # [d, c], [c]
        return self

    def predict(self, X: Tensor) -> list[Any]:
        if not hasattr(self, "coef_"):
            raise ConfigError("this LinearProbe is not fitted yet; call fit(X, y) first")
        X = _check_x(X, None)
        ids = (((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_).argmax(-1).tolist()
        return [self.classes_[i] for i in ids]

    def score(self, X: Tensor, y: Sequence[Any]) -> float:
        """Accuracy on (X, y)."""
        pred = self.predict(X)
        return sum(repr(p) == repr(t) for p, t in zip(pred, y)) / max(1, len(y))


def _check_x(X: Tensor, n: int | None) -> Tensor:
    if not isinstance(X, Tensor) or X.dim() != 2:
        raise ShapeError(
            f"probe features must be a [n, d] tensor, got "
            f"{getattr(X, 'shape', type(X).__name__)}; flatten [b, p, d] "
            "activations with x.reshape(-1, d)"
        )
    if n is not None and X.shape[0] != n:
        raise ShapeError(f"{X.shape[0]} feature rows but {n} labels")
    return X.detach().float()


def control_labels(y: Sequence[Any], types: Sequence[Any], seed: int = 0) -> list[Any]:
    """Hewitt & Liang control task: each distinct type gets one label sampled from y's
    empirical distribution (seeded); every example of that type carries it. Unchecked: see
    :func:`control_task`."""
    if len(y) != len(types):
        raise ShapeError(f"{len(y)} labels but {len(types)} types")
    gen = torch.Generator().manual_seed(seed)
    table: dict[str, Any] = {}
    for t in sorted({repr(t) for t in types}):
        table[t] = y[int(torch.randint(0, len(y), (1,), generator=gen))]
    return [table[repr(t)] for t in types]


def token_position_types(inputs: Sequence[Sequence[Any]]) -> list[tuple[Any, int]]:
    """One control-task type per example, (token, position), for every position of every input,
    in order (matching features read at each position of each input, flattened)."""
    return [(t, i) for xs in inputs for i, t in enumerate(xs)]


class DegenerateControlTask(ConfigError):
    """The control task cannot make selectivity meaningful (too few types, or labels too
    concentrated); the message says which check failed and how to get more types."""


#: Checks on a control task: at least this many distinct types ...
MIN_CONTROL_TYPES = 10
#: ... and no label on more than this share of examples (else a majority guess scores at least
#: that on the control, and selectivity is capped at 1 minus it).
MAX_CONTROL_MAJORITY = 0.9


def _majority_share(labels: Sequence[Any]) -> float:
    counts: dict[str, int] = {}
    for v in labels:
        counts[repr(v)] = counts.get(repr(v), 0) + 1
    return max(counts.values()) / len(labels)


def control_task(
    y: Sequence[Any],
    types: Sequence[Any],
    seed: int = 0,
    *,
    min_types: int = MIN_CONTROL_TYPES,
    max_majority: float = MAX_CONTROL_MAJORITY,
) -> list[Any]:
    """:func:`control_labels`, checked: raises :class:`DegenerateControlTask` unless the
    variable ``y`` takes ≥2 values, there are ≥ ``min_types`` distinct types, and the control
    labels take ≥2 values with none on more than ``max_majority`` of the examples."""
    if len(y) != len(types):
        raise ShapeError(f"{len(y)} labels but {len(types)} types")
    n_types = len({repr(t) for t in types})
    if len({repr(v) for v in y}) < 2:
        raise DegenerateControlTask(
            "the probed variable takes a single value on these inputs; "
            "there is nothing to probe (pick another variable or inputs)"
        )
    if n_types < min_types:
        raise DegenerateControlTask(
            f"the control task has {n_types} distinct types (need ≥ {min_types}): a control of "
            "so few types is often constant; use richer types, e.g. (token, position) pairs "
            "from token_position_types(inputs), or token n-grams"
        )
    ctrl = control_labels(y, types, seed)
    share = _majority_share(ctrl)
    if share > max_majority:
        raise DegenerateControlTask(
            f"control labels are {'constant' if share == 1 else 'near-constant'}: one label "
            f"covers {share:.2f} of examples (max {max_majority}) over {n_types} types, so a "
            "majority guess already scores that on the control; use more types or another seed"
        )
    return ctrl


@dataclass(frozen=True)
class ProbeResult(Result):
    """Held-out accuracy on the variable and on the control task; selectivity = difference.
    ``majority_baseline``: the share of the commonest label of y on the test part;
    ``n_control_types``: distinct types behind the control task."""

    accuracy: float
    control_accuracy: float
    selectivity: float
    majority_baseline: float
    n_train: int
    n_test: int
    n_control_types: int = 0


def _split(n: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, test) indices of a seeded shuffle; the test part has max(1, n * fraction)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, int(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def _held_out(
    X: Tensor, y: Sequence[Any], tr: list[int], te: list[int], seed: int, **probe_kw: Any
) -> float:
    pick = lambda idx: [y[i] for i in idx]  # noqa: E731
    return LinearProbe(seed=seed, **probe_kw).fit(X[tr], pick(tr)).score(X[te], pick(te))


def probe_accuracy(
    X: Tensor, y: Sequence[Any], *, test_fraction: float = 0.3, seed: int = 0, **probe_kw: Any
) -> float:
    """Held-out accuracy of a linear probe for ``y`` (the split :func:`probe_selectivity`
    uses), for when no meaningful control task exists."""
    X = _check_x(X, len(y))
    tr, te = _split(X.shape[0], test_fraction, seed)
    return _held_out(X, y, tr, te, seed, **probe_kw)


def probe_selectivity(
    X: Tensor,
    y: Sequence[Any],
    types: Sequence[Any],
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    min_types: int = MIN_CONTROL_TYPES,
    max_majority: float = MAX_CONTROL_MAJORITY,
    **probe_kw: Any,
) -> ProbeResult:
    """Fit a probe on the variable ``y`` and on the control task of ``types``; report held-out
    accuracies and selectivity. Examples are shuffled (seeded) before the split. Raises
    :class:`DegenerateControlTask` (see :func:`control_task`) rather than report selectivity
    against a control that cannot tell reading from memorising."""
    X = _check_x(X, len(y))
    ctrl = control_task(y, types, seed, min_types=min_types, max_majority=max_majority)
    tr, te = _split(X.shape[0], test_fraction, seed)
    real = _held_out(X, y, tr, te, seed, **probe_kw)
    fake = _held_out(X, ctrl, tr, te, seed, **probe_kw)
    return ProbeResult(
        real,
        fake,
        real - fake,
        _majority_share([y[i] for i in te]),
        len(tr),
        len(te),
        len({repr(t) for t in types}),
    )
