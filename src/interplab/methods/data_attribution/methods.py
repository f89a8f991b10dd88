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
from interplab.methods.data_attribution.scoring import (
    Precondition,
    identity,
    preconditioned_scores,
)
from interplab.methods.data_attribution.trak import tracin as tracin_scores
from interplab.methods.data_attribution.trak import trak as trak_kernel
from interplab.methods.registry import Kind, register
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


@dataclass(frozen=True)
class Settings:
    """The family's settings, as one method's ``compute`` receives them."""

    self_influence: bool
    seed: int
    batch_size: int


#: (model, train, test, settings) -> (scores, self-influence or None, cost)
Compute = Callable[[TrainedClassifier, Data, Data, Settings], tuple[Tensor, Tensor | None, Cost]]


def _method(
    name: str,
    compute: Compute,
    *,
    kind: Kind = "method",
    cost_unit: str = "passes",
    needs_gradients: bool = False,
) -> Callable[..., DataAttribution]:
    """Register ``data_attribution/name``, documented by ``compute``'s docstring: the family's
    call shape around ``compute``, which gets the checked data (cast to the model's dtype) and
    returns scores, self-influence and cost; the call is timed and wrapped in a
    :class:`DataAttribution`."""

    def fn(
        model: TrainedClassifier,
        train: Data,
        test: Data,
        *,
        self_influence: bool = False,
        seed: int = 0,
        batch_size: int = 128,
    ) -> DataAttribution:
        check_data(model, train, test, batch_size)
        dtype = model.theta.dtype
        train = (train[0].to(dtype), train[1].long())
        test = (test[0].to(dtype), test[1].long())
        start = time.perf_counter()
        scores, selfs, cost = compute(
            model, train, test, Settings(self_influence, seed, batch_size)
        )
        return DataAttribution(
            method=name,
            scores=scores.detach(),
            self_influence=None if selfs is None else selfs.detach(),
            cost=cost,
            seconds=time.perf_counter() - start,
        )

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = compute.__doc__
    register(
        "data_attribution",
        name,
        kind=kind,
        cost_unit=cost_unit,
        metric=METRIC,
        needs_gradients=needs_gradients,
    )(fn)
    return fn


def _grad_passes(train: Data, batch_size: int, checkpoints: int = 1) -> Cost:
    n = checkpoints * (1 + math.ceil(len(train[0]) / batch_size))
    return Cost(forward=n, backward=n)


def _preconditioned(make: Callable[[TrainedClassifier, Data], Precondition]) -> Compute:
    """Scores ``-g_t^T P g_i`` for the preconditioner ``P = make(model, train)`` (documented
    by ``make``'s docstring)."""

    def compute(model: TrainedClassifier, train: Data, test: Data, s: Settings):
        scores, selfs = preconditioned_scores(
            model.spec,
            model.theta,
            train,
            test,
            make(model, train),
            self_influence=s.self_influence,
            batch_size=s.batch_size,
        )
        return scores, selfs, _grad_passes(train, s.batch_size)

    compute.__doc__ = make.__doc__
    return compute


def _no_preconditioner(model: TrainedClassifier, train: Data) -> Precondition:
    """Gradient inner product at the final weights (no preconditioner)."""
    return identity


def _exact_hessian(model: TrainedClassifier, train: Data) -> Precondition:
    """Influence functions with the exact (damped) Hessian."""
    return exact_preconditioner(model.spec, model.theta, *train)


def _cg(model: TrainedClassifier, train: Data) -> Precondition:
    """Influence functions, inverse-Hessian products by conjugate gradients."""
    return cg_preconditioner(model.spec, model.theta, train[0])


def _lissa(model: TrainedClassifier, train: Data) -> Precondition:
    """Influence functions, inverse-Hessian products by LiSSA."""
    return lissa_preconditioner(model.spec, model.theta, train[0])


def _ekfac(model: TrainedClassifier, train: Data) -> Precondition:
    """Influence functions with an EK-FAC Hessian approximation."""
    return ekfac_preconditioner(model.spec, model.theta, train[0])


def _grad_cos(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Gradient cosine at the final weights (self-influence undefined: a self-cosine is 1)."""
    gt = measurement_grads(model.spec, model.theta, *test)
    gt = gt / gt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = torch.empty(len(gt), len(train[0]), dtype=gt.dtype)
    for rows, g in loss_grad_batches(model.spec, model.theta, *train, s.batch_size):
        out[:, rows] = -gt @ (g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
    return out, None, _grad_passes(train, s.batch_size)


def _tracin(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """TracIn: gradient inner products summed over the training checkpoints."""
    scores, selfs = tracin_scores(
        model, train, test, self_influence=s.self_influence, batch_size=s.batch_size
    )
    return scores, selfs, _grad_passes(train, s.batch_size, len(model.checkpoints))


def _trak(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """TRAK: random-projection kernel regression over the checkpoints."""
    scores, selfs = trak_kernel(
        model, train, test, seed=s.seed, self_influence=s.self_influence, batch_size=s.batch_size
    )
    n, b = len(model.checkpoints), s.batch_size
    passes = n * (math.ceil(len(train[0]) / b) + math.ceil(len(test[0]) / b))
    return scores, selfs, Cost(forward=passes + n, backward=passes)


def _representer(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Representer points of the last layer (closed form from the logits and features)."""
    scores, selfs = representer_scores(model, train, test, self_influence=s.self_influence)
    return scores, selfs, Cost(forward=4)


def _random(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Seeded Gaussian scores (the control)."""
    scores, selfs = random_scores(len(test[0]), len(train[0]), s.seed, s.self_influence)
    return scores, selfs, Cost()


def _nn_input(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Signed cosine similarity of the raw inputs (same label +, other label -)."""
    scores, selfs = nearest_neighbour(*train, *test, s.self_influence)
    return scores, selfs, Cost()


def _nn_representation(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Signed cosine similarity of the model's last hidden representation."""
    (xr, yr), (xt, yt) = train, test
    rr, rt = representation(model, xr), representation(model, xt)
    scores, selfs = nearest_neighbour(rr, yr, rt, yt, s.self_influence)
    return scores, selfs, Cost(forward=2)


# the registered methods: name, scores, kind and cost unit
grad_dot = _method("grad_dot", _preconditioned(_no_preconditioner), needs_gradients=True)
if_exact = _method("if_exact", _preconditioned(_exact_hessian), needs_gradients=True)
if_cg = _method("if_cg", _preconditioned(_cg), needs_gradients=True)
if_lissa = _method("if_lissa", _preconditioned(_lissa), needs_gradients=True)
ekfac = _method("ekfac", _preconditioned(_ekfac), needs_gradients=True)
grad_cos = _method("grad_cos", _grad_cos, needs_gradients=True)
tracin = _method("tracin", _tracin, needs_gradients=True)
trak_scores = _method("trak", _trak, needs_gradients=True)
representer_points = _method("representer", _representer)
random_attribution = _method("random", _random, kind="baseline", cost_unit="none")
nn_input = _method("nn_input", _nn_input, kind="baseline", cost_unit="none")
nn_representation = _method("nn_representation", _nn_representation, kind="baseline")
