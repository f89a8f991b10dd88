"""Training-data attribution: which training examples made a model give this output?

One verb, :func:`attribute_data`, returns :class:`DataAttribution`: scores ``[n_test, n_train]``
(positive = the training example raises the test point's label margin, i.e. removing it would
lower it) and, on request, each training example's self-influence ``[n_train]`` (large = the
model leans on that example alone for its own label: mislabelled and memorised examples).

Methods (see each module for the algorithm):

    grad_dot, grad_cos   gradient inner product / cosine at the final weights  (scoring)
    tracin               gradient inner products summed over checkpoints        (trak)
    if_exact, if_cg, if_lissa, ekfac   influence functions                     (influence)
    trak                 random-projection TRAK over checkpoints                (trak)
    representer          representer points of the last layer                  (representer)
    random, nn_input, nn_representation   baselines                            (representer)

Every method sees only the model, the training examples and the test inputs with the labels
whose margin is attributed — never a retrained model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.errors import ConfigError, unknown_name
from interplab.methods.data_attribution import influence, representer, trak
from interplab.methods.data_attribution.scoring import identity, preconditioned_scores
from interplab.models.classifiers import TrainedClassifier

Tensor = torch.Tensor
METHODS = (
    "grad_dot",
    "grad_cos",
    "tracin",
    "if_exact",
    "if_cg",
    "if_lissa",
    "ekfac",
    "trak",
    "representer",
    "random",
    "nn_input",
    "nn_representation",
)
#: Not attribution methods: floors a method must beat.
BASELINES = ("random", "nn_input", "nn_representation")


@dataclass(frozen=True)
class DataAttribution:
    """``scores[t, i]``: effect of training example i on test point t's label margin.
    ``self_influence[i]`` (or None when not asked for, or undefined for the method)."""

    method: str
    scores: Tensor
    self_influence: Tensor | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def top(self, test_index: int, k: int = 10) -> list[tuple[int, float]]:
        """The k training examples with the largest scores for one test point: (index, score)."""
        if not 0 <= test_index < self.scores.shape[0]:
            raise ConfigError(
                f"test index {test_index} is out of range: there are "
                f"{self.scores.shape[0]} test points (0..{self.scores.shape[0] - 1})"
            )
        vals, idx = self.scores[test_index].topk(min(k, self.scores.shape[1]))
        return [(int(i), float(v)) for i, v in zip(idx, vals)]


def _check(
    model: TrainedClassifier, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]
) -> None:
    problems = []
    for name, (x, y) in (("train", train), ("test", test)):
        if x.ndim != 2 or x.shape[1] != model.spec.n_in:
            problems.append(f"{name} inputs must be [n, {model.spec.n_in}], got {tuple(x.shape)}")
        elif y.shape != (x.shape[0],):
            problems.append(f"{name} labels must be [{x.shape[0]}], got {tuple(y.shape)}")
        elif len(y) and (int(y.min()) < 0 or int(y.max()) >= model.spec.n_classes):
            problems.append(f"{name} labels must lie in 0..{model.spec.n_classes - 1}")
    if problems:
        raise ConfigError("; ".join(problems))


def attribute_data(
    method: str,
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
) -> DataAttribution:
    """Attribute each test point's label margin to the training examples ``train = (x, y)``
    (as the model was trained on them). ``test = (x, labels)``: the labels whose margin is
    attributed (usually the true labels, or the model's predictions)."""
    if method not in METHODS:
        raise unknown_name("data-attribution method", method, METHODS)
    _check(model, train, test)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
    dtype = model.theta.dtype
    train = (train[0].to(dtype), train[1].long())
    test = (test[0].to(dtype), test[1].long())
    start = time.perf_counter()
    scores, selfs = _dispatch(method, model, train, test, self_influence, seed, batch_size)
    return DataAttribution(
        method,
        scores.detach(),
        None if selfs is None else selfs.detach(),
        time.perf_counter() - start,
    )


def _dispatch(
    method: str,
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    self_influence: bool,
    seed: int,
    batch_size: int,
) -> tuple[Tensor, Tensor | None]:
    spec, theta, (xr, yr), (xt, yt) = model.spec, model.theta, train, test
    if method in ("grad_dot", "if_exact", "if_cg", "if_lissa", "ekfac"):
        pre = {
            "grad_dot": lambda: identity,
            "if_exact": lambda: influence.exact_preconditioner(spec, theta, xr, yr),
            "if_cg": lambda: influence.cg_preconditioner(spec, theta, xr),
            "if_lissa": lambda: influence.lissa_preconditioner(spec, theta, xr),
            "ekfac": lambda: influence.ekfac_preconditioner(spec, theta, xr),
        }[method]()
        return preconditioned_scores(
            spec, theta, train, test, pre, self_influence=self_influence, batch_size=batch_size
        )
    if method == "grad_cos":
        return _grad_cos(model, train, test, batch_size), None  # self-cosine is 1: undefined
    if method == "tracin":
        return trak.tracin(model, train, test, self_influence=self_influence, batch_size=batch_size)
    if method == "trak":
        return trak.trak(
            model, train, test, seed=seed, self_influence=self_influence, batch_size=batch_size
        )
    if method == "representer":
        return representer.representer(model, train, test, self_influence=self_influence)
    if method == "random":
        return representer.random_scores(len(xt), len(xr), seed, self_influence)
    if method == "nn_input":
        return representer.nearest_neighbour(xr, yr, xt, yt, self_influence)
    return representer.nearest_neighbour(
        representer.representation(model, xr),
        yr,
        representer.representation(model, xt),
        yt,
        self_influence,
    )


def _grad_cos(
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    batch_size: int,
) -> Tensor:
    from interplab.methods.data_attribution.gradients import loss_grad_batches, measurement_grads

    gt = measurement_grads(model.spec, model.theta, *test)
    gt = gt / gt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = torch.empty(len(gt), len(train[0]), dtype=gt.dtype)
    for rows, g in loss_grad_batches(model.spec, model.theta, *train, batch_size):
        out[:, rows] = -gt @ (g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
    return out


__all__ = ["BASELINES", "METHODS", "DataAttribution", "attribute_data"]
