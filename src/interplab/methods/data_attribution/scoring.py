"""The shared shape of gradient-based attribution: a score is a (preconditioned) inner product.

With g_t the measurement gradient of test point t and g_i the loss gradient of training example
i, a linearised method with symmetric preconditioner P scores

    tau(t, i) = - g_t^T P g_i

(first-order: adding example i moves theta by about -P g_i / n, which changes the test output by
tau(t, i) / n; positive = the example raises the test output). Its self-influence is
g_i^T P g_i: how much the example's own loss depends on it, large for examples the model must
memorise (mislabelled ones). :func:`preconditioned_scores` streams the training set in batches.

Memory: the preconditioned test gradients ``[n_test, params]`` are held while the training set
streams past ``batch_size`` examples at a time; when they would exceed :data:`HELD_MAX`
entries, the test points are taken in chunks of ``HELD_MAX // params`` and the training
gradients recomputed for each chunk (more passes, bounded memory).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interplab.methods.data_attribution.gradients import (
    loss_grad_batches,
    measurement_grad_batches,
    progress_bar,
)
from interplab.models.classifiers import AnySpec

Tensor = torch.Tensor
Precondition = Callable[[Tensor], Tensor]  # [k, params] -> [k, params]
#: the most entries of preconditioned test gradients held at once (2^26: 512 MiB in float64)
HELD_MAX = 2**26


def test_chunks(n_test: int, n_params: int) -> list[slice]:
    """Test-point chunks whose gradients [rows, params] fit :data:`HELD_MAX`."""
    step = max(1, HELD_MAX // max(1, n_params))
    return [slice(s, min(s + step, n_test)) for s in range(0, n_test, step)] or [slice(0, 0)]


def preconditioned_scores(
    spec: AnySpec,
    theta: Tensor,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    precondition: Precondition,
    *,
    self_influence: bool,
    batch_size: int,
    progress: bool = False,
    desc: str = "attribution",
) -> tuple[Tensor, Tensor | None]:
    """Scores [n_test, n_train] and, if asked, self-influence [n_train] for preconditioner P."""
    (xr, yr), (xt, yt) = train, test
    dtype = theta.dtype
    scores = torch.empty(len(xt), len(xr), dtype=dtype)
    selfs = torch.empty(len(xr), dtype=dtype) if self_influence else None
    chunks = test_chunks(len(xt), len(theta))
    n_batches = -(-len(xr) // batch_size)
    bar = progress_bar(len(chunks) * n_batches, desc, progress)
    try:
        for k, tc in enumerate(chunks):
            pg_test = precondition(
                measurement_grad_batches(spec, theta, xt[tc], yt[tc], batch_size)
            )
            for rows, g in loss_grad_batches(spec, theta, xr, yr, batch_size):
                scores[tc, rows] = -pg_test @ g.T
                if selfs is not None and k == 0:
                    selfs[rows] = (g * precondition(g)).sum(-1)
                bar.update(1)
    finally:
        bar.close()
    return scores, selfs


def identity(v: Tensor) -> Tensor:
    return v
