"""Deep Feature Reweighting (Kirichenko et al. 2023): keep the features, refit the last layer.

The hidden features ``h`` of a small labelled set in which the spurious cue is independent of
the label are standardised (with that set's mean and std) and a multinomial logistic
regression with an L2 penalty ``l2 · ||W||²`` is fit by L-BFGS. The result is a new readout
that only needs the model's features, not its insides: a baseline, not interpretability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True)
class Readout(Result):
    """``logits(h) = ((h - mean) / std) @ weight.T + bias``."""

    mean: Tensor
    std: Tensor
    weight: Tensor
    bias: Tensor

    def logits(self, h: Tensor) -> Tensor:
        return ((h - self.mean) / self.std) @ self.weight.T + self.bias


@register("erasure", "dfr", kind="baseline", cost_unit="none", metric="worst_group_accuracy")
def retrain_readout(
    h: Tensor,
    y: Tensor,
    *,
    seed: int = 0,
    n_classes: int = 2,
    l2: float = 1e-2,
    steps: int = 100,
) -> Readout:
    """Fit a fresh linear readout of labels ``y [n]`` on features ``h [n, d]`` (see module doc)."""
    if h.ndim != 2 or y.shape != (h.shape[0],):
        raise ShapeError(f"h must be [n, d] and y [n]; got {tuple(h.shape)} and {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ConfigError(f"labels must lie in 0..{n_classes - 1}")
    h = h.detach().float()
    mean, std = h.mean(0), h.std(0).clamp_min(1e-6)
    hs = (h - mean) / std
    w = torch.zeros(n_classes, h.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(hs @ w.T + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return Readout(mean, std, w.detach(), b.detach())
