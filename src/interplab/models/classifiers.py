"""Small classifiers cheap enough to retrain hundreds of times: data-attribution organisms.

A :class:`ClassifierSpec` names a logistic regression (``kind="logreg"``) or a one-hidden-layer
tanh MLP (``kind="mlp"``); :func:`train_classifier` trains it full batch, in float64, on one
thread, from a seeded initialisation, so the same data always gives the same weights (the
retraining ground truth depends on it: a difference between two retrained models must come from
their data, not from the run).

    logreg   L-BFGS (strong Wolfe line search) from zero weights: the objective is strictly
             convex, so the result is its unique minimum, reached to ~1e-10 gradient norm
    mlp      full-batch Adam for ``steps`` steps from a seeded initialisation

The objective is ``mean cross-entropy + weight_decay / 2 * ||theta||^2``. Parameters live in one
flat vector ``theta``: layer by layer, each an ``[out, in + 1]`` block (weight columns, then the
bias), row-major, so a layer's gradient is the outer product of its output gradient and its
input with a 1 appended (the layout Kronecker-factored methods rely on).
:class:`TrainedClassifier` keeps ``checkpoints`` along training (TracIn, TRAK use them).

A spec that is not a :class:`ClassifierSpec` (a
:class:`~interplab.models.transformer_classifier.TransformerClassifierSpec`) brings its own
``logits(theta, x)``, ``features(theta, x)`` and ``init_theta()``; :func:`logits`,
:func:`init_theta`, :meth:`TrainedClassifier.features` and :func:`train_classifier` (Adam) defer to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TypeAlias

import torch

from interplab.errors import ConfigError

if TYPE_CHECKING:
    from interplab.models.transformer_classifier import TransformerClassifierSpec

Tensor = torch.Tensor
KINDS = ("logreg", "mlp")
DTYPE = torch.float64


@dataclass(frozen=True)
class ClassifierSpec:
    """A classifier and how it is trained (every field enters the organism's fingerprint)."""

    kind: str = "logreg"
    n_in: int = 64
    n_classes: int = 10
    n_hidden: int = 32  # mlp only
    weight_decay: float = 1e-2
    steps: int = 100  # L-BFGS iterations (logreg) / Adam steps (mlp)
    lr: float = 1.0  # L-BFGS step size (logreg) / Adam learning rate (mlp)
    n_checkpoints: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"classifier kind must be one of {KINDS}, got {self.kind!r}")
        if min(self.n_in, self.n_classes, self.n_hidden, self.steps, self.n_checkpoints) < 1:
            raise ConfigError(f"classifier sizes, steps and checkpoints must be ≥ 1: {self}")

    @property
    def layers(self) -> tuple[tuple[int, int], ...]:
        """(out, in) of each linear layer."""
        if self.kind == "logreg":
            return ((self.n_classes, self.n_in),)
        return ((self.n_hidden, self.n_in), (self.n_classes, self.n_hidden))

    @property
    def n_params(self) -> int:
        return sum(o * (i + 1) for o, i in self.layers)

    def to_json(self) -> dict:
        return asdict(self)


