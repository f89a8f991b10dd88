"""Integrated gradients and input x gradient, with the completeness check.

``model`` here is any function from inputs x [b, ...] to one scalar per example [b] (a score,
a logit, a similarity). Integrated gradients (Riemann midpoint or Gauss-Legendre rule with
``steps`` points on the straight path from ``baseline``) satisfy completeness: sum(attributions)
= model(x) - model(baseline), up to discretisation error, which is reported. Input x gradient
has no such guarantee; its gap is reported too.

:class:`Attributions` is the one attribution result of the library: these gradient methods and
the decision rationales (:mod:`interplab.methods.rationales`) both return it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from interplab.methods.base import Cost, Result
from interplab.methods.quadrature import ig_points
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True)
class Attributions(Result):
    """Per-feature attributions of a score.

    Attributes:
        method: the method that made them.
        values: one number per input feature, in the score's units (same shape as the input).
        output_diff: [b] model(x) - model(baseline), where computed (gradient methods).
        completeness_error: [b] |sum(values) - output_diff|, where computed.
        base: the reference's score (a rationale's background mean score), where computed.
        score: the explained row's score, where computed.
        signed: False for unsigned importances (permutation importance).
        error: a 95 % half-width per feature, where estimated (kernel SHAP).
    """

    method: str
    values: Tensor
    output_diff: Tensor | None = None
    completeness_error: Tensor | None = None
    base: float = 0.0
    score: float = 0.0
    signed: bool = True
    error: Tensor | None = None

    def to_dict(self) -> dict:
        out: dict = {
            "method": self.method,
            "attribution_sum": self.values.flatten(1).sum(1).tolist(),
        }
        if self.output_diff is not None and self.completeness_error is not None:
            out["output_diff"] = self.output_diff.tolist()
            out["max_completeness_error"] = float(self.completeness_error.max())
        return out


def _grad(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x)
        (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def path_gradient(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    baseline: Tensor,
    steps: int,
    rule: str = "midpoint",
    batch_size: int | None = None,
) -> tuple[Tensor, int]:
    """The path-averaged gradient of ``model`` from ``baseline`` to ``x`` (both [b, ...]) and
    the number of backward passes it took. ``batch_size`` path points go through ``model`` in
    one pass (default 1: every pass sees exactly the b rows of ``x``, so a model that indexes
    its batch by row still works)."""
    alphas, weights = ig_points(steps, rule)
    alpha = torch.tensor(alphas, dtype=x.dtype).view(-1, *([1] * x.dim()))
    per = batch_size or 1
    grads = []
    for lo in range(0, steps, per):
        path = baseline + alpha[lo : lo + per] * (x - baseline)  # [p, b, ...]
        _, g = _grad(model, path.reshape(-1, *x.shape[1:]))
        grads.append(g.reshape(path.shape))
    g = torch.cat(grads)
    if len(set(weights)) == 1:  # the midpoint rule: a plain mean
        return g.mean(0), len(grads)
    w = torch.tensor(weights, dtype=x.dtype).view(-1, *([1] * x.dim()))
    return (w * g).sum(0), len(grads)


@register(
    "attribution",
    "integrated_gradients",
    kind="method",
    cost_unit="passes",
    metric="completeness_error",
    needs_gradients=True,
)
def integrated_gradients(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    baseline: Tensor | None = None,
    steps: int = 64,
    rule: str = "midpoint",
    batch_size: int | None = None,
) -> Attributions:
    """Integrated gradients (Sundararajan et al. 2017) of ``model``'s score at ``x`` [b, ...]
    from ``baseline`` (default zeros). ``rule``: "midpoint" (Riemann midpoints, captum's
    riemann_middle) or "gauss_legendre" (captum's gausslegendre; exact for polynomial paths of
    degree < 2 * steps). ``batch_size``: path points per pass (see :func:`path_gradient`)."""
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    grad, backward = path_gradient(model, x, baseline, steps, rule, batch_size)
    values = (x - baseline) * grad
    with torch.no_grad():
        diff = model(x) - model(baseline)
    err = (values.flatten(1).sum(1) - diff).abs()
    return Attributions(
        method="integrated_gradients",
        values=values,
        output_diff=diff,
        completeness_error=err,
        cost=Cost(forward=backward + 2, backward=backward),
    )


@register(
    "attribution",
    "input_x_gradient",
    kind="baseline",
    cost_unit="passes",
    metric="completeness_error",
    needs_gradients=True,
)
def input_x_gradient(
    model: Callable[[Tensor], Tensor], x: Tensor, *, baseline: Tensor | None = None
) -> Attributions:
    """Input x gradient: (x - baseline) times the gradient at x (no completeness guarantee)."""
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    out, g = _grad(model, x)
    values = (x - baseline) * g
    with torch.no_grad():
        diff = out - model(baseline)
    err = (values.flatten(1).sum(1) - diff).abs()
    return Attributions(
        method="input_x_gradient",
        values=values,
        output_diff=diff,
        completeness_error=err,
        cost=Cost(forward=2, backward=1),
    )
