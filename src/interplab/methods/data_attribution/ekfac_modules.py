"""EK-FAC over the Linear and Conv2d layers of a user's module, streamed in batches.

For a :class:`~interplab.models.module_classifier.ModuleSpec`, each covered layer's weight and
bias form one ``[out, in (+1)]`` block of the Gauss-Newton (Fisher) matrix, approximated as in
EK-FAC (George et al. 2018; Grosse et al. 2023) with the convolution treatment of KFC (Grosse &
Martens 2016):

    a      the layer's input at each position p: a Linear layer's input row (positions: every
           leading index after the batch, e.g. sequence positions; a layer called several
           times adds positions), a Conv2d layer's unfolded input patch ``[C_in * kh * kw]``
           at each output pixel; a 1 appended when the layer has a bias
    g      the gradient of the example's loss with respect to the layer's output at p
    A = mean_n sum_p a a^T,   S = mean_n sum_p E_y[g g^T]      (eigenbases Q_A, Q_S)
    lam = mean_n E_y[(Q_S^T G_n Q_A)^2],   G_n = sum_p g_{n,p} a_{n,p}^T  (the example's gradient)

and (lam + weight_decay + damping)^-1 is applied in the eigenbasis, block by block (blocks of
different layers independent). Labels: y ~ the model's own predictive distribution (the
Gauss-Newton matrix for cross-entropy), summed exactly over all K classes weighted by their
probabilities when K ≤ :data:`EXPECTED_LABELS_MAX`, else one label per example sampled from it
(seeded); ``fisher="empirical"`` uses the true labels instead (what the reference libraries'
empirical-Fisher mode computes).

Every other trainable parameter (norm scales, embeddings, grouped or non-zero-padded
convolutions, a parameter shared by two layers, a layer whose input is not batch-first) gets a
diagonal block: the same expectation of the squared per-example gradient, plus weight decay and
damping. So every parameter is preconditioned exactly once, and nothing is left out.

Two passes over the training set, ``batch_size`` examples at a time: the factors, then (after
the eigendecompositions) the corrected eigenvalues and the diagonal. Memory: the factors
``[in+1, in+1]`` and ``[out, out]`` per layer, and one batch's activations and rotated per-example
gradients (the latter in sub-chunks of at most :data:`LAM_MAX` entries).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.errors import ConfigError
from interplab.methods.data_attribution.gradients import example_losses, progress_bar
from interplab.methods.data_attribution.scoring import Precondition
from interplab.models.module_classifier import ModuleSpec

Tensor = torch.Tensor
#: above this many classes the label expectation is sampled (one label per example)
EXPECTED_LABELS_MAX = 64
#: the most entries of rotated per-example gradients [rows, out, in] formed at once
LAM_MAX = 2**24
FISHERS = ("model", "empirical")


@dataclass
class _Layer:
    module: torch.nn.Module
    index: Tensor  # [out, in (+1)]: positions of [W | b] in theta
    bias: bool

    @property
    def conv(self) -> bool:
        return isinstance(self.module, torch.nn.Conv2d)


def _conv_padding(m: torch.nn.Conv2d) -> tuple[int, int] | None:
    if m.padding_mode != "zeros" or m.groups != 1:
        return None
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return (0, 0)
        span = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        return None if any(s % 2 for s in span) else (span[0] // 2, span[1] // 2)
    return (int(m.padding[0]), int(m.padding[1]))


def _patches(m: torch.nn.Module, inp: Tensor, n: int) -> Tensor:
    """A layer's inputs per position [n, positions, fan_in]."""
    if isinstance(m, torch.nn.Conv2d):
        pad = _conv_padding(m)
        assert pad is not None
        cols = torch.nn.functional.unfold(
            inp, m.kernel_size, dilation=m.dilation, padding=pad, stride=m.stride
        )
        return cols.transpose(1, 2)
    return inp.reshape(n, -1, inp.shape[-1])


def _out_grads(m: torch.nn.Module, g: Tensor, n: int) -> Tensor:
    """Output gradients per position [n, positions, out]."""
    if isinstance(m, torch.nn.Conv2d):
        return g.reshape(n, g.shape[1], -1).transpose(1, 2)
    return g.reshape(n, -1, g.shape[-1])