def unflatten(spec: ClassifierSpec, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(weight [out, in], bias [out]) per layer, as views of ``theta``."""
    out, start = [], 0
    for o, i in spec.layers:
        block = theta[start : start + o * (i + 1)].view(o, i + 1)
        out.append((block[:, :i], block[:, i]))
        start += o * (i + 1)
    return out


def forward_layers(
    spec: ClassifierSpec, theta: Tensor, x: Tensor
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Logits [n, classes], each layer's input [n, in] and its output (pre-activation) [n, out]."""
    inputs, outputs, h = [], [], x
    layers = unflatten(spec, theta)
    for k, (w, b) in enumerate(layers):
        inputs.append(h)
        z = h @ w.T + b
        outputs.append(z)
        h = torch.tanh(z) if k < len(layers) - 1 else z
    return h, inputs, outputs


#: what :func:`train_classifier` trains: a :class:`ClassifierSpec` or a spec with its own network
AnySpec: TypeAlias = "ClassifierSpec | TransformerClassifierSpec"


def logits(spec: AnySpec, theta: Tensor, x: Tensor) -> Tensor:
    if not isinstance(spec, ClassifierSpec):  # a spec with its own network (module docstring)
        return spec.logits(theta, x)
    return forward_layers(spec, theta, x)[0]


def objective(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy plus the weight decay: what training minimises."""
    ce = torch.nn.functional.cross_entropy(logits(spec, theta, x), y)
    return ce + 0.5 * spec.weight_decay * theta.pow(2).sum()


def margin(logit_rows: Tensor, labels: Tensor) -> Tensor:
    """The measured output: the label's logit minus the log-sum-exp of the others [n]
    (log p / (1 - p) of the label; TRAK's model output function)."""
    own = logit_rows.gather(-1, labels[:, None])[:, 0]
    others = logit_rows.scatter(-1, labels[:, None], float("-inf"))
    return own - torch.logsumexp(others, -1)


def init_theta(spec: AnySpec) -> Tensor:
    if not isinstance(spec, ClassifierSpec):
        return spec.init_theta()
    if spec.kind == "logreg":
        return torch.zeros(spec.n_params, dtype=DTYPE)
    gen = torch.Generator().manual_seed(spec.seed)
    parts = []
    for o, i in spec.layers:
        w = torch.randn(o, i, generator=gen, dtype=DTYPE) / i**0.5
        parts.append(torch.cat([w, torch.zeros(o, 1, dtype=DTYPE)], 1).flatten())
    return torch.cat(parts)


@dataclass(frozen=True)
class TrainedClassifier:
    """Trained weights, with ``checkpoints`` (flat parameter vectors, the last one ``theta``) and
    the step size in force at each (``checkpoint_lr``, TracIn's weights)."""

    spec: AnySpec
    theta: Tensor
    checkpoints: tuple[Tensor, ...]
    checkpoint_lr: tuple[float, ...]

    def logits(self, x: Tensor, theta: Tensor | None = None) -> Tensor:
        return logits(self.spec, self.theta if theta is None else theta, x)

    def features(self, x: Tensor, theta: Tensor | None = None) -> Tensor:
        """The input of the last layer [n, d] (the input itself for logistic regression)."""
        if not isinstance(self.spec, ClassifierSpec):
            return self.spec.features(self.theta if theta is None else theta, x)
        return forward_layers(self.spec, self.theta if theta is None else theta, x)[1][-1]


def _checkpoint_steps(spec: AnySpec) -> list[int]:
    return sorted(
        {
            max(1, round(spec.steps * (k + 1) / spec.n_checkpoints))
            for k in range(spec.n_checkpoints)
        }
    )


def train_classifier(spec: AnySpec, x: Tensor, y: Tensor) -> TrainedClassifier:
    """Train ``spec`` on (x [n, n_in], y [n]) deterministically (see the module docstring)."""
    if x.ndim != 2 or x.shape[1] != spec.n_in or y.shape != (x.shape[0],):
        raise ConfigError(
            f"training data must be x [n, {spec.n_in}] and y [n]; got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[0] == 0:
        raise ConfigError("cannot train on an empty training set")
    x, y = x.to(DTYPE), y.long()
    theta = init_theta(spec).requires_grad_(True)
    marks = _checkpoint_steps(spec)
    ckpts: list[Tensor] = []
    if spec.kind == "logreg":  # L-BFGS keeps its history across the staged calls
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [theta],
            lr=spec.lr,
            max_iter=1,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
        )
    else:
        opt = torch.optim.Adam([theta], lr=spec.lr)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = objective(spec, theta, x, y)
        loss.backward()
        return loss

    done = 0
    for mark in marks:
        if spec.kind == "logreg":
            opt.param_groups[0].update(max_iter=mark - done, max_eval=(mark - done) * 5 // 4)
            # torch types a closure as returning float; its optimizers take the loss tensor
            opt.step(closure)  # type: ignore[arg-type]
        else:
            for _ in range(mark - done):
                opt.step(closure)  # type: ignore[arg-type]
        done = mark
        ckpts.append(theta.detach().clone())
    return TrainedClassifier(spec, ckpts[-1], tuple(ckpts), tuple(float(spec.lr) for _ in ckpts))
