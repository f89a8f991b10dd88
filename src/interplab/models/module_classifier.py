"""Any ``torch.nn.Module`` classifier as a flat-parameter model: what training-data attribution
needs from a network interplab never trained.

:class:`ModuleSpec` stands beside :class:`~interplab.models.classifiers.ClassifierSpec` and
:class:`~interplab.models.transformer_classifier.TransformerClassifierSpec`: it brings its own
``logits(theta, x)`` and ``features(theta, x)``, so every method written against a flat
parameter vector (per-example gradients by ``vmap``, Hessian- and Gauss-Newton-vector products)
runs on it unchanged.

    theta      the module's *trainable* parameters (``requires_grad``), in ``named_parameters``
               order, each flattened row-major (a Linear layer: its weight ``[out, in]``, then its
               bias ``[out]``). Frozen parameters and buffers stay the module's own constants.
    logits     ``torch.func.functional_call(module, views of theta, (x,))``: the module must map
               inputs ``[n, *input_shape]`` to class logits ``[n, K]`` (K ≥ 2), and is evaluated
               in eval mode (dropout off, batch norm on its running statistics;
               :func:`evaluating`), each example independently of the others
    loss       None: cross-entropy; or a callable ``(logits [n, K], labels [n]) -> [n]``, the
               per-example training loss (its mean, plus ``weight_decay / 2 * |theta|^2``, is
               the objective whose curvature influence functions invert)
    checkpoints  state dicts along training, converted to flat vectors (TracIn, TRAK); default
               the final weights only

A TorchScript module (a ``torch.jit.save`` file) cannot be evaluated by ``torch.func`` at other
parameters; :func:`eager_module` rebuilds one that is a (nested) Sequential of stock
``torch.nn`` layers as an eager copy (checked to give the same outputs) and refuses any other.

:func:`from_module` checks the module on two training inputs and returns a
:class:`~interplab.models.classifiers.TrainedClassifier` whose ``spec`` is the
:class:`ModuleSpec`. The spec cannot train (``init_theta`` refuses): the user's model is
attributed as it is; retraining is the user's own code.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.models.classifiers import TrainedClassifier

Tensor = torch.Tensor
Loss = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class ModuleSpec:
    """A user's module as a flat-parameter classifier (see the module docstring)."""

    module: torch.nn.Module
    names: tuple[str, ...]  # the trainable parameters, in named_parameters order
    shapes: tuple[tuple[int, ...], ...]
    input_shape: tuple[int, ...]
    n_classes: int
    weight_decay: float = 0.0
    loss: Loss | None = field(default=None, repr=False)
    kind: str = "module"

    @property
    def n_in(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def offsets(self) -> dict[str, int]:
        """Where each trainable parameter starts in ``theta``."""
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            out[name] = start
            start += math.prod(shape)
        return out

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Views of ``theta`` shaped as the module's trainable parameters."""
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            n = math.prod(shape)
            out[name] = theta[start : start + n].view(shape)
            start += n
        return out

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        return torch.func.functional_call(self.module, self.unflatten(theta), (x,))

    def features(self, theta: Tensor, x: Tensor) -> Tensor:
        """The input of the final ``nn.Linear`` whose output is the logits [n, d] (representer
        points and the representation baseline need it); ConfigError when the logits do not
        come straight out of a Linear layer."""
        seen: list[tuple[Tensor, Tensor]] = []

        def hook(_m, args, out):
            seen.append((args[0], out))

        handles = [
            m.register_forward_hook(hook)
            for m in self.module.modules()
            if isinstance(m, torch.nn.Linear)
        ]
        try:
            z = self.logits(theta, x)
        finally:
            for h in handles:
                h.remove()
        for inp, out in reversed(seen):
            if out is z:
                return inp.reshape(len(x), -1)
        raise ConfigError(
            "this method needs the logits to be the output of a final nn.Linear layer "
            f"(its input is the representation); {type(self.module).__name__}'s are not"
        )

    def init_theta(self) -> Tensor:
        raise ConfigError(
            "a module brought by the user is attributed as trained; interplab does not retrain it"
        )

    def per_example_loss(self, z: Tensor, y: Tensor) -> Tensor:
        """The training loss of each example [n] (cross-entropy unless ``loss`` was given)."""
        if self.loss is None:
            return torch.nn.functional.cross_entropy(z, y, reduction="none")
        return self.loss(z, y)


_NOT_ARGS = {"self", "device", "dtype", "bias", "args", "kwargs", "inplace"}


def _rebuild(m: torch.nn.Module) -> torch.nn.Module | None:
    """The eager torch.nn layer a scripted one was made from (constructor arguments read back
    from its attributes, weights copied), or None when it is not a stock torch.nn layer."""
    name = getattr(m, "original_name", "")
    cls = getattr(torch.nn, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        return None
    if cls is torch.nn.Sequential:
        children = []
        for _, c in m.named_children():
            child = _rebuild(c)
            if child is None:
                return None
            children.append(child)
        return torch.nn.Sequential(*children)
    if any(True for _ in m.named_children()):  # a container other than Sequential
        return None
    kwargs: dict = {}
    for arg, par in inspect.signature(cls.__init__).parameters.items():
        if arg in _NOT_ARGS or par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if hasattr(m, arg):
            kwargs[arg] = getattr(m, arg)
        elif par.default is par.empty:
            return None
    if "bias" in inspect.signature(cls.__init__).parameters:
        kwargs["bias"] = getattr(m, "bias", None) is not None
    params = dict(m.named_parameters())
    dtypes = {p.dtype for p in params.values()}
    try:
        eager = cls(**kwargs)
        if len(dtypes) == 1:  # before loading, so that no weight is rounded on the way
            eager = eager.to(next(iter(dtypes)))
        eager.load_state_dict(m.state_dict())
    except (TypeError, ValueError, RuntimeError):
        return None
    for n, p in eager.named_parameters():
        p.requires_grad_(params[n].requires_grad)
    return eager


def eager_module(module: torch.nn.Module, x: Tensor) -> torch.nn.Module:
    """``module`` itself, or, for a TorchScript module (which torch.func cannot evaluate at
    other parameters), an eager copy rebuilt from stock torch.nn layers (nested Sequentials of
    Linear, Conv2d, activations, norms, ...), checked to give the same outputs on ``probe``.
    ConfigError when it cannot be rebuilt (a scripted module with its own forward)."""
    if not isinstance(module, torch.jit.ScriptModule):
        return module
    eager = _rebuild(module)
    if eager is not None:
        eager.train(module.training)
        dtypes = {p.dtype for p in module.parameters()}
        probe = x[:2]
        if probe.is_floating_point() and len(dtypes) == 1:
            probe = probe.to(next(iter(dtypes)))
        try:
            with torch.no_grad(), evaluating(module), evaluating(eager):
                a, b = module(probe), eager(probe)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeError(
                f"the module fails on inputs of shape {tuple(probe.shape)}: {first}"
            ) from None
        if isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape:
            if torch.allclose(a, b, rtol=1e-5, atol=1e-6):
                return eager
    raise ConfigError(
        f"the TorchScript module {getattr(module, 'original_name', '')} cannot be attributed: "
        "torch.func cannot evaluate a scripted forward at other parameters, and it is not a "
        "Sequential of stock torch.nn layers that could be rebuilt; give the eager nn.Module"
    )


@contextlib.contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``module`` (and every submodule) in eval mode, restoring each one's mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.train(mode)


def _flat(module_name: str, params: Mapping[str, Tensor], spec: ModuleSpec, dtype) -> Tensor:
    parts = []
    for name, shape in zip(spec.names, spec.shapes):
        if name not in params:
            raise ConfigError(f"{module_name} has no entry {name!r} (a trainable parameter)")
        p = params[name]
        if tuple(p.shape) != shape:
            raise ShapeError(
                f"{module_name}[{name!r}] has shape {tuple(p.shape)}; the module's is {shape}"
            )
        parts.append(p.detach().to(dtype).reshape(-1))
    return torch.cat(parts)


def from_module(
    module: torch.nn.Module,
    x: Tensor,
    *,
    loss: Loss | None = None,
    checkpoints: Sequence[Mapping[str, Tensor]] | None = None,
    weight_decay: float = 0.0,
) -> TrainedClassifier:
    """``module`` as a :class:`TrainedClassifier` (spec :class:`ModuleSpec`), checked on the
    first two rows of ``x`` (the training inputs). Call it, and use the result, inside
    :func:`evaluating`."""
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(x, Tensor) or x.ndim < 2 or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"training inputs must be a tensor [n, ...] with n ≥ 1, got {shape}")
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters to attribute to")
    dtypes = {p.dtype for _, p in named}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        raise ConfigError(
            f"the trainable parameters must share one floating dtype, got {sorted(map(str, dtypes))}"
        )
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ConfigError(f"weight_decay must be a finite number ≥ 0, got {weight_decay}")
    dtype = named[0][1].dtype
    probe = x[:2].to(dtype) if x.is_floating_point() else x[:2]  # token ids stay integers
    try:
        with torch.no_grad():
            z = module(probe)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShapeError(
            f"{type(module).__name__} fails on inputs of shape {tuple(probe.shape)}: {first}"
        ) from None
    if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[0] != len(probe) or z.shape[1] < 2:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ShapeError(
            f"the module must map inputs [n, ...] to class logits [n, K] with K ≥ 2; on "
            f"{len(probe)} inputs it returned {got}"
        )
    spec = ModuleSpec(
        module=module,
        names=tuple(n for n, _ in named),
        shapes=tuple(tuple(p.shape) for _, p in named),
        input_shape=tuple(x.shape[1:]),
        n_classes=int(z.shape[1]),
        weight_decay=float(weight_decay),
        loss=loss,
    )
    if loss is not None:
        if not callable(loss):
            raise ConfigError(f"loss must be None or a callable (logits, y) -> [n], got {loss!r}")
        labels = z.detach().argmax(-1)
        try:
            value = loss(z.detach(), labels)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ConfigError(f"the loss fails on logits [2, K] and labels [2]: {exc}") from None
        if not isinstance(value, Tensor) or tuple(value.shape) != (len(probe),):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ShapeError(
                f"the loss must return one value per example ([{len(probe)}]), got {got}; "
                "use reduction='none'"
            )
    theta = torch.cat([p.detach().reshape(-1) for _, p in named])
    ckpts: tuple[Tensor, ...] = (theta,)
    if checkpoints is not None:
        if isinstance(checkpoints, Mapping) or len(checkpoints) == 0:
            raise ConfigError("checkpoints must be a non-empty list of state dicts")
        ckpts = tuple(_flat(f"checkpoint {k}", sd, spec, dtype) for k, sd in enumerate(checkpoints))
    # ModuleSpec offers the interface every non-ClassifierSpec path uses (logits, features,
    # init_theta, weight_decay, n_in, n_classes); AnySpec does not name it (models/classifiers.py)
    return TrainedClassifier(spec, theta, ckpts, tuple(1.0 for _ in ckpts))  # type: ignore[arg-type]
