"""Influence functions (Koh & Liang 2017): precondition by the inverse curvature of the objective.

Four ways to apply (H + damping I)^-1, each a preconditioner for
:func:`~interplab.methods.data_attribution.scoring.preconditioned_scores`:

    if_exact  the exact Hessian of the objective (weight decay included), eigendecomposed once;
              negative eigenvalues (a non-convex model away from a minimum) clipped to 0
    if_cg     conjugate gradient on Gauss-Newton-vector products (never materialised), a block
              of right-hand sides at a time
    if_lissa  LiSSA (Agarwal et al. 2017): the Neumann series v <- g + (I - (G + d) / s) v, with
              s above the largest eigenvalue (power iteration), run for a fixed depth
    ekfac     EK-FAC (George et al. 2018; Grosse et al. 2023): per layer, the Gauss-Newton block
              approximated as A (x) S, A = E[a a^T] over the layer's inputs (with a 1 for the bias),
              S = E_y~model[g g^T] over its output gradients (expectation over the model's own
              label distribution, computed exactly), eigenbases Q_A, Q_S, and the eigenvalues
              corrected to E[(Q_S^T g a^T Q_A)^2]; the inverse is applied in the eigenbasis

On a spec with its own network (the transformer organism), ``ekfac`` runs over its affine
maps (:mod:`~interplab.methods.data_attribution.ekfac_maps`); on a user's torch module
(:class:`~interplab.models.module_classifier.ModuleSpec`) over its Linear and Conv2d layers,
streamed in batches (:mod:`~interplab.methods.data_attribution.ekfac_modules`), and the exact
Hessian and Gauss-Newton products take the training set ``rows`` examples at a time.
``if_exact`` is refused above :data:`EXACT_MAX_PARAMS` parameters (the Hessian would not fit a
small machine's minutes).

Damping: :data:`DAMPING` on top of the weight decay, fixed in advance for every organism (not
tuned on the LDS test points).
"""

from __future__ import annotations

import torch

from interplab.errors import ConfigError
from interplab.methods.data_attribution.ekfac_maps import map_ekfac_preconditioner
from interplab.methods.data_attribution.gradients import ggn_product, hessian
from interplab.methods.data_attribution.scoring import Precondition
from interplab.models.classifiers import AnySpec, ClassifierSpec, forward_layers
from interplab.models.module_classifier import ModuleSpec

Tensor = torch.Tensor
DAMPING = 1e-3
CG_ITERS = 100
CG_TOL = 1e-10
LISSA_DEPTH = 100
#: the largest model whose exact Hessian if_exact forms ([params, params], eigendecomposed)
EXACT_MAX_PARAMS = 4096


def exact_preconditioner(
    spec: AnySpec,
    theta: Tensor,
    x: Tensor,
    y: Tensor,
    damping: float = DAMPING,
    rows: int | None = None,
) -> Precondition:
    if len(theta) > EXACT_MAX_PARAMS:
        raise ConfigError(
            f"if_exact forms the exact Hessian, [{len(theta)}, {len(theta)}] for this model: "
            f"too large (limit {EXACT_MAX_PARAMS} parameters); use if_cg, if_lissa or ekfac"
        )
    evals, evecs = torch.linalg.eigh(hessian(spec, theta, x, y, rows))
    inv = 1.0 / (evals.clamp_min(0.0) + damping)
    return lambda v: ((v @ evecs) * inv) @ evecs.T


def cg_preconditioner(
    spec: AnySpec,
    theta: Tensor,
    x: Tensor,
    damping: float = DAMPING,
    iters: int = CG_ITERS,
    block: int = 256,
    y: Tensor | None = None,
    rows: int | None = None,
) -> Precondition:
    matvec = ggn_product(spec, theta, x, y, rows)

    def solve(b: Tensor) -> Tensor:  # b [k, params]; k independent CG runs, vectorised
        out = torch.zeros_like(b)
        r = b.clone()
        p = r.clone()
        rs = (r * r).sum(-1)
        for _ in range(iters):
            ap = matvec(p) + damping * p
            alpha = rs / (p * ap).sum(-1).clamp_min(1e-300)
            out += alpha[:, None] * p
            r -= alpha[:, None] * ap
            new = (r * r).sum(-1)
            if bool((new <= CG_TOL * (b * b).sum(-1).clamp_min(1e-300)).all()):
                break
            p = r + (new / rs.clamp_min(1e-300))[:, None] * p
            rs = new
        return out

    return lambda v: torch.cat([solve(v[i : i + block]) for i in range(0, len(v), block)])


