"""Per-example gradients and curvature products of a small classifier, streamed in batches.

Two gradients per example, both flat vectors in the classifier's parameter layout
(:mod:`interplab.models.classifiers`):

    measurement gradient  d margin(x, y) / d theta   (the output whose change is attributed)
    loss gradient         d CE(x, y) / d theta       (how a training example pushes theta)

Only ``batch_size`` examples' gradients are ever held at once: :func:`loss_grad_batches` yields
them, and every method reduces a batch to scores before taking the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from interplab.models.classifiers import AnySpec, logits, margin, objective

Tensor = torch.Tensor


def _per_example(
    fn: Callable[[Tensor, Tensor, Tensor], Tensor], theta: Tensor, x: Tensor, y: Tensor
) -> Tensor:
    return torch.func.vmap(torch.func.grad(fn), in_dims=(None, 0, 0))(theta, x, y)


def measurement_grads(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """d margin / d theta for each (x, y): [n, params]."""

    def f(th: Tensor, xi: Tensor, yi: Tensor) -> Tensor:
        return margin(logits(spec, th, xi[None]), yi[None])[0]

    return _per_example(f, theta, x, y)


def loss_grads(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """d cross-entropy / d theta for each (x, y): [n, params]."""

    def f(th: Tensor, xi: Tensor, yi: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(logits(spec, th, xi[None]), yi[None])

    return _per_example(f, theta, x, y)


def loss_grad_batches(
    spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor, batch_size: int
) -> Iterator[tuple[slice, Tensor]]:
    """(rows, loss gradients [rows, params]) for consecutive batches of the training set."""
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        yield rows, loss_grads(spec, theta, x[rows], y[rows])


def hessian(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The exact Hessian of the training objective (mean CE + weight decay) [params, params]."""
    # reverse over reverse: forward-mode AD would load torch's deprecated jit decompositions

    def loss(th: Tensor) -> Tensor:
        return objective(spec, th, x, y)

    return torch.func.jacrev(torch.func.grad(loss))(theta)


def ggn_product(spec: AnySpec, theta: Tensor, x: Tensor) -> Callable[[Tensor], Tensor]:
    """V [k, params] -> (G + weight_decay I) V for the Gauss-Newton matrix G of the mean
    cross-entropy (G = mean_i J_i^T (diag p_i - p_i p_i^T) J_i, J_i = d logits_i / d theta;
    positive semi-definite, equal to the Hessian for logistic regression)."""

    def fn(th: Tensor) -> Tensor:
        return logits(spec, th, x)

    # vjp returns (output, vjp function) here (a third value only with has_aux=True)
    z, vjp = torch.func.vjp(fn, theta)[:2]
    p = torch.softmax(z.detach(), -1)
    # J v as the vjp of the (linear) map u -> J^T u: reverse mode only (see hessian)
    jvp = torch.func.vjp(lambda u: vjp(u)[0], torch.zeros_like(z))[1]

    def one(v: Tensor) -> Tensor:
        jv = jvp(v)[0]
        hjv = p * jv - p * (p * jv).sum(-1, keepdim=True)
        return vjp(hjv)[0] / len(x) + spec.weight_decay * v

    return torch.func.vmap(one)
