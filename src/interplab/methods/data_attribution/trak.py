"""TRAK (Park et al. 2023) and TracIn (Pruthi et al. 2020): attribution along training.

TRAK linearises the model at a checkpoint: features phi_i = R^T d margin(x_i) / d theta (R a
random Gaussian projection to ``proj_dim`` dimensions, scaled by 1/sqrt(proj_dim); no projection
when ``proj_dim`` is None), and scores

    tau(t, i) = mean_c[phi_t^T (Phi^T Phi + ridge I)^-1 phi_i] * mean_c[1 - p_i]

over checkpoints c (p_i the probability of example i's label: the loss gradient is -(1 - p_i)
times the margin gradient; the two averages taken apart, as in the paper and its reference code
``traker``). ``ridge`` is relative to the mean diagonal of Phi^T Phi. Self-influence:
the same with t = i.
The projection is drawn from ``seed``; training features are projected batch by batch.

TracIn sums the plain gradient inner product over checkpoints, weighted by the step size in
force there: tau(t, i) = - sum_c eta_c g_t(c)^T g_i(c); self-influence sum_c eta_c |g_i(c)|^2.
"""

from __future__ import annotations

import torch

from interplab.errors import ConfigError
from interplab.methods.data_attribution.gradients import measurement_grads
from interplab.methods.data_attribution.scoring import identity, preconditioned_scores
from interplab.models.classifiers import TrainedClassifier, margin

Tensor = torch.Tensor
PROJ_DIM = 256
#: ridge on Phi^T Phi, relative to its mean diagonal (fixed in advance)
RIDGE = 1e-3


def _features(
    model: TrainedClassifier,
    theta: Tensor,
    x: Tensor,
    y: Tensor,
    proj: Tensor | None,
    batch_size: int,
) -> Tensor:
    parts = []
    for start in range(0, len(x), batch_size):
        g = measurement_grads(
            model.spec, theta, x[start : start + batch_size], y[start : start + batch_size]
        )
        parts.append(g if proj is None else g @ proj)
    return torch.cat(parts)


def trak(
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    proj_dim: int | None = PROJ_DIM,
    n_checkpoints: int | None = None,
    ridge: float = RIDGE,
    seed: int = 0,
    self_influence: bool = False,
    batch_size: int = 128,
) -> tuple[Tensor, Tensor | None]:
    (xr, yr), (xt, yt) = train, test
    ckpts = model.checkpoints[-n_checkpoints:] if n_checkpoints else model.checkpoints
    gen = torch.Generator().manual_seed(seed)
    dtype = model.theta.dtype
    kernel_scores = torch.zeros(len(xt), len(xr), dtype=dtype)
    leverage = torch.zeros(len(xr), dtype=dtype)
    q = torch.zeros(len(xr), dtype=dtype)
    for theta in ckpts:
        proj = None
        if proj_dim is not None:
            proj = torch.randn(len(theta), proj_dim, generator=gen, dtype=dtype) / proj_dim**0.5
        phi = _features(model, theta, xr, yr, proj, batch_size)
        phi_t = _features(model, theta, xt, yt, proj, batch_size)
        kernel = phi.T @ phi
        kernel += ridge * kernel.diagonal().mean() * torch.eye(len(kernel), dtype=dtype)
        solved = torch.linalg.solve(kernel, phi.T)  # [k, n_train]
        kernel_scores += phi_t @ solved
        leverage += (phi * solved.T).sum(-1)
        with torch.no_grad():
            q += 1.0 - torch.sigmoid(margin(model.logits(xr, theta), yr))  # 1 - p(label)
    m = len(ckpts)
    scores = (kernel_scores / m) * (q / m)
    return scores, ((leverage / m) * (q / m) if self_influence else None)


def tracin(
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    self_influence: bool = False,
    batch_size: int = 128,
) -> tuple[Tensor, Tensor | None]:
    total, selfs = None, None
    for theta, lr in zip(model.checkpoints, model.checkpoint_lr):
        s, si = preconditioned_scores(
            model.spec,
            theta,
            train,
            test,
            identity,
            self_influence=self_influence,
            batch_size=batch_size,
        )
        total = lr * s if total is None else total + lr * s
        if si is not None:
            selfs = lr * si if selfs is None else selfs + lr * si
    if total is None:
        raise ConfigError("TracIn sums over the training checkpoints, and this model has none")
    return total, selfs
