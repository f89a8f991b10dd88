"""The shared shape of gradient-based attribution: a score is a (preconditioned) inner product.

With g_t the measurement gradient of test point t and g_i the loss gradient of training example
i, a linearised method with symmetric preconditioner P scores

    tau(t, i) = - g_t^T P g_i

(first-order: adding example i moves theta by about -P g_i / n, which changes the test output by
tau(t, i) / n; positive = the example raises the test output). Its self-influence is
g_i^T P g_i: how much the example's own loss depends on it, large for examples the model must
memorise (mislabelled ones). :func:`preconditioned_scores` streams the training set in batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interplab.methods.data_attribution.gradients import loss_grad_batches, measurement_grads
from interplab.models.classifiers import AnySpec

Tensor = torch.Tensor
Precondition = Callable[[Tensor], Tensor]  # [k, params] -> [k, params]


def preconditioned_scores(
    spec: AnySpec,
    theta: Tensor,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    precondition: Precondition,
    *,
    self_influence: bool,
    batch_size: int,
) -> tuple[Tensor, Tensor | None]:
    """Scores [n_test, n_train] and, if asked, self-influence [n_train] for preconditioner P."""
    (xr, yr), (xt, yt) = train, test
    pg_test = precondition(measurement_grads(spec, theta, xt, yt))
    scores = torch.empty(len(xt), len(xr), dtype=pg_test.dtype)
    selfs = torch.empty(len(xr), dtype=pg_test.dtype) if self_influence else None
    for rows, g in loss_grad_batches(spec, theta, xr, yr, batch_size):
        scores[:, rows] = -pg_test @ g.T
        if selfs is not None:
            selfs[rows] = (g * precondition(g)).sum(-1)
    return scores, selfs


def identity(v: Tensor) -> Tensor:
    return v
