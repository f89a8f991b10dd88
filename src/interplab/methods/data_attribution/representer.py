"""Representer points (Yeh et al. 2018) for the last layer, and the non-gradient baselines.

Representer points: at a minimum of mean CE + (wd / 2)|W|^2, the last layer is
W = sum_i alpha_i h_i^T with alpha_i = -(1 / (wd n)) dCE_i / dz_i (h_i: the last layer's input,
a 1 appended for the bias). The logits of a test point decompose as z_t = sum_i alpha_i h_i^T h_t,
so example i contributes (h_i^T h_t) alpha_i to them, and to the test margin
tau(t, i) = (h_i^T h_t) (alpha_i . d margin_t / d z_t). Self-influence: alpha_i[y_i] |h_i|^2.

Baselines (no model gradients):
    random             Gaussian scores from ``seed`` (self-influence too)
    nn_input           cosine similarity of the raw inputs, signed + when the training label
                       equals the test label and - otherwise; self-influence: the share of the
                       K nearest training inputs whose label differs (kNN disagreement)
    nn_representation  the same on the last layer's input (logistic regression has no hidden
                       layer: its logits are used)
"""

from __future__ import annotations

import torch

from interplab.models.classifiers import TrainedClassifier

Tensor = torch.Tensor
K_NEIGHBOURS = 10


def _with_one(h: Tensor) -> Tensor:
    return torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype)], 1)


def representer(
    model: TrainedClassifier,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    self_influence: bool = False,
) -> tuple[Tensor, Tensor | None]:
    (xr, yr), (xt, yt) = train, test
    with torch.no_grad():
        zr, zt = model.logits(xr), model.logits(xt)
        hr, ht = _with_one(model.features(xr)), _with_one(model.features(xt))
    dce = torch.softmax(zr, -1) - torch.nn.functional.one_hot(yr, zr.shape[1]).to(zr.dtype)
    alpha = -dce / (model.spec.weight_decay * len(xr))  # [n_train, classes]
    pt = torch.softmax(zt, -1)
    own = torch.nn.functional.one_hot(yt, zt.shape[1]).to(zt.dtype)
    # d margin / d z = e_y - softmax over the other classes
    others = torch.where(own > 0, torch.zeros_like(pt), pt)
    dmargin = own - others / others.sum(-1, keepdim=True)
    scores = (ht @ hr.T) * (dmargin @ alpha.T)
    selfs = alpha.gather(1, yr[:, None])[:, 0] * (hr * hr).sum(-1) if self_influence else None
    return scores, selfs


def random_scores(
    n_test: int, n_train: int, seed: int, self_influence: bool
) -> tuple[Tensor, Tensor | None]:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_test, n_train, generator=gen, dtype=torch.float64)
    return scores, (
        torch.randn(n_train, generator=gen, dtype=torch.float64) if self_influence else None
    )


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def nearest_neighbour(
    rep_train: Tensor, y_train: Tensor, rep_test: Tensor, y_test: Tensor, self_influence: bool
) -> tuple[Tensor, Tensor | None]:
    sim = _unit(rep_test) @ _unit(rep_train).T
    sign = torch.where(y_test[:, None] == y_train[None, :], 1.0, -1.0).to(sim.dtype)
    selfs = None
    if self_influence:
        within = _unit(rep_train) @ _unit(rep_train).T
        within.fill_diagonal_(float("-inf"))
        k = min(K_NEIGHBOURS, len(rep_train) - 1)
        nbrs = within.topk(k, dim=1).indices
        selfs = (y_train[nbrs] != y_train[:, None]).to(sim.dtype).mean(1)
    return sim * sign, selfs


def representation(model: TrainedClassifier, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model.logits(x) if model.spec.kind == "logreg" else model.features(x)
