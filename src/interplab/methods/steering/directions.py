"""Difference-in-means directions (see the package docstring). Shapes: n examples, d features.

Registered in the ``steering`` family with the call shape ``fn(with_concept, without, *,
seed=0) -> Direction``: ``diff_in_means`` (method) and ``random`` (a seeded random unit
direction with the same gap, the control). They read activations, not a model (cost "none").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.errors import ShapeError
from interplab.methods.base import Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True)
class Direction(Result):
    """A unit ``vector`` [d]; ``gap`` = mean projection of the concept examples minus that of the
    others (the size of a natural step along it); ``midpoint`` = the projection halfway between
    the two means (a threshold for :meth:`project`)."""

    vector: Tensor
    gap: float
    midpoint: float

    def _check(self, acts: Tensor) -> None:
        if acts.shape[-1] != self.vector.shape[0]:
            raise ShapeError(
                f"activations have {acts.shape[-1]} features, the direction {self.vector.shape[0]}"
            )

    def project(self, acts: Tensor) -> Tensor:
        """Scalar projection of each row of ``acts`` [..., d] on the direction."""
        self._check(acts)
        return acts @ self.vector.to(acts.dtype)

    def ablate(self, acts: Tensor) -> Tensor:
        """``acts`` with its component along the direction removed (directional ablation)."""
        v = self.vector.to(acts.dtype)
        return acts - self.project(acts).unsqueeze(-1) * v

    def add(self, acts: Tensor, alpha: float) -> Tensor:
        """``acts + alpha * gap * vector`` (alpha = 1: one mean gap towards the concept)."""
        self._check(acts)
        return acts + alpha * self.gap * self.vector.to(acts.dtype)


@register("steering", "diff_in_means", kind="method", cost_unit="none", metric="steering_effect")
def diff_in_means(with_concept: Tensor, without: Tensor, *, seed: int = 0) -> Direction:
    """The normalised difference of the two groups' mean activations ([n, d] and [m, d])."""
    if with_concept.dim() != 2 or without.dim() != 2 or with_concept.shape[1] != without.shape[1]:
        raise ShapeError(
            f"diff_in_means takes two [n, d] tensors with the same d, got "
            f"{tuple(with_concept.shape)} and {tuple(without.shape)}"
        )
    if len(with_concept) == 0 or len(without) == 0:
        raise ShapeError("diff_in_means needs at least one example in each group")
    a, b = with_concept.double().mean(0), without.double().mean(0)
    diff = a - b
    norm = float(diff.norm())
    if norm == 0.0:
        raise ShapeError("the two groups have the same mean: there is no direction between them")
    v = (diff / norm).to(with_concept.dtype)
    pa, pb = float(a @ diff / norm), float(b @ diff / norm)
    return Direction(v, pa - pb, (pa + pb) / 2)


@register("steering", "random", kind="baseline", cost_unit="none", metric="steering_effect")
def random_steering(with_concept: Tensor, without: Tensor, *, seed: int = 0) -> Direction:
    """A seeded uniformly random unit direction with the difference-in-means gap (a control)."""
    like = diff_in_means(with_concept, without)
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(like.vector.shape[0], generator=gen, dtype=torch.float64)
    return Direction((v / v.norm()).to(like.vector.dtype), like.gap, 0.0)
