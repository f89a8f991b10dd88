"""Gradient attacks on continuous inputs: FGSM and PGD (L∞ and L2, random restarts).

FGSM (Goodfellow et al. 2015) takes one step of size ``eps`` along the sign of the loss
gradient. PGD (Madry et al. 2018) takes ``steps`` steps of size ``alpha`` (the sign of the
gradient for L∞, the L2-normalised gradient for L2), projecting back onto the ``eps`` ball
around the clean input and onto the input's ``bounds`` after each; with ``random_start`` it
starts from a random point of the ball and ``restarts`` runs keep, per example, the first run
that succeeds. The update, start and projection follow ``torchattacks`` (PGD, PGDL2) so the two
reach the same success rate on the same model and budget (``benchmarks/attack_strength.py``).

An attack is *untargeted* (raise the loss of the true label ``y``) unless ``target`` is given
(lower the loss of ``target``). It succeeds on an example when the adversarial prediction is
not ``y`` (untargeted) or is ``target`` (targeted); ``AttackResult.success_rate`` counts only
examples the model got right to begin with.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

Tensor = torch.Tensor
NORMS = ("linf", "l2")


@dataclass(frozen=True, eq=False)
class AttackResult(Result):
    """What an attack did to a batch.

    Attributes:
        x_adv: the adversarial inputs (same shape as the clean ones).
        clean_pred, adv_pred: the model's predictions [batch] before and after.
        labels: the true labels [batch]; ``target``: the target labels or None (untargeted).
        success: [batch] bool, the attack reached its goal on that example.
        method, norm, eps: what was run; ``steps``/``restarts``: its budget.
        cost: model passes used (``cost.forward``, ``cost.backward``); ``seconds``: wall time.
    """

    x_adv: Tensor
    clean_pred: Tensor
    adv_pred: Tensor
    labels: Tensor
    target: Tensor | None
    success: Tensor
    method: str
    norm: str
    eps: float
    steps: int
    restarts: int

    @property
    def clean_correct(self) -> Tensor:
        return self.clean_pred == self.labels

    @property
    def n(self) -> int:
        """Examples the success rate is over: those the model classified correctly."""
        return int(self.clean_correct.sum())

    @property
    def n_success(self) -> int:
        return int((self.success & self.clean_correct).sum())

    @property
    def success_rate(self) -> float:
        return self.n_success / self.n if self.n else float("nan")


def model_fn(model: Any) -> Callable[[Tensor], Tensor]:
    """The function ``x -> logits`` of a HookedModel, an ``nn.Module`` or a callable."""
    forward = getattr(model, "forward", None)
    return forward if callable(forward) and not isinstance(model, torch.nn.Module) else model


def check_inputs(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    norm: str,
    bounds: tuple[float, float],
    target: Tensor | int | None,
) -> tuple[Tensor, Tensor | None]:
    """Validate a gradient attack's inputs; returns (labels, targets) as int64 tensors.

    Raises ConfigError for integer inputs (no gradient: use :func:`gcg` for token models), inputs
    outside ``bounds``, an ``eps`` outside (0, the input range], an unknown norm, a target class
    the model does not have, or a model whose output has no gradient w.r.t. its input."""
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(
            f"gradient attacks need floating-point inputs, got {kind}: a model with "
            "integer inputs (token ids) has no input gradient; attack it with "
            "interplab.methods.attacks.gcg instead"
        )
    lo, hi = bounds
    if not lo < hi:
        raise ConfigError(f"bounds must be (low, high) with low < high, got {bounds}")
    if x.numel() and (float(x.min()) < lo - 1e-6 or float(x.max()) > hi + 1e-6):
        raise ConfigError(
            f"inputs lie in [{float(x.min()):.3g}, {float(x.max()):.3g}], outside the "
            f"bounds {bounds}; pass bounds= matching the model's input range"
        )
    d = x[0].numel() if x.shape[0] else 1
    limit = (hi - lo) * (1.0 if norm == "linf" else math.sqrt(d))
    if not (isinstance(eps, (int, float)) and 0 < eps <= limit):
        raise ConfigError(
            f"eps={eps!r} is outside the input's range: an {norm} budget for inputs in "
            f"{bounds} must lie in (0, {limit:.4g}]"
        )
    y = torch.as_tensor(y, dtype=torch.long)
    if y.shape != x.shape[:1]:
        raise ShapeError(
            f"labels must have shape [batch]={tuple(x.shape[:1])}, got {tuple(y.shape)}"
        )
    with torch.enable_grad():
        probe = x[:1].detach().clone().requires_grad_(True)
        out = f(probe)
    if not isinstance(out, Tensor) or out.dim() != 2:
        raise ShapeError(
            "the model must return logits of shape [batch, classes], got "
            f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}"
        )
    if not out.requires_grad:
        raise ConfigError(
            "the model's output has no gradient w.r.t. its input (it detaches, "
            "rounds or indexes it); a gradient attack cannot run on it"
        )
    n_classes = out.shape[-1]
    bad = [int(v) for v in y.unique() if not 0 <= int(v) < n_classes]
    if bad:
        raise ConfigError(f"labels {bad} are not classes of this model (it has {n_classes})")
    if target is None:
        return y, None
    t = torch.as_tensor(target, dtype=torch.long).expand(x.shape[0]).clone()
    bad = sorted({int(v) for v in t.unique() if not 0 <= int(v) < n_classes})
    if bad:
        raise ConfigError(
            f"target class {bad[0]} does not exist: the model has classes 0..{n_classes - 1}"
        )
    return y, t


def _project(x: Tensor, adv: Tensor, eps: float, norm: str, bounds: tuple[float, float]) -> Tensor:
    delta = adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * (eps / size).clamp(max=1.0).view(-1, *[1] * (x.dim() - 1))
    return (x + delta).clamp(*bounds).detach()


def _random_start(
    x: Tensor, eps: float, norm: str, bounds: tuple[float, float], gen: torch.Generator
) -> Tensor:
    if norm == "linf":
        delta = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x) * eps
    else:  # as torchattacks PGDL2: a random direction, a radius uniform in [0, eps]
        delta = torch.randn(x.shape, generator=gen).to(x)
        delta = delta / delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
        delta = delta * (torch.rand(x.shape[0], generator=gen).to(x) * eps).view(
            -1, *[1] * (x.dim() - 1)
        )
    return (x + delta).clamp(*bounds).detach()


def _step(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    adv: Tensor,
    goal: Tensor,
    sign: float,
    alpha: float,
    eps: float,
    norm: str,
    bounds: tuple[float, float],
) -> Tensor:
    adv = adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(f(adv), goal)
        (grad,) = torch.autograd.grad(loss, adv)
    if norm == "linf":
        move = grad.sign()
    else:
        move = grad / (grad.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1)) + 1e-10)
    return _project(x, adv.detach() + sign * alpha * move, eps, norm, bounds)


def _succeeded(pred: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
    return pred != y if t is None else pred == t


@register(
    "attacks",
    "pgd",
    kind="method",
    cost_unit="passes",
    metric="attack_success",
    needs_gradients=True,
)
def pgd(
    model: Any,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    norm: str = "linf",
    restarts: int = 1,
    random_start: bool = True,
    target: Tensor | int | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
    name: str = "pgd",
) -> AttackResult:
    """Projected gradient descent in the ``norm`` ball of radius ``eps`` (see the module doc).
    ``alpha`` defaults to ``2.5 * eps / steps``. Batched by ``batch_size``; seeded by ``seed``;
    ``name`` labels the result (``fgsm`` runs as one PGD step)."""
    from tqdm.auto import tqdm

    f = model_fn(model)
    y, t = check_inputs(f, x, y, eps=eps, norm=norm, bounds=bounds, target=target)
    if steps < 1 or restarts < 1:
        raise ConfigError(f"steps and restarts must be ≥ 1, got steps={steps}, restarts={restarts}")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    sign = 1.0 if t is None else -1.0
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    x = x.detach()
    with torch.no_grad():
        clean_pred = torch.cat(
            [f(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]
        )
    x_adv, adv_pred = x.clone(), clean_pred.clone()
    fwd = bwd = 0
    bar = tqdm(
        total=restarts * len(x),
        desc=f"{name} {norm} eps={eps:g}",
        disable=not progress,
        leave=False,
    )
    for _ in range(restarts):
        todo = (~_succeeded(adv_pred, y, t)).nonzero().flatten()
        for i in range(0, len(todo), batch_size):
            idx = todo[i : i + batch_size]
            xb, goal = x[idx], (y if t is None else t)[idx]
            adv = _random_start(xb, eps, norm, bounds, gen) if random_start else xb.clone()
            for _ in range(steps):
                adv = _step(f, xb, adv, goal, sign, alpha, eps, norm, bounds)
            with torch.no_grad():
                pred = f(adv).argmax(-1)
            fwd, bwd = fwd + steps + 1, bwd + steps
            x_adv[idx], adv_pred[idx] = adv, pred
            bar.update(len(idx))
        bar.update(len(x) - len(todo))
    bar.close()
    return AttackResult(
        x_adv,
        clean_pred,
        adv_pred,
        y,
        t,
        _succeeded(adv_pred, y, t),
        name,
        norm,
        float(eps),
        steps,
        restarts,
        cost=Cost(forward=fwd, backward=bwd),
        seconds=time.perf_counter() - start,
        extra={"alpha": alpha, "random_start": random_start, "seed": seed},
    )


@register(
    "attacks",
    "fgsm",
    kind="method",
    cost_unit="passes",
    metric="attack_success",
    needs_gradients=True,
)
def fgsm(
    model: Any,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    target: Tensor | int | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> AttackResult:
    """Fast gradient sign method: one L∞ step of size ``eps`` from the clean input
    (deterministic: ``seed`` is unused)."""
    return pgd(
        model,
        x,
        y,
        eps=eps,
        alpha=eps,
        steps=1,
        norm="linf",
        restarts=1,
        random_start=False,
        target=target,
        bounds=bounds,
        batch_size=batch_size,
        progress=progress,
        name="fgsm",
    )
