"""The registered training-data attribution methods, one function each, and their result.

Every method has the family's call shape ``fn(model, train, test, *, self_influence=False,
seed=0, batch_size=128) -> DataAttribution`` (see :func:`interplab.methods.data_attribution.
attribute_data`, which dispatches through the registry). The algorithms live in
:mod:`.scoring`, :mod:`.influence`, :mod:`.trak` and :mod:`.representer`.

A method also accepts a user's ``torch.nn.Module`` (inputs ``[n, ...]`` -> class logits
``[n, K]``) in place of a :class:`~interplab.models.classifiers.TrainedClassifier`: it is
wrapped by :func:`~interplab.models.module_classifier.from_module` (trainable parameters as one
flat vector, ``loss``, ``checkpoints``, ``weight_decay``) and evaluated in eval mode; the same
algorithms then run on it (``ekfac`` over its Linear/Conv2d layers, :mod:`.ekfac_modules`).

Settings beyond the family's (each accepted only by the methods it concerns; any other is a
ConfigError): ``damping`` (if_exact, if_cg, if_lissa, ekfac; default
:data:`~interplab.methods.data_attribution.influence.DAMPING`), ``fisher`` ("model" or
"empirical", ekfac on a module), ``proj_dim`` (trak), ``weight_decay`` (a module's L2
coefficient in training: it enters the curvature and the representer points; default 0).
``progress=True`` shows a tqdm bar over the batches.

Cost: gradient methods count their gradient passes (``forward`` = ``backward`` = batches of
per-example gradients, the test batch included, times the checkpoints used); the Hessian
products of a preconditioner are not counted. Forward-only methods count forward passes;
``random`` and ``nn_input`` never run the model (cost 0, cost unit "none").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.data_attribution.ekfac_modules import module_ekfac_preconditioner
from interplab.methods.data_attribution.gradients import (
    loss_grad_batches,
    measurement_grad_batches,
    progress_bar,
)
from interplab.methods.data_attribution.influence import (
    DAMPING,
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
from interplab.models.module_classifier import (
    ModuleSpec,
    eager_module,
    evaluating,
    from_module,
)

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


def _pair(name: str, data) -> tuple[Tensor, Tensor]:
    if (
        not isinstance(data, (tuple, list))
        or len(data) != 2
        or not all(isinstance(t, Tensor) for t in data)
    ):
        raise ConfigError(f"{name} must be a pair of tensors (inputs, labels)")
    return data[0], data[1]


def check_data(model: TrainedClassifier, train: Data, test: Data, batch_size: int) -> None:
    problems = []
    spec = model.spec
    shape = spec.input_shape if isinstance(spec, ModuleSpec) else (spec.n_in,)
    for name, data in (("train", train), ("test", test)):
        x, y = _pair(name, data)
        if tuple(x.shape[1:]) != tuple(shape) or x.ndim != len(shape) + 1:
            dims = ", ".join(str(d) for d in shape)
            problems.append(f"{name} inputs must be [n, {dims}], got {tuple(x.shape)}")
        elif y.shape != (x.shape[0],):
            problems.append(f"{name} labels must be [{x.shape[0]}], got {tuple(y.shape)}")
        elif y.is_floating_point() and bool((y != y.round()).any()):
            problems.append(f"{name} labels must be class indices (integers)")
        elif len(y) and (int(y.min()) < 0 or int(y.max()) >= spec.n_classes):
            problems.append(f"{name} labels must lie in 0..{spec.n_classes - 1}")
    if len(train[0]) == 0:
        problems.append("the training set is empty")
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
    progress: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    on_module: bool = False  # the model is a user's torch module (ModuleSpec)

    @property
    def rows(self) -> int | None:
        """Chunk of the training set for curvature products (None: all at once, the organisms)."""
        return self.batch_size if self.on_module else None

    @property
    def damping(self) -> float:
        d = self.options.get("damping", DAMPING)
        if not isinstance(d, (int, float)) or not d >= 0:
            raise ConfigError(f"damping must be a number ≥ 0, got {d!r}")
        return float(d)


#: the settings each method accepts beyond the family's (see the module docstring)
OPTIONS: dict[str, tuple[str, ...]] = {
    "if_exact": ("damping",),
    "if_cg": ("damping",),
    "if_lissa": ("damping",),
    "ekfac": ("damping", "fisher"),
    "trak": ("proj_dim",),
}
MODULE_OPTIONS = ("weight_decay",)


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
        model: TrainedClassifier | torch.nn.Module,
        train: Data,
        test: Data,
        *,
        self_influence: bool = False,
        seed: int = 0,
        batch_size: int = 128,
        loss: Callable[[Tensor, Tensor], Tensor] | None = None,
        checkpoints: list[dict[str, Tensor]] | None = None,
        progress: bool = False,
        **options: Any,
    ) -> DataAttribution:
        module = isinstance(model, torch.nn.Module)
        allowed = OPTIONS.get(name, ()) + (MODULE_OPTIONS if module else ())
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(
                f"data_attribution/{name} takes no setting {', '.join(unknown)} "
                f"(its settings: {', '.join(allowed) or 'none beyond the family'})"
            )
        if not module and (loss is not None or checkpoints is not None):
            raise ConfigError(
                "loss and checkpoints apply to a torch module; a TrainedClassifier brings its own"
            )
        if module:
            assert isinstance(model, torch.nn.Module)
            # a TorchScript module: rebuilt as an eager one, or refused
            model = eager_module(model, _pair("train", train)[0])
            with evaluating(model):
                trained = from_module(
                    model,
                    _pair("train", train)[0],
                    loss=loss,
                    checkpoints=checkpoints,
                    weight_decay=options.pop("weight_decay", 0.0),
                )
                return _run(
                    trained, train, test, self_influence, seed, batch_size, progress, options
                )
        if not isinstance(model, TrainedClassifier):
            raise ConfigError(
                "model must be a TrainedClassifier or a torch.nn.Module (inputs -> logits [n, K]), "
                f"got {type(model).__name__}"
            )
        return _run(model, train, test, self_influence, seed, batch_size, progress, options)

    def _run(
        model: TrainedClassifier,
        train: Data,
        test: Data,
        self_influence: bool,
        seed: int,
        batch_size: int,
        progress: bool,
        options: dict[str, Any],
    ) -> DataAttribution:
        check_data(model, train, test, batch_size)
        dtype = model.theta.dtype
        on_module = isinstance(model.spec, ModuleSpec)

        def cast(x: Tensor) -> Tensor:  # a module's integer inputs (token ids) stay integers
            return x if on_module and not x.is_floating_point() else x.to(dtype)

        train = (cast(train[0]), train[1].long())
        test = (cast(test[0]), test[1].long())
        start = time.perf_counter()
        settings = Settings(
            self_influence,
            seed,
            batch_size,
            progress,
            dict(options),
            name,
            on_module=on_module,
        )
        scores, selfs, cost = compute(model, train, test, settings)
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


def _preconditioned(
    make: Callable[[TrainedClassifier, Data, Settings], Precondition],
) -> Compute:
    """Scores ``-g_t^T P g_i`` for the preconditioner ``P = make(model, train, settings)``
    (documented by ``make``'s docstring)."""

    def compute(model: TrainedClassifier, train: Data, test: Data, s: Settings):
        scores, selfs = preconditioned_scores(
            model.spec,
            model.theta,
            train,
            test,
            make(model, train, s),
            self_influence=s.self_influence,
            batch_size=s.batch_size,
            progress=s.progress,
            desc=s.name,
        )
        return scores, selfs, _grad_passes(train, s.batch_size)

    compute.__doc__ = make.__doc__
    return compute


def _no_preconditioner(model: TrainedClassifier, train: Data, s: Settings) -> Precondition:
    """Gradient inner product at the final weights (no preconditioner)."""
    return identity


def _exact_hessian(model: TrainedClassifier, train: Data, s: Settings) -> Precondition:
    """Influence functions with the exact (damped) Hessian."""
    return exact_preconditioner(model.spec, model.theta, *train, s.damping, s.rows)


def _cg(model: TrainedClassifier, train: Data, s: Settings) -> Precondition:
    """Influence functions, inverse-Hessian products by conjugate gradients."""
    return cg_preconditioner(model.spec, model.theta, train[0], s.damping, y=train[1], rows=s.rows)


def _lissa(model: TrainedClassifier, train: Data, s: Settings) -> Precondition:
    """Influence functions, inverse-Hessian products by LiSSA."""
    return lissa_preconditioner(
        model.spec, model.theta, train[0], s.damping, y=train[1], rows=s.rows
    )


def _ekfac(model: TrainedClassifier, train: Data, s: Settings) -> Precondition:
    """Influence functions with an EK-FAC Hessian approximation."""
    if isinstance(model.spec, ModuleSpec):
        return module_ekfac_preconditioner(
            model.spec,
            model.theta,
            *train,
            damping=s.damping,
            batch_size=s.batch_size,
            fisher=s.options.get("fisher", "model"),
            seed=s.seed,
            progress=s.progress,
        )
    if "fisher" in s.options:
        raise ConfigError("fisher applies to a torch module's EK-FAC")
    return ekfac_preconditioner(model.spec, model.theta, train[0], s.damping)


def _grad_cos(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Gradient cosine at the final weights (self-influence undefined: a self-cosine is 1)."""
    gt = measurement_grad_batches(model.spec, model.theta, *test, s.batch_size)
    gt = gt / gt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = torch.empty(len(gt), len(train[0]), dtype=gt.dtype)
    bar = progress_bar(-(-len(train[0]) // s.batch_size), s.name, s.progress)
    for rows, g in loss_grad_batches(model.spec, model.theta, *train, s.batch_size):
        out[:, rows] = -gt @ (g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
        bar.update(1)
    bar.close()
    return out, None, _grad_passes(train, s.batch_size)


def _tracin(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """TracIn: gradient inner products summed over the training checkpoints."""
    scores, selfs = tracin_scores(
        model,
        train,
        test,
        self_influence=s.self_influence,
        batch_size=s.batch_size,
        progress=s.progress,
    )
    return scores, selfs, _grad_passes(train, s.batch_size, len(model.checkpoints))


def _trak(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """TRAK: random-projection kernel regression over the checkpoints."""
    extra = {"proj_dim": s.options["proj_dim"]} if "proj_dim" in s.options else {}
    scores, selfs = trak_kernel(
        model,
        train,
        test,
        seed=s.seed,
        self_influence=s.self_influence,
        batch_size=s.batch_size,
        progress=s.progress,
        **extra,
    )
    n, b = len(model.checkpoints), s.batch_size
    passes = n * (math.ceil(len(train[0]) / b) + math.ceil(len(test[0]) / b))
    return scores, selfs, Cost(forward=passes + n, backward=passes)


def _representer(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Representer points of the last layer (closed form from the logits and features)."""
    if model.spec.weight_decay <= 0:
        raise ConfigError(
            "representer points need the weight decay the model was trained with (> 0); "
            "give weight_decay=..."
        )
    scores, selfs = representer_scores(model, train, test, self_influence=s.self_influence)
    return scores, selfs, Cost(forward=4)


def _random(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Seeded Gaussian scores (the control)."""
    scores, selfs = random_scores(len(test[0]), len(train[0]), s.seed, s.self_influence)
    return scores, selfs, Cost()


def _nn_input(model: TrainedClassifier, train: Data, test: Data, s: Settings):
    """Signed cosine similarity of the raw inputs (same label +, other label -)."""
    (xr, yr), (xt, yt) = train, test
    rr, rt = xr.flatten(1).double(), xt.flatten(1).double()  # (a module's inputs may be ids)
    scores, selfs = nearest_neighbour(rr, yr, rt, yt, s.self_influence)
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