class _Capture:
    """Forward hooks recording (input, output) of each covered layer, per call."""

    def __init__(self, modules: list[torch.nn.Module]):
        self.calls: list[list[tuple[Tensor, Tensor]]] = [[] for _ in modules]
        self.modules = modules
        self.handles: list = []

    def __enter__(self) -> _Capture:
        for k, m in enumerate(self.modules):

            def hook(_m, args, out, k=k):
                self.calls[k].append((args[0].detach(), out))

            self.handles.append(m.register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


def _layers(spec: ModuleSpec, theta: Tensor, probe: Tensor) -> tuple[list[_Layer], Tensor]:
    """The covered layers and the indices of every other parameter (the diagonal)."""
    name_of = {id(p): n for n, p in spec.module.named_parameters() if p.requires_grad}
    offsets = spec.offsets()
    uses: dict[int, int] = {}
    for m in spec.module.modules():
        for p in m.parameters(recurse=False):
            uses[id(p)] = uses.get(id(p), 0) + 1
    candidates: list[_Layer] = []
    for m in spec.module.modules():
        if not isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        if isinstance(m, torch.nn.Conv2d) and _conv_padding(m) is None:
            continue
        params = [m.weight] + ([m.bias] if m.bias is not None else [])
        if any(id(p) not in name_of or uses[id(p)] > 1 for p in params):
            continue
        out = m.weight.shape[0]
        fan_in = m.weight[0].numel()
        w0 = offsets[name_of[id(m.weight)]]
        index = w0 + torch.arange(out * fan_in).view(out, fan_in)
        if m.bias is not None:
            b0 = offsets[name_of[id(m.bias)]]
            index = torch.cat([index, (b0 + torch.arange(out))[:, None]], 1)
        candidates.append(_Layer(m, index, m.bias is not None))
    # keep the layers that run, batch first, on a probe batch
    with torch.no_grad(), _Capture([c.module for c in candidates]) as cap:
        spec.logits(theta, probe)
    layers = [
        c
        for c, calls in zip(candidates, cap.calls)
        if calls
        and all(inp.ndim >= 2 and inp.shape[0] == len(probe) for inp, _ in calls)
        and all(out.shape[0] == len(probe) for _, out in calls)
    ]
    covered = torch.zeros(len(theta), dtype=torch.bool)
    for layer in layers:
        covered[layer.index.flatten()] = True
    return layers, (~covered).nonzero()[:, 0]


def _label_sets(
    z: Tensor, y: Tensor, fisher: str, gen: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    """(labels [n], weights [n]) to average the per-example statistics over."""
    n, k = z.shape
    ones = torch.ones(n, dtype=z.dtype)
    if fisher == "empirical":
        return [(y, ones)]
    p = torch.softmax(z.detach(), -1)
    if k <= EXPECTED_LABELS_MAX:
        return [(torch.full((n,), c, dtype=torch.long), p[:, c]) for c in range(k)]
    return [(torch.multinomial(p, 1, generator=gen)[:, 0], ones)]


def _batch(
    spec: ModuleSpec, theta: Tensor, layers: list[_Layer], x: Tensor, y: Tensor, fisher, gen
):
    """Per layer: inputs [n, P, fan_in(+1)]; per label set: (weights [n], grads per layer
    [n, P, out]); plus the label sets themselves."""
    th = theta.detach().requires_grad_(True)
    n = len(x)
    with _Capture([layer.module for layer in layers]) as cap:
        z = spec.logits(th, x)
    acts = []
    for layer, calls in zip(layers, cap.calls):
        a = torch.cat([_patches(layer.module, inp, n) for inp, _ in calls], 1)
        if layer.bias:
            a = torch.cat([a, torch.ones(*a.shape[:-1], 1, dtype=a.dtype)], -1)
        acts.append(a)
    outputs = [out for calls in cap.calls for _, out in calls]
    sets = _label_sets(z, y, fisher, gen)
    per_label = []
    if not outputs:  # no Linear or Conv2d layer ran: every parameter is on the diagonal
        return acts, [(w, []) for _, w in sets], sets
    for j, (lab, w) in enumerate(sets):
        loss = example_losses(spec, z, lab).sum()
        flat = torch.autograd.grad(loss, outputs, retain_graph=j < len(sets) - 1, allow_unused=True)
        grads, pos = [], 0
        for layer, calls in zip(layers, cap.calls):
            parts = [
                _out_grads(layer.module, torch.zeros_like(o) if g is None else g, n)
                for (_, o), g in zip(calls, flat[pos : pos + len(calls)])
            ]
            grads.append(torch.cat(parts, 1))
            pos += len(calls)
        per_label.append((w, grads))
    return acts, per_label, sets


def _diag_sq_grads(
    spec: ModuleSpec, theta: Tensor, idx: Tensor, x: Tensor, sets: list[tuple[Tensor, Tensor]]
) -> Tensor:
    """sum_n E_y[(d loss / d theta[idx])^2] over the batch [len(idx)]."""
    base = theta.detach()

    def f(u: Tensor, xi: Tensor, yi: Tensor) -> Tensor:
        th = base.index_put((idx,), u)
        return example_losses(spec, spec.logits(th, xi[None]), yi[None])[0]

    per_example = torch.func.vmap(torch.func.grad(f), in_dims=(None, 0, 0))
    total = torch.zeros(len(idx), dtype=theta.dtype)
    for lab, w in sets:
        g = per_example(base[idx], x, lab)
        total += (w[:, None] * g**2).sum(0)
    return total


@dataclass(frozen=True)
class Factors:
    """The fitted EK-FAC of a module: per covered layer (index [out, in(+1)] in theta, Q_S, Q_A,
    corrected eigenvalues lam [out, in(+1)]), and the diagonal block (indices, E[g^2])."""

    layers: tuple[tuple[Tensor, Tensor, Tensor, Tensor], ...]
    diag_index: Tensor
    diag: Tensor


def module_ekfac_factors(
    spec: ModuleSpec,
    theta: Tensor,
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    fisher: str = "model",
    seed: int = 0,
    progress: bool = False,
) -> Factors:
    """Fit the EK-FAC factors described in the module docstring (two passes over x)."""
    if fisher not in FISHERS:
        raise ConfigError(f"fisher must be one of {FISHERS}, got {fisher!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
    layers, diag_idx = _layers(spec, theta, x[: min(2, len(x))])
    n = len(x)
    dtype = theta.dtype
    starts = range(0, n, batch_size)
    bar = progress_bar(2 * len(starts), "ekfac factors", progress)
    try:
        # pass 1: Kronecker factors
        a_cov = [torch.zeros(lay.index.shape[1], lay.index.shape[1], dtype=dtype) for lay in layers]
        s_cov = [torch.zeros(lay.index.shape[0], lay.index.shape[0], dtype=dtype) for lay in layers]
        gen = torch.Generator().manual_seed(seed)
        for s in starts:
            acts, per_label, _ = _batch(
                spec, theta, layers, x[s : s + batch_size], y[s : s + batch_size], fisher, gen
            )
            for k, a in enumerate(acts):
                a_cov[k] += torch.einsum("npi,npj->ij", a, a)
                for w, grads in per_label:
                    s_cov[k] += torch.einsum("n,npo,npq->oq", w, grads[k], grads[k])
            bar.update(1)
        qa = [torch.linalg.eigh(c / n)[1] for c in a_cov]
        qs = [torch.linalg.eigh(c / n)[1] for c in s_cov]
        # pass 2: corrected eigenvalues and the diagonal of the other parameters
        lam = [torch.zeros(lay.index.shape, dtype=dtype) for lay in layers]
        diag = torch.zeros(len(diag_idx), dtype=dtype)
        gen = torch.Generator().manual_seed(seed)  # the same sampled labels as pass 1
        for s in starts:
            xb, yb = x[s : s + batch_size], y[s : s + batch_size]
            acts, per_label, sets = _batch(spec, theta, layers, xb, yb, fisher, gen)
            for k, a in enumerate(acts):
                ar = a @ qa[k]
                out, fan = lam[k].shape
                step = max(1, LAM_MAX // (out * fan))
                for w, grads in per_label:
                    gr = grads[k] @ qs[k]
                    for r in range(0, len(xb), step):
                        rot = torch.einsum("npo,npi->noi", gr[r : r + step], ar[r : r + step])
                        lam[k] += torch.einsum("n,noi->oi", w[r : r + step], rot**2)
            if len(diag_idx):
                diag += _diag_sq_grads(spec, theta, diag_idx, xb, sets)
            bar.update(1)
    finally:
        bar.close()
    return Factors(
        tuple((layer.index, q_s, q_a, lm / n) for layer, q_s, q_a, lm in zip(layers, qs, qa, lam)),
        diag_idx,
        diag / n,
    )


def module_ekfac_preconditioner(
    spec: ModuleSpec,
    theta: Tensor,
    x: Tensor,
    y: Tensor,
    *,
    damping: float,
    batch_size: int,
    fisher: str = "model",
    seed: int = 0,
    progress: bool = False,
) -> Precondition:
    """(G + weight_decay + damping)^-1 with G the EK-FAC approximation described above."""
    f = module_ekfac_factors(
        spec, theta, x, y, batch_size=batch_size, fisher=fisher, seed=seed, progress=progress
    )
    shift = spec.weight_decay + damping
    blocks = [(index, q_s, q_a, 1.0 / (lam + shift)) for index, q_s, q_a, lam in f.layers]
    inv_diag = 1.0 / (f.diag + shift)
    diag_idx = f.diag_index

    def apply(v: Tensor) -> Tensor:
        out = torch.empty_like(v)
        for index, q_s, q_a, inv in blocks:
            rot = q_s.T @ v[:, index] @ q_a
            out[:, index] = q_s @ (rot * inv) @ q_a.T
        if len(diag_idx):
            out[:, diag_idx] = v[:, diag_idx] * inv_diag
        return out

    return apply


def covered_layers(spec: ModuleSpec, theta: Tensor, probe: Tensor) -> list[str]:
    """The names of the layers EK-FAC factors (the rest of the parameters: diagonal)."""
    layers, _ = _layers(spec, theta, probe)
    names = {id(m): n for n, m in spec.module.named_modules()}
    return [names[id(layer.module)] for layer in layers]
