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
force there: tau(t, i) = - sum_c eta_c g_t(c)^T g_i(c); self-influence sum_c eta_c |g_i(c)|^2
(a user's module's checkpoints all weigh 1: their step sizes are not known).

Memory: per checkpoint, the projection ``[params, proj_dim]`` (refused above :data:`PROJ_MAX`
entries: lower ``proj_dim``), the features ``[n, proj_dim]`` and one batch of gradients.
"""

from __future__ import annotations

import torch

from interplab.errors import ConfigError
from interplab.methods.data_attribution.gradients import measurement_grads, progress_bar
from interplab.methods.data_attribution.scoring import identity, preconditioned_scores
from interplab.models.classifiers import TrainedClassifier, margin

Tensor = torch.Tensor
PROJ_DIM = 256
#: ridge on Phi^T Phi, relative to its mean diagonal (fixed in advance)
RIDGE = 1e-3
#: the largest projection matrix held, in entries (2^28: 2 GiB in float64)
PROJ_MAX = 2**28


def _features(
    model: TrainedClassifier,
    theta: Tensor,
    x: Tensor,
    y: Tensor,
    proj: Tensor | None,
    batch_size: int,
    bar=None,
) -> Tensor:
    parts = []
    for start in range(0, len(x), batch_size):
        g = measurement_grads(
            model.spec, theta, x[start : start + batch_size], y[start : start + batch_size]
        )
        parts.append(g if proj is None else g @ proj)
        if bar is not None:
            bar.update(1)
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
    progress: bool = False,
) -> tuple[Tensor, Tensor | None]:
    (xr, yr), (xt, yt) = train, test
    ckpts = model.checkpoints[-n_checkpoints:] if n_checkpoints else model.checkpoints
    n_params = len(model.theta)
    if proj_dim is not None and (proj_dim < 1 or n_params * proj_dim > PROJ_MAX):
        raise ConfigError(
            f"TRAK's proj_dim must be ≥ 1 with params × proj_dim ≤ {PROJ_MAX}; got proj_dim "
            f"{proj_dim} for {n_params} parameters"
        )
    if proj_dim is None and n_params * n_params > PROJ_MAX:
        raise ConfigError(
            f"TRAK without projection forms a [{n_params}, {n_params}] kernel: too large; "
            "give proj_dim"
        )
    gen = torch.Generator().manual_seed(seed)
    dtype = model.theta.dtype
    kernel_scores = torch.zeros(len(xt), len(xr), dtype=dtype)
    leverage = torch.zeros(len(xr), dtype=dtype)
    q = torch.zeros(len(xr), dtype=dtype)
    per_ckpt = -(-len(xr) // batch_size) + -(-len(xt) // batch_size)
    bar = progress_bar(len(ckpts) * per_ckpt, "trak", progress)
    try:
        for theta in ckpts:
            proj = None
            if proj_dim is not None:
                proj = torch.randn(len(theta), proj_dim, generator=gen, dtype=dtype)
                proj /= proj_dim**0.5
            phi = _features(model, theta, xr, yr, proj, batch_size, bar)
            phi_t = _features(model, theta, xt, yt, proj, batch_size, bar)
            kernel = phi.T @ phi
            kernel += ridge * kernel.diagonal().mean() * torch.eye(len(kernel), dtype=dtype)
            solved = torch.linalg.solve(kernel, phi.T)  # [k, n_train]
            kernel_scores += phi_t @ solved
            leverage += (phi * solved.T).sum(-1)
            with torch.no_grad():
                for s in range(0, len(xr), batch_size):  # 1 - p(label)
                    z = model.logits(xr[s : s + batch_size], theta)
                    q[s : s + batch_size] += 1.0 - torch.sigmoid(margin(z, yr[s : s + batch_size]))
    finally:
        bar.close()
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
    progress: bool = False,
) -> tuple[Tensor, Tensor | None]:
    total, selfs = None, None
    for k, (theta, lr) in enumerate(zip(model.checkpoints, model.checkpoint_lr)):
        s, si = preconditioned_scores(
            model.spec,
            theta,
            train,
            test,
            identity,
            self_influence=self_influence,
            batch_size=batch_size,
            progress=progress,
            desc=f"tracin checkpoint {k + 1}/{len(model.checkpoints)}",
        )
        total = lr * s if total is None else total + lr * s
        if si is not None:
            selfs = lr * si if selfs is None else selfs + lr * si
    if total is None:
        raise ConfigError("TracIn sums over the training checkpoints, and this model has none")
    return total, selfs
