"""Ranking hidden units by how much of a concept's effect on the output they carry, and
mean-ablating the top ones (the "find the neurons, then switch them off" recipe of SHIFT,
Marks et al. 2024, here on units instead of SAE features).

Attribution: with a linear readout ``logits = h @ Wᵀ + b`` and a scalar output direction
``v`` (e.g. logit 1 − logit 0), the change in the output between the two values of a binary
concept splits exactly over units: ``Δ = Σ_u (mean(h_u | z=1) − mean(h_u | z=0)) · (W_u · v)``.
A unit's score is the magnitude of its term; without a readout, the activation difference
alone. Mean ablation replaces a unit by its mean on the data the ranking was fit on, which
removes what it says about the concept while keeping the layer's average input to the readout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True)
class UnitRanking(Result):
    """``scores [d]`` (higher = more of the concept), ``order`` (units by descending score) and
    ``means [d]`` (each unit's mean on the fitting data, the value ablation writes)."""

    scores: Tensor
    order: Tensor
    means: Tensor

    def top(self, k: int) -> Tensor:
        if not 0 <= k <= len(self.order):
            raise ConfigError(f"k must lie in [0, {len(self.order)}], got {k}")
        return self.order[:k]


@register(
    "erasure", "neuron_ablation", kind="method", cost_unit="none", metric="worst_group_accuracy"
)
def rank_units(
    h: Tensor, concept: Tensor, *, seed: int = 0, readout: Tensor | None = None
) -> UnitRanking:
    """Rank the units of ``h [n, d]`` by their attribution to binary ``concept [n]`` through
    ``readout`` ([d] output direction per unit, e.g. ``W[1] - W[0]``; None: activation only)."""
    if h.ndim != 2 or concept.shape != (h.shape[0],):
        raise ShapeError(
            f"h must be [n, d] and concept [n]; got {tuple(h.shape)} and {tuple(concept.shape)}"
        )
    on, off = concept == 1, concept == 0
    if not bool(on.any()) or not bool(off.any()) or not bool((on | off).all()):
        raise ConfigError("concept must be binary (0/1) with both values present")
    diff = h[on].mean(0) - h[off].mean(0)
    if readout is not None:
        if readout.shape != (h.shape[1],):
            raise ShapeError(f"readout must be [{h.shape[1]}], got {tuple(readout.shape)}")
        diff = diff * readout
    scores = diff.abs()
    return UnitRanking(scores, torch.argsort(scores, descending=True), h.mean(0))


def mean_ablate(h: Tensor, units: Tensor, means: Tensor) -> Tensor:
    """``h`` with the columns ``units`` replaced by ``means[units]``."""
    out = h.clone()
    if len(units):
        out[:, units] = means[units]
    return out
