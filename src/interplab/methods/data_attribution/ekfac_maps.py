"""EK-FAC over the affine maps of a sequence model (the transformer organism).

A model whose spec offers ``linear_maps(theta, x)`` (:mod:`interplab.models.transformer_classifier`)
names every affine map ``out[n, p] = W a[n, p] (+ b)`` that is applied at each position p of an
example n, with the index of ``[W | b]`` in the flat parameter vector. For each map, as in EK-FAC
for transformers (Grosse et al. 2023, "Studying large language model generalization with
influence functions"):

    A = (1/n) sum_{n,p} a a^T          (input covariance, a 1 appended for the bias)
    S = (1/n) sum_{n,p} E_y[g g^T]      (output-gradient covariance; y ~ the model's own label
                                        distribution at the last position, summed exactly)
    eigenbases Q_A, Q_S; corrected eigenvalues
    lam = (1/n) sum_n E_y[(Q_S^T G_n Q_A)^2],  G_n = sum_p g_{n,p} a_{n,p}^T (the example's gradient)

and (G + weight_decay + damping)^-1 is applied block by block in the eigenbasis. Blocks of
different maps are independent (block-diagonal), as in the MLP version
(:func:`~interplab.methods.data_attribution.influence.ekfac_preconditioner`). The maps must
cover every parameter exactly once (checked), so nothing is silently left out.
"""

from __future__ import annotations

import torch

from interplab.errors import ConfigError
from interplab.methods.data_attribution.scoring import Precondition

Tensor = torch.Tensor


def _with_one(a: Tensor) -> Tensor:
    return torch.cat([a, torch.ones(*a.shape[:-1], 1, dtype=a.dtype)], -1)


def map_ekfac_preconditioner(
    spec, theta: Tensor, x: Tensor, damping: float, labels: Tensor | None = None
) -> Precondition:
    """``labels`` None: expectation over the model's own label distribution (Gauss-Newton);
    given: the empirical Fisher on them."""
    th = theta.detach().requires_grad_(True)
    logits, maps = spec.linear_maps(th, x)
    covered = torch.cat([m.index.flatten() for m in maps]).sort().values
    if not torch.equal(covered, torch.arange(len(theta))):
        raise ConfigError(
            f"the linear maps of {type(spec).__name__} do not cover each parameter once"
        )
    n, n_cls = len(x), logits.shape[1]
    label_sets = [torch.full((n,), c) for c in range(n_cls)] if labels is None else [labels.long()]
    weights = (
        torch.softmax(logits.detach(), -1).T if labels is None else torch.ones(1, n, dtype=x.dtype)
    )
    grads = []  # per label: output gradients per map [n, p, out]
    for k, lab in enumerate(label_sets):
        loss = torch.nn.functional.cross_entropy(logits, lab, reduction="sum")
        outs = torch.autograd.grad(
            loss, [m.output for m in maps], retain_graph=k < len(label_sets) - 1
        )
        grads.append([g.reshape(*g.shape[:2], -1) for g in outs])  # [n, p, out]
    blocks = []
    for j, m in enumerate(maps):
        a = _with_one(m.inputs) if m.bias else m.inputs  # [n, p, in]
        qa = torch.linalg.eigh(torch.einsum("npi,npk->ik", a, a) / n)[1]
        s = sum(torch.einsum("n,npo,npq->oq", w, g[j], g[j]) for w, g in zip(weights, grads)) / n
        qs = torch.linalg.eigh(s)[1]
        ar = a @ qa
        lam = torch.zeros(qs.shape[0], qa.shape[0], dtype=a.dtype)
        for w, g in zip(weights, grads):
            rotated = torch.einsum("npo,npi->noi", g[j] @ qs, ar)  # Q_S^T G_n Q_A
            lam += torch.einsum("n,noi->oi", w, rotated**2) / n
        blocks.append((m.index, qs, qa, 1.0 / (lam + spec.weight_decay + damping)))

    def apply(v: Tensor) -> Tensor:
        out = torch.empty_like(v)
        for index, qs, qa, inv in blocks:
            rot = qs.T @ v[:, index] @ qa
            out[:, index] = qs @ (rot * inv) @ qa.T
        return out

    return apply
