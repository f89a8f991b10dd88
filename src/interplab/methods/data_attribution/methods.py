"""The registered training-data attribution methods, one function each, and their result.

Every method has the family's call shape ``fn(model, train, test, *, self_influence=False,
seed=0, batch_size=128) -> DataAttribution`` (see :func:`interplab.methods.data_attribution.
attribute_data`, which dispatches through the registry). The algorithms live in
:mod:`.scoring`, :mod:`.influence`, :mod:`.trak` and :mod:`.representer`.

Cost: gradient methods count their gradient passes (``forward`` = ``backward`` = batches of
per-example gradients, the test batch included, times the checkpoints used); the Hessian
products of a preconditioner are not counted. Forward-only methods count forward passes;
``random`` and ``nn_input`` never run the model (cost 0, cost unit "none").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.data_attribution.gradients import loss_grad_batches, measurement_grads
from interplab.methods.data_attribution.influence import (
    cg_preconditioner,
    ekfac_preconditioner,
    exact_preconditioner,
    lissa_preconditioner,
)
from interplab.methods.data_attribution.representer import (
    nearest_neighbour,
    random_scores,
    representation,
)
from interplab.methods.data_attribution.representer import representer as representer_scores
from interplab.methods.data_attribution.scoring import identity, preconditioned_scores
from interplab.methods.data_attribution.trak import tracin as tracin_scores
from interplab.methods.data_attribution.trak import trak as trak_kernel
from interplab.methods.registry import register
from interplab.models.classifiers import TrainedClassifier

Tensor = torch.Tensor
Data = tuple[Tensor, Tensor]
METRIC = "lds"


@dataclass(frozen=True)
class DataAttribution(Result):
    """``scores[t, i]``: effect of training example i on test point t's label margin.
    ``self_influence[i]`` (or None when not asked for, or undefined for the method)."""

    method: str
    scores: Tensor
    self_influence: Tensor | None

    def top(self, test_index: int, k: int = 10) -> list[tuple[int, float]]:
        """The k training examples with the largest scores for one test point: (index, score)."""
        if not 0 <= test_index < self.scores.shape[0]:
            raise ConfigError(
                f"test index {test_index} is out of range: there are "
                f"{self.scores.shape[0]} test points (0..{self.scores.shape[0] - 1})"
            )
        vals, idx = self.scores[test_index].topk(min(k, self.scores.shape[1]))
        return [(int(i), float(v)) for i, v in zip(idx, vals)]


def check_data(model: TrainedClassifier, train: Data, test: Data, batch_size: int) -> None:
    problems = []
    for name, (x, y) in (("train", train), ("test", test)):
        if x.ndim != 2 or x.shape[1] != model.spec.n_in:
            problems.append(f"{name} inputs must be [n, {model.spec.n_in}], got {tuple(x.shape)}")
        elif y.shape != (x.shape[0],):
            problems.append(f"{name} labels must be [{x.shape[0]}], got {tuple(y.shape)}")
        elif len(y) and (int(y.min()) < 0 or int(y.max()) >= model.spec.n_classes):
            problems.append(f"{name} labels must lie in 0..{model.spec.n_classes - 1}")
    if batch_size < 1:
        problems.append(f"batch_size must be ≥ 1, got {batch_size}")
    if problems:
        raise ConfigError("; ".join(problems))


Compute = Callable[[TrainedClassifier, Data, Data], tuple[Tensor, Tensor | None, Cost]]


def _run(
    method: str,
    model: TrainedClassifier,
    train: Data,
    test: Data,
    batch_size: int,
    compute: Compute,
) -> DataAttribution:
    """Check and cast the data, time ``compute`` and wrap what it returns."""
    check_data(model, train, test, batch_size)
    dtype = model.theta.dtype
    train = (train[0].to(dtype), train[1].long())
    test = (test[0].to(dtype), test[1].long())
    start = time.perf_counter()
    scores, selfs, cost = compute(model, train, test)
    return DataAttribution(
        method=method,
        scores=scores.detach(),
        self_influence=None if selfs is None else selfs.detach(),
        cost=cost,
        seconds=time.perf_counter() - start,
    )


_GRADIENT = dict(kind="method", cost_unit="passes", metric=METRIC, needs_gradients=True)


def _grad_passes(train: Data, batch_size: int, checkpoints: int = 1) -> Cost:
    n = checkpoints * (1 + math.ceil(len(train[0]) / batch_size))
    return Cost(forward=n, backward=n)


def _preconditioned(method: str, doc: str, make: Callable[[TrainedClassifier, Data], Callable]):
    """A method that scores with ``-g_t^T P g_i`` for the preconditioner ``make`` builds."""

    def fn(
        model: TrainedClassifier,
        train: Data,
        test: Data,
        *,
        self_influence: bool = False,
        seed: int = 0,
        batch_size: int = 128,
    ) -> DataAttribution:
        def compute(model, train, test):
            scores, selfs = preconditioned_scores(
                model.spec,
                model.theta,
                train,
                test,
                make(model, train),
                self_influence=self_influence,
                batch_size=batch_size,
            )
            return scores, selfs, _grad_passes(train, batch_size)

        return _run(method, model, train, test, batch_size, compute)

    fn.__name__ = fn.__qualname__ = method
    fn.__doc__ = doc
    return register("data_attribution", method, **_GRADIENT)(fn)


grad_dot = _preconditioned(
    "grad_dot",
    "Gradient inner product at the final weights (no preconditioner).",
    lambda m, tr: identity,
)
if_exact = _preconditioned(
    "if_exact",
    "Influence functions with the exact (damped) Hessian.",
    lambda m, tr: exact_preconditioner(m.spec, m.theta, *tr),
)
if_cg = _preconditioned(
    "if_cg",
    "Influence functions, inverse-Hessian products by conjugate gradients.",
    lambda m, tr: cg_preconditioner(m.spec, m.theta, tr[0]),
)
if_lissa = _preconditioned(
    "if_lissa",
    "Influence functions, inverse-Hessian products by LiSSA.",
    lambda m, tr: lissa_preconditioner(m.spec, m.theta, tr[0]),
)
ekfac = _preconditioned(
    "ekfac",
    "Influence functions with an EK-FAC Hessian approximation.",
    lambda m, tr: ekfac_preconditioner(m.spec, m.theta, tr[0]),
)


@register("data_attribution", "grad_cos", **_GRADIENT)
def grad_cos(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Gradient cosine at the final weights (self-influence undefined: a self-cosine is 1)."""

    def compute(model, train, test):
        gt = measurement_grads(model.spec, model.theta, *test)
        gt = gt / gt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        out = torch.empty(len(gt), len(train[0]), dtype=gt.dtype)
        for rows, g in loss_grad_batches(model.spec, model.theta, *train, batch_size):
            out[:, rows] = -gt @ (g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
        return out, None, _grad_passes(train, batch_size)

    return _run("grad_cos", model, train, test, batch_size, compute)


@register("data_attribution", "tracin", **_GRADIENT)
def tracin(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """TracIn: gradient inner products summed over the training checkpoints."""

    def compute(model, train, test):
        s, si = tracin_scores(
            model, train, test, self_influence=self_influence, batch_size=batch_size
        )
        return s, si, _grad_passes(train, batch_size, len(model.checkpoints))

    return _run("tracin", model, train, test, batch_size, compute)


@register("data_attribution", "trak", **_GRADIENT)
def trak_scores(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """TRAK: random-projection kernel regression over the checkpoints."""

    def compute(model, train, test):
        s, si = trak_kernel(
            model, train, test, seed=seed, self_influence=self_influence, batch_size=batch_size
        )
        n = len(model.checkpoints)
        passes = n * (math.ceil(len(train[0]) / batch_size) + math.ceil(len(test[0]) / batch_size))
        return s, si, Cost(forward=passes + n, backward=passes)

    return _run("trak", model, train, test, batch_size, compute)


@register("data_attribution", "representer", kind="method", cost_unit="passes", metric=METRIC)
def representer_points(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Representer points of the last layer (closed form from the logits and features)."""

    def compute(model, train, test):
        s, si = representer_scores(model, train, test, self_influence=self_influence)
        return s, si, Cost(forward=4)

    return _run("representer", model, train, test, batch_size, compute)


@register("data_attribution", "random", kind="baseline", cost_unit="none", metric=METRIC)
def random_attribution(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Seeded Gaussian scores (the control)."""

    def compute(model, train, test):
        s, si = random_scores(len(test[0]), len(train[0]), seed, self_influence)
        return s, si, Cost()

    return _run("random", model, train, test, batch_size, compute)


@register("data_attribution", "nn_input", kind="baseline", cost_unit="none", metric=METRIC)
def nn_input(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Signed cosine similarity of the raw inputs (same label +, other label -)."""

    def compute(model, train, test):
        s, si = nearest_neighbour(*train, *test, self_influence)
        return s, si, Cost()

    return _run("nn_input", model, train, test, batch_size, compute)


@register(
    "data_attribution", "nn_representation", kind="baseline", cost_unit="passes", metric=METRIC
)
def nn_representation(
    model: TrainedClassifier,
    train: Data,
    test: Data,
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Signed cosine similarity of the model's last hidden representation."""

    def compute(model, train, test):
        (xr, yr), (xt, yt) = train, test
        s, si = nearest_neighbour(
            representation(model, xr),
            yr,
            representation(model, xt),
            yt,
            self_influence,
        )
        return s, si, Cost(forward=2)

    return _run("nn_representation", model, train, test, batch_size, compute)