def _top_eigenvalue(matvec, n_params: int, dtype: torch.dtype, iters: int = 30) -> float:
    v = torch.randn(1, n_params, dtype=dtype, generator=torch.Generator().manual_seed(0))
    lam = 0.0
    for _ in range(iters):
        w = matvec(v)
        lam = float(w.norm())
        v = w / max(lam, 1e-300)
    return lam


def lissa_preconditioner(
    spec: AnySpec,
    theta: Tensor,
    x: Tensor,
    damping: float = DAMPING,
    depth: int = LISSA_DEPTH,
    y: Tensor | None = None,
    rows: int | None = None,
) -> Precondition:
    matvec = ggn_product(spec, theta, x, y, rows)
    scale = 1.1 * (_top_eigenvalue(matvec, len(theta), theta.dtype) + damping)

    def solve(b: Tensor) -> Tensor:
        v = b.clone()
        for _ in range(depth):
            v = b + v - (matvec(v) + damping * v) / scale
        return v / scale

    return solve


def _layer_grads(
    spec: ClassifierSpec, theta: Tensor, x: Tensor, labels: Tensor | None
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Layer inputs with a 1 appended [n, in+1]; output gradients of the per-example loss
    [labels, n, out] per layer, for every label (``labels`` None) or the given ones; and the
    weight of each label row [labels, n, 1] (the model's probabilities, or 1)."""
    th = theta.detach().requires_grad_(True)
    label_sets = (
        [torch.full((len(x),), c) for c in range(spec.n_classes)] if labels is None else [labels]
    )
    per_label = []
    for lab in label_sets:
        z, inputs, outputs = forward_layers(spec, th, x)
        loss = torch.nn.functional.cross_entropy(z, lab, reduction="sum")
        per_label.append([g.detach() for g in torch.autograd.grad(loss, outputs)])
    ones = torch.ones(len(x), 1, dtype=x.dtype)
    acts = [torch.cat([a.detach(), ones], 1) for a in inputs]
    grads = [torch.stack([g[k] for g in per_label]) for k in range(len(spec.layers))]
    weights = (
        torch.softmax(z.detach(), -1).T[..., None]
        if labels is None
        else torch.ones(1, len(x), 1, dtype=x.dtype)
    )
    return acts, grads, weights


def ekfac_preconditioner(
    spec: AnySpec,
    theta: Tensor,
    x: Tensor,
    damping: float = DAMPING,
    labels: Tensor | None = None,
) -> Precondition:
    """``labels`` None: expectations over the model's own label distribution (the Gauss-Newton
    matrix, kronfluence's default up to its sampling); given: the empirical Fisher on them.
    (A module's EK-FAC: :func:`~interplab.methods.data_attribution.ekfac_modules.module_ekfac_preconditioner`.)"""
    if isinstance(spec, ModuleSpec):
        raise ConfigError("a module's EK-FAC needs its labels and batch size: use ekfac_modules")
    if not isinstance(spec, ClassifierSpec):  # a network of its own: EK-FAC over its affine maps
        return map_ekfac_preconditioner(spec, theta, x, damping, labels)
    acts, grads, w = _layer_grads(spec, theta, x, labels)
    n = len(x)
    blocks = []
    for a, g in zip(acts, grads):
        qa = torch.linalg.eigh(a.T @ a / n)[1]
        qs = torch.linalg.eigh(torch.einsum("cno,cnp->op", g * w, g) / n)[1]
        ga, aa = g @ qs, a @ qa  # rotated output gradients [c, n, out] and inputs [n, in+1]
        lam = torch.einsum("cno,ni->oi", (ga**2) * w, aa**2) / n  # E[(Q_S^T g a^T Q_A)^2]
        blocks.append((qs, qa, 1.0 / (lam + spec.weight_decay + damping)))

    def apply(v: Tensor) -> Tensor:
        out, start = [], 0
        for (o, i), (qs, qa, inv) in zip(spec.layers, blocks):
            m = v[:, start : start + o * (i + 1)].reshape(len(v), o, i + 1)
            rot = qs.T @ m @ qa
            out.append((qs @ (rot * inv) @ qa.T).reshape(len(v), -1))
            start += o * (i + 1)
        return torch.cat(out, 1)

    return apply
