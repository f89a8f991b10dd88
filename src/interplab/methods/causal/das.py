"""Distributed alignment search (DAS, Geiger et al. 2023): learn a k-dimensional subspace of a
site where interchange interventions realise a high-level variable.

Given (base, source) input pairs and the high-level model's counterfactual labels (what the
output should be when the variable takes the source's value), DAS learns orthonormal columns
Q [d, k] so that ``h_base + (h_source - h_base) Q Q^T`` at the site makes the model output those
labels. It is scored by IIA on held-out pairs and, where the true subspace B is known (compiled
variables), by the principal angles between span(Q) and span(B).

    result = das(model, site, base, source, labels, k=4, positions=(1, 2, 3))
    overlap = subspace_overlap(result.basis, true_basis)

Shapes: b = batch, p = pos, d = the site's last axis, k = subspace size, n = scored positions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from interplab.core.interventions import Replace
from interplab.core.sites import Site
from interplab.errors import ShapeError

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class DASResult:
    """A learned alignment. ``basis``: [d, k] orthonormal columns; ``iia``: held-out
    interchange-intervention accuracy (sequence-level exact match over scored positions);
    ``train_iia``; ``n_train``/``n_test`` pairs; ``seconds``."""

    site: Site
    basis: Tensor
    iia: float
    train_iia: float
    n_train: int
    n_test: int
    seconds: float


class _Rotation(nn.Module):
    def __init__(self, d: int, k: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        lin = nn.Linear(d, k, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(k, d, generator=gen) / d ** 0.5)
        self.lin = nn.utils.parametrizations.orthogonal(lin)

    @property
    def basis(self) -> Tensor:  # [d, k]
        return self.lin.weight.T


def swap_fn(source: Tensor, basis: Tensor, positions: Sequence[int] | None = None):
    """fn(h) = h + (source - h) Q Q^T on ``positions`` (all if None); for ``Replace``."""
    def fn(h: Tensor) -> Tensor:
        delta = ((source - h) @ basis) @ basis.T
        if positions is not None:
            mask = torch.zeros(h.shape[1], 1, dtype=h.dtype)
            mask[list(positions)] = 1.0
            delta = delta * mask
        return h + delta
    return fn


def _run(model: Any, site: Site, base: Tensor, source_act: Tensor, basis: Tensor,
         positions: Sequence[int] | None, grad: bool) -> Tensor:
    return model.run_with(base, [Replace(site, fn=swap_fn(source_act, basis, positions))], grad=grad)


def _seq_acc(logits: Tensor, labels: Tensor, out_positions: Sequence[int]) -> float:
    pred = logits[:, list(out_positions)].argmax(-1)
    return float((pred == labels).all(-1).float().mean())


def das(model: Any, site: Site, base: Tensor, source: Tensor, labels: Tensor, *, k: int,
        positions: Sequence[int] | None = None, out_positions: Sequence[int] | None = None,
        steps: int = 300, lr: float = 1e-2, batch: int = 128, test_fraction: float = 0.25,
        seed: int = 0) -> DASResult:
    """Learn a k-dim subspace at ``site`` realising a variable.

    Args:
        model: a HookedModel (its parameters are not trained).
        base, source: input tokens [b, p] (pairs row by row).
        labels: int64 [b, n] class ids the output should take under the interchange, at
            ``out_positions`` (default: positions 1..p-1).
        positions: positions of the site to intervene on (default all).
        test_fraction: share of pairs held out for the reported IIA.
    """
    if base.shape != source.shape or labels.shape[0] != base.shape[0]:
        raise ShapeError(f"das needs base/source of one shape and labels per pair; got base "
                         f"{tuple(base.shape)}, source {tuple(source.shape)}, labels "
                         f"{tuple(labels.shape)}")
    start = time.perf_counter()
    out_positions = tuple(out_positions) if out_positions is not None else \
        tuple(range(1, base.shape[1]))
    _, cache = model.run_with_cache(source, [site])
    src_act = cache[site]
    _, base_cache = model.run_with_cache(base[:1], [site])
    d = base_cache[site].shape[-1]
    n_test = max(1, int(base.shape[0] * test_fraction))
    n_train = base.shape[0] - n_test
    rot = _Rotation(d, k, seed)
    opt = torch.optim.Adam(rot.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in getattr(model, "module", model).parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            idx = torch.randint(0, n_train, (min(batch, n_train),), generator=gen)
            logits = _run(model, site, base[idx], src_act[idx], rot.basis, positions, grad=True)
            out = logits[:, list(out_positions)]
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), labels[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
    basis = rot.basis.detach().clone()
    with torch.no_grad():
        tr = slice(0, n_train)
        te = slice(n_train, base.shape[0])
        train_iia = _seq_acc(_run(model, site, base[tr], src_act[tr], basis, positions, False),
                             labels[tr], out_positions)
        iia = _seq_acc(_run(model, site, base[te], src_act[te], basis, positions, False),
                       labels[te], out_positions)
    return DASResult(site, basis, iia, train_iia, n_train, n_test, time.perf_counter() - start)


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles (radians, ascending) between span(a) and span(b); a [d, k1], b [d, k2]."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    s = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.arccos(s).float()


def subspace_overlap(learned: Tensor, true: Tensor) -> float:
    """Mean squared cosine of the principal angles between span(learned) and span(true):
    1 = the smaller subspace lies inside the other, 0 = orthogonal. A random k-dim subspace of
    R^d scores about max(k1, k2)/d."""
    return float(torch.cos(principal_angles(learned, true)).pow(2).mean())


def active_subspace(acts: Tensor, tol: float = 1e-4) -> Tensor:
    """[d, m] orthonormal directions along which ``acts`` [n, d] vary (centred SVD, relative
    tolerance ``tol``). Directions outside it are constant on the data, so an interchange along
    them is a no-op and DAS cannot be scored on them."""
    centred = acts.double() - acts.double().mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    keep = s > tol * s.max().clamp_min(1e-12)
    return vh[keep].T.float()


def overlap_within(learned: Tensor, true: Tensor, active: Tensor) -> float:
    """:func:`subspace_overlap` after projecting both onto the ``active`` [d, m] subspace."""
    proj = active @ active.T
    return subspace_overlap(proj @ learned, proj @ true)
