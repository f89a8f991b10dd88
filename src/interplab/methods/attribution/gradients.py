"""Integrated gradients and input x gradient, with the completeness check.

``fn`` maps inputs x [b, ...] to one scalar per example [b]. Integrated gradients (Riemann
midpoint or Gauss-Legendre rule with ``steps`` points on the straight path from ``baseline``) satisfy
completeness: sum(attributions) = fn(x) - fn(baseline), up to discretisation error, which is
reported. Input x gradient has no such guarantee; its gap is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class Attributions:
    """values: same shape as x; output_diff [b] = fn(x) - fn(baseline); completeness_error [b]
    = |sum(values) - output_diff|."""

    values: Tensor
    output_diff: Tensor
    completeness_error: Tensor
    method: str

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "output_diff": self.output_diff.tolist(),
            "attribution_sum": self.values.flatten(1).sum(1).tolist(),
            "max_completeness_error": float(self.completeness_error.max()),
        }


def _grad(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x)
        (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def integrated_gradients(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    baseline: Tensor | None = None,
    steps: int = 64,
    rule: str = "midpoint",
) -> Attributions:
    """``rule``: "midpoint" (Riemann midpoints, captum's riemann_middle) or "gauss_legendre"
    (captum's gausslegendre; exact for polynomial paths of degree < 2 * steps)."""
    from interplab.methods.circuits.full_graph import ig_points

    alphas, weights = ig_points(steps, rule)
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    total = torch.zeros_like(x)
    for alpha, weight in zip(alphas, weights):
        _, g = _grad(fn, baseline + alpha * (x - baseline))
        total += weight * g
    values = (x - baseline) * total
    with torch.no_grad():
        diff = fn(x) - fn(baseline)
    err = (values.flatten(1).sum(1) - diff).abs()
    return Attributions(values, diff, err, "integrated_gradients")


def input_x_gradient(
    fn: Callable[[Tensor], Tensor], x: Tensor, baseline: Tensor | None = None
) -> Attributions:
    baseline = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    out, g = _grad(fn, x)
    values = (x - baseline) * g
    with torch.no_grad():
        diff = out - fn(baseline)
    err = (values.flatten(1).sum(1) - diff).abs()
    return Attributions(values, diff, err, "input_x_gradient")
