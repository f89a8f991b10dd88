"""LEACE: least-squares concept erasure in closed form (Belrose et al. 2023).

Given representations ``x [n, d]`` and a concept ``z [n, k]`` (a binary concept is one column),
LEACE finds the affine map ``r(x) = x - W⁺ P W (x - μ)`` that makes the cross-covariance of
``r(x)`` with ``z`` exactly zero while moving ``x`` as little as possible (in the whitened
metric). Here ``μ`` is the mean of ``x``, ``W = Σ^{-1/2}`` whitens it (pseudo-inverse square
root of the covariance, eigenvalues below ``tol · max`` treated as zero), ``W⁺ = Σ^{1/2}``
unwhitens, and ``P`` is the orthogonal projection onto the column space of ``W Σ_xz``.

Zero cross-covariance means every linear predictor of ``z`` from ``r(x)`` does no better (under
any convex loss) than a constant: no linear information about the concept is left on the data
the eraser was fit on. Non-linear information may remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.base import Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True)
class LeaceEraser(Result):
    """``apply(x) = x - (x - mean) @ proj.T`` with ``proj = W⁺ P W`` ([d, d], rank = ``rank``)."""

    mean: Tensor
    proj: Tensor
    rank: int

    def apply(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ShapeError(f"x must be [batch, {self.mean.shape[0]}], got {tuple(x.shape)}")
        return x - (x - self.mean) @ self.proj.T


def _as_matrix(z: Tensor, n: int) -> Tensor:
    z = z.double()
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] != n:
        raise ShapeError(f"concept must be [n] or [n, k] with n = {n}, got {tuple(z.shape)}")
    return z


@register("erasure", "leace", kind="method", cost_unit="none", metric="worst_group_accuracy")
def fit_leace(x: Tensor, z: Tensor, *, seed: int = 0, tol: float = 1e-6) -> LeaceEraser:
    """Fit the LEACE eraser of concept ``z`` ([n] or [n, k]) on representations ``x [n, d]``."""
    if x.ndim != 2:
        raise ShapeError(f"x must be [n, d], got {tuple(x.shape)}")
    n, _d = x.shape
    if n < 2:
        raise ConfigError(f"LEACE needs at least 2 examples to estimate a covariance, got {n}")
    z = _as_matrix(z, n)
    xd = x.double()
    mu = xd.mean(0)
    xc, zc = xd - mu, z - z.mean(0)
    cov = xc.T @ xc / n
    cross = xc.T @ zc / n  # [d, k]
    evals, evecs = torch.linalg.eigh(cov)
    keep = evals > tol * evals.max().clamp_min(1e-30)
    root = evals.clamp_min(0).sqrt()
    inv_root = torch.where(keep, 1.0 / root.clamp_min(1e-30), torch.zeros_like(root))
    whiten = evecs @ torch.diag(inv_root) @ evecs.T
    unwhiten = evecs @ torch.diag(torch.where(keep, root, torch.zeros_like(root))) @ evecs.T
    u, s, _ = torch.linalg.svd(whiten @ cross, full_matrices=False)
    basis = u[:, s > tol * s.max().clamp_min(1e-30)] if s.numel() else u[:, :0]
    proj = unwhiten @ basis @ basis.T @ whiten
    return LeaceEraser(mu.to(x.dtype), proj.to(x.dtype), int(basis.shape[1]))


def random_eraser(like: LeaceEraser, seed: int) -> LeaceEraser:
    """A control for ``like``: the same mean and rank, but an orthogonal projection onto a
    random subspace (seeded) instead of the one that carries the concept."""
    d = like.mean.shape[0]
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, max(like.rank, 1), generator=gen, dtype=torch.float64))
    q = q[:, : like.rank]
    return LeaceEraser(like.mean, (q @ q.T).to(like.proj.dtype), like.rank)


@register("erasure", "random", kind="baseline", cost_unit="none", metric="worst_group_accuracy")
def random_erasure(x: Tensor, z: Tensor, *, seed: int = 0, tol: float = 1e-6) -> LeaceEraser:
    """:func:`random_eraser` of the LEACE eraser fit on ``(x, z)`` (its rank, a random subspace)."""
    return random_eraser(fit_leace(x, z, tol=tol), seed)
