"""Per-example gradients and curvature products of a small classifier, streamed in batches.

Two gradients per example, both flat vectors in the classifier's parameter layout
(:mod:`interplab.models.classifiers`):

    measurement gradient  d margin(x, y) / d theta   (the output whose change is attributed)
    loss gradient         d CE(x, y) / d theta       (how a training example pushes theta)

Only ``batch_size`` examples' gradients are ever held at once: :func:`loss_grad_batches` yields
them, and every method reduces a batch to scores before taking the next one.

The loss is cross-entropy, or a user's module's own per-example loss
(:class:`~interplab.models.module_classifier.ModuleSpec` ``.loss``; :func:`example_losses`). The
exact Hessian and the Gauss-Newton products accept ``rows``: the training set is then taken
``rows`` examples at a time (the sums are the same; only one chunk's graph is alive at once),
which the module path uses so that memory does not grow with the training set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from interplab.models.classifiers import AnySpec, logits, margin, objective
from interplab.models.module_classifier import ModuleSpec

Tensor = torch.Tensor


def example_losses(spec: AnySpec | ModuleSpec, z: Tensor, y: Tensor) -> Tensor:
    """Per-example training loss [n] of logits z [n, K]: cross-entropy, or a module's own."""
    if isinstance(spec, ModuleSpec):
        return spec.per_example_loss(z, y)
    return torch.nn.functional.cross_entropy(z, y, reduction="none")


def custom_loss(spec: AnySpec | ModuleSpec) -> bool:
    """Whether the spec trains on a loss other than cross-entropy."""
    return isinstance(spec, ModuleSpec) and spec.loss is not None


def _chunks(n: int, rows: int | None) -> list[slice]:
    step = n if rows is None else max(1, rows)
    return [slice(s, min(s + step, n)) for s in range(0, n, step)] or [slice(0, 0)]


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over batches (disabled unless ``enabled``); close it when done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="batch")


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
    """d loss / d theta for each (x, y): [n, params] (cross-entropy unless the spec has its own)."""

    def f(th: Tensor, xi: Tensor, yi: Tensor) -> Tensor:
        z = logits(spec, th, xi[None])
        if custom_loss(spec):
            return example_losses(spec, z, yi[None])[0]
        return torch.nn.functional.cross_entropy(z, yi[None])

    return _per_example(f, theta, x, y)


def measurement_grad_batches(
    spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor, batch_size: int
) -> Tensor:
    """:func:`measurement_grads` of all (x, y), computed ``batch_size`` rows at a time."""
    if len(x) <= batch_size:
        return measurement_grads(spec, theta, x, y)
    return torch.cat(
        [
            measurement_grads(spec, theta, x[s : s + batch_size], y[s : s + batch_size])
            for s in range(0, len(x), batch_size)
        ]
    )


def loss_grad_batches(
    spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor, batch_size: int
) -> Iterator[tuple[slice, Tensor]]:
    """(rows, loss gradients [rows, params]) for consecutive batches of the training set."""
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        yield rows, loss_grads(spec, theta, x[rows], y[rows])


def hessian(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor, rows: int | None = None) -> Tensor:
    """The exact Hessian of the training objective (mean loss + weight decay) [params, params],
    summed over chunks of ``rows`` examples (all at once when None)."""
    # reverse over reverse: forward-mode AD would load torch's deprecated jit decompositions
    if not custom_loss(spec) and rows is None:

        def loss(th: Tensor) -> Tensor:
            return objective(spec, th, x, y)

        return torch.func.jacrev(torch.func.grad(loss))(theta)
    total = None
    for sl in _chunks(len(x), rows):
        xc, yc = x[sl], y[sl]

        def part(th: Tensor, xc=xc, yc=yc) -> Tensor:
            return example_losses(spec, logits(spec, th, xc), yc).sum() / len(x)

        h = torch.func.jacrev(torch.func.grad(part))(theta)
        total = h if total is None else total + h
    assert total is not None
    return total + spec.weight_decay * torch.eye(len(theta), dtype=theta.dtype)


def _output_hessian(spec: AnySpec, z: Tensor, y: Tensor) -> Tensor | None:
    """d^2 loss_i / d z_i^2 [n, K, K] for a custom loss; None for cross-entropy (closed form)."""
    if not custom_loss(spec):
        return None

    def one(zi: Tensor, yi: Tensor) -> Tensor:
        return example_losses(spec, zi[None], yi[None])[0]

    return torch.func.vmap(torch.func.jacrev(torch.func.grad(one)))(z, y)


def _chunk_product(spec: AnySpec, theta: Tensor, x: Tensor, y: Tensor | None):
    """u -> J^T H J u over one chunk (summed, not averaged), as a function of V [k, params]."""

    def fn(th: Tensor) -> Tensor:
        return logits(spec, th, x)

    # vjp returns (output, vjp function) here (a third value only with has_aux=True)
    z, vjp = torch.func.vjp(fn, theta)[:2]
    z = z.detach()
    h = _output_hessian(spec, z, y) if y is not None else None
    p = torch.softmax(z, -1)
    # J v as the vjp of the (linear) map u -> J^T u: reverse mode only (see hessian)
    jvp = torch.func.vjp(lambda u: vjp(u)[0], torch.zeros_like(z))[1]

    def one(v: Tensor) -> Tensor:
        jv = jvp(v)[0]
        if h is None:
            hjv = p * jv - p * (p * jv).sum(-1, keepdim=True)
        else:
            hjv = torch.einsum("nkl,nl->nk", h, jv)
        return vjp(hjv)[0]

    return torch.func.vmap(one)


def ggn_product(
    spec: AnySpec,
    theta: Tensor,
    x: Tensor,
    y: Tensor | None = None,
    rows: int | None = None,
) -> Callable[[Tensor], Tensor]:
    """V [k, params] -> (G + weight_decay I) V for the Gauss-Newton matrix G of the mean loss
    (G = mean_i J_i^T H_i J_i, J_i = d logits_i / d theta, H_i the loss's Hessian in the logits:
    diag p_i - p_i p_i^T for cross-entropy, positive semi-definite, equal to the Hessian for
    logistic regression; for a custom loss H_i by autograd, which needs the labels ``y``).
    ``rows``: the training set is taken in chunks, their graphs rebuilt for every product
    (memory of one chunk); None: one graph for all of it, kept."""
    if custom_loss(spec) and y is None:
        raise ValueError("the Gauss-Newton product of a custom loss needs the labels")
    n = len(x)
    if rows is None or rows >= n:
        whole = _chunk_product(spec, theta, x, y)
        return lambda v: whole(v) / n + spec.weight_decay * v

    def product(v: Tensor) -> Tensor:
        total = spec.weight_decay * v
        for sl in _chunks(n, rows):
            total = total + _chunk_product(spec, theta, x[sl], None if y is None else y[sl])(v) / n
        return total

    return product
