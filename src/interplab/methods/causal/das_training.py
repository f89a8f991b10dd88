"""Distributed alignment search (DAS, Geiger et al. 2023): learn a k-dimensional subspace of a
site where interchange interventions realise a high-level variable.

Given (base, source) input pairs and the high-level model's counterfactual labels (what the
output should be when the variable takes the source's value), DAS learns orthonormal columns
Q [d, k] so that ``h_base + (h_source - h_base) Q Q^T`` at the site makes the model output those
labels. It is scored by IIA on held-out pairs and, where the true subspace B is known (compiled
variables), by the principal angles between span(Q) and span(B).

    result = das(model, site, base, source, labels, k=4, positions=(1, 2, 3))
    overlap = subspace_overlap(result.basis, true_basis)

As a method that proposes a hypothesis without the truth, :func:`das_alignment` searches every
residual site for every computed variable of the high-level program (k from the program, the
site by held-out IIA on its own pairs); :func:`random_alignment` is its random baseline.

Shapes: b = batch, p = pos, d = the site's last axis, k = subspace size, n = scored positions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from interplab.core.interventions import Replace
from interplab.core.sites import Site
from interplab.errors import ShapeError
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class DASResult(Result):
    """A learned alignment. ``basis``: [d, k] orthonormal columns; ``iia``: held-out
    interchange-intervention accuracy (sequence-level exact match over scored positions);
    ``train_iia``; ``n_train``/``n_test`` pairs; ``cost``: model passes (each training step
    one forward and one backward over a batch of pairs)."""

    site: Site
    basis: Tensor
    iia: float
    train_iia: float
    n_train: int
    n_test: int


class _Rotation(nn.Module):
    def __init__(self, d: int, k: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        # the parametrization completes a non-square matrix with random columns drawn from the
        # global generator: seed it here so a run depends on ``seed`` alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lin = nn.Linear(d, k, bias=False)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(k, d, generator=gen) / d**0.5)
            self.lin = nn.utils.parametrizations.orthogonal(lin)

    @property
    def basis(self) -> Tensor:  # [d, k]
        weight = self.lin.weight  # the orthogonal parametrisation computes it on access
        assert isinstance(weight, Tensor)
        return weight.T


def swap_fn(source: Tensor, basis: Tensor, positions: Sequence[int] | None = None):
    """fn(h) = h + (source - h) Q Q^T on ``positions`` (all if None); for ``Replace``."""

    def fn(h: Tensor) -> Tensor:
        delta = ((source - h) @ basis) @ basis.T
        if positions is not None:
            mask = torch.zeros(h.shape[1], 1, dtype=h.dtype)
            mask[list(positions)] = 1.0
            delta = delta * mask
        return h + delta

    return fn


def _run(
    model: Any,
    site: Site,
    base: Tensor,
    source_act: Tensor,
    basis: Tensor,
    positions: Sequence[int] | None,
    grad: bool,
) -> Tensor:
    return model.run_with(
        base, [Replace(site, fn=swap_fn(source_act, basis, positions))], grad=grad
    )


def _seq_acc(logits: Tensor, labels: Tensor, out_positions: Sequence[int]) -> float:
    pred = logits[:, list(out_positions)].argmax(-1)
    return float((pred == labels).all(-1).float().mean())


@register(
    "causal",
    "das",
    kind="method",
    cost_unit="passes",
    metric="counterfactual_accuracy_interchange",
    needs_gradients=True,
)
def das(
    model: Any,
    site: Site,
    base: Tensor,
    source: Tensor,
    labels: Tensor,
    *,
    k: int,
    positions: Sequence[int] | None = None,
    out_positions: Sequence[int] | None = None,
    steps: int = 300,
    lr: float = 1e-2,
    batch: int = 128,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> DASResult:
    """Learn a k-dim subspace at ``site`` realising a variable.

    Args:
        model: a HookedModel (its parameters are not trained).
        base, source: input tokens [b, p] (pairs row by row).
        labels: int64 [b, n] class ids the output should take under the interchange, at
            ``out_positions`` (default: positions 1..p-1).
        positions: positions of the site to intervene on (default all).
        test_fraction: share of pairs held out for the reported IIA.
    """
    if base.shape != source.shape or labels.shape[0] != base.shape[0]:
        raise ShapeError(
            f"das needs base/source of one shape and labels per pair; got base "
            f"{tuple(base.shape)}, source {tuple(source.shape)}, labels "
            f"{tuple(labels.shape)}"
        )
    start = time.perf_counter()
    out_positions = (
        tuple(out_positions) if out_positions is not None else tuple(range(1, base.shape[1]))
    )
    _, cache = model.run_with_cache(source, [site])
    src_act = cache[site]
    _, base_cache = model.run_with_cache(base[:1], [site])
    d = base_cache[site].shape[-1]
    n_test = max(1, int(base.shape[0] * test_fraction))
    n_train = base.shape[0] - n_test
    rot = _Rotation(d, k, seed)
    opt = torch.optim.Adam(rot.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in getattr(model, "module", model).parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            idx = torch.randint(0, n_train, (min(batch, n_train),), generator=gen)
            logits = _run(model, site, base[idx], src_act[idx], rot.basis, positions, grad=True)
            out = logits[:, list(out_positions)]
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), labels[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
    basis = rot.basis.detach().clone()
    with torch.no_grad():
        tr = slice(0, n_train)
        te = slice(n_train, base.shape[0])
        train_iia = _seq_acc(
            _run(model, site, base[tr], src_act[tr], basis, positions, False),
            labels[tr],
            out_positions,
        )
        iia = _seq_acc(
            _run(model, site, base[te], src_act[te], basis, positions, False),
            labels[te],
            out_positions,
        )
    return DASResult(
        site,
        basis,
        iia,
        train_iia,
        n_train,
        n_test,
        cost=Cost(forward=steps + 4, backward=steps),
        seconds=time.perf_counter() - start,
    )


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles (radians, ascending) between span(a) and span(b); a [d, k1], b [d, k2]."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    s = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.arccos(s).float()


def subspace_overlap(learned: Tensor, true: Tensor) -> float:
    """Mean squared cosine of the principal angles between span(learned) and span(true):
    1 = the smaller subspace lies inside the other, 0 = orthogonal. A random k-dim subspace of
    R^d scores about max(k1, k2)/d."""
    return float(torch.cos(principal_angles(learned, true)).pow(2).mean())


def active_subspace(acts: Tensor, tol: float = 1e-4) -> Tensor:
    """[d, m] orthonormal directions along which ``acts`` [n, d] vary (centred SVD, relative
    tolerance ``tol``). Directions outside it are constant on the data, so an interchange along
    them is a no-op and DAS cannot be scored on them."""
    centred = acts.double() - acts.double().mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    keep = s > tol * s.max().clamp_min(1e-12)
    return vh[keep].T.float()


def overlap_within(learned: Tensor, true: Tensor, active: Tensor) -> float:
    """:func:`subspace_overlap` after projecting both onto the ``active`` [d, m] subspace."""
    proj = active @ active.T
    return subspace_overlap(proj @ learned, proj @ true)


# ------------------------------------------------------------- alignment search (a method)
#: pairs DAS trains and selects on per (variable, site); a quarter is held out for selection
SEARCH_PAIRS = 256
SEARCH_STEPS = 60
SEARCH_LR = 5e-2
SEARCH_BATCH = 64


@dataclass(frozen=True)
class VariableChoice:
    """Where :func:`das_alignment` put one variable and why.

    ``site``: the chosen residual site; ``k``: subspace size (distinct values of the variable
    on the pool, minus one); ``heldout_iia``: site -> IIA on DAS's own held-out pairs (the
    selection criterion); ``n_train``/``n_test``: DAS's own pairs (never the scoring pairs)."""

    variable: str
    site: Site
    k: int
    heldout_iia: dict[str, float]
    n_train: int
    n_test: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": str(self.site),
            "k": self.k,
            "heldout_iia": dict(self.heldout_iia),
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def residual_sites(cfg: Any) -> tuple[Site, ...]:
    """The residual stream at every depth: L0.resid_pre, then each layer's resid_mid and
    resid_post (for attention-only layers resid_post only), in forward order."""
    from interplab.core.sites import Component

    out = [Site(Component.RESID_PRE, 0)]
    for layer in range(cfg.n_layers):
        if not getattr(cfg, "attn_only", False):
            out.append(Site(Component.RESID_MID, layer))
        out.append(Site(Component.RESID_POST, layer))
    return tuple(out)


def searchable_variables(program: Any, inputs: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Variable -> subspace size k for every computed SOp of the high-level ``program`` (not the
    tokens or indices inputs) whose value varies over ``inputs``: k = the number of distinct
    defined per-position values it takes there, minus one (at least 1). Reads the high-level
    program only, never the model or its ground truth."""
    from interplab.compile import rasp
    from interplab.methods.causal.program import run_program, variables

    runs = [run_program(program, xs) for xs in inputs]
    out = {}
    for label, expr in variables(program).items():
        if isinstance(expr, (rasp.TokensType, rasp.IndicesType)):
            continue
        if len({repr(r[label]) for r in runs}) < 2:
            continue  # constant on the pool: an interchange of it changes nothing
        distinct = {repr(v) for r in runs for v in r[label] if v is not None}
        out[label] = max(1, len(distinct) - 1)
    return out


def _search_pairs(n_inputs: int, n: int, seed: int, exclude: set) -> list[tuple[int, int]]:
    """``n`` (base, source) index pairs from a stream of their own, skipping ``exclude``."""
    import random

    rng = random.Random(f"das-search/{seed}")
    out: list[tuple[int, int]] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        pair = (rng.randrange(n_inputs), rng.randrange(n_inputs))
        if pair not in exclude:
            out.append(pair)
    return out


def _labels(program: Any, variable: str, inputs: Sequence, pairs: list, index: dict):
    """(labels [b, n] class ids, output positions): the high-level output of each base with
    ``variable`` from its source, at the positions where every pair's output is a class."""
    from interplab.methods.causal.program import output, run_program

    outs = [
        output(program, inputs[b], {variable: run_program(program, inputs[s])[variable]})
        for b, s in pairs
    ]
    keep = [i for i, o in enumerate(outs) if isinstance(o, list)]  # drop undefined programs
    outs = [outs[i] for i in keep]
    length = len(inputs[0])
    positions = [j for j in range(length) if all(repr(o[j]) in index for o in outs)]
    labels = torch.tensor([[index[repr(o[j])] for j in positions] for o in outs], dtype=torch.long)
    return labels, positions, [pairs[i] for i in keep]


def das_alignment(
    model: Any,
    program: Any,
    inputs: Sequence[Sequence[Any]],
    encode: Any,
    output_values: Sequence[Any],
    *,
    exclude: Sequence[tuple] = (),
    seed: int = 0,
    n_pairs: int = SEARCH_PAIRS,
    steps: int = SEARCH_STEPS,
    lr: float = SEARCH_LR,
    batch: int = SEARCH_BATCH,
) -> dict[str, tuple[VariableChoice, DASResult]]:
    """DAS as a method that proposes a hypothesis: for each variable of
    :func:`searchable_variables`, train DAS (k from that rule) at every site of
    :func:`residual_sites` on its own pairs, and keep the site with the highest held-out IIA
    (ties: the later site — at an early site an interchange of every position can carry the
    whole input, which realises the *output* variable trivially; the later site is where the
    rest of the network reads the value).

    Truth-free: the pairs come from a stream of their own that skips ``exclude`` (the
    (base, source) pairs the hypothesis will be scored on, as tuples); sites, k and the
    choice read only the model's activations and the high-level program.

    Returns variable -> (VariableChoice, the chosen DASResult)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and fair to other work
    try:
        return _das_search(
            model, program, inputs, encode, output_values, exclude, seed, n_pairs, steps, lr, batch
        )
    finally:
        torch.set_num_threads(threads)


def _das_search(
    model, program, inputs, encode, output_values, exclude, seed, n_pairs, steps, lr, batch
) -> dict[str, tuple[VariableChoice, DASResult]]:
    index = {repr(v): i for i, v in enumerate(output_values)}
    keys = {repr(tuple(x)): i for i, x in enumerate(inputs)}
    skip = {
        (keys[repr(tuple(b))], keys[repr(tuple(s))])
        for b, s in exclude
        if repr(tuple(b)) in keys and repr(tuple(s)) in keys
    }
    pairs = _search_pairs(len(inputs), n_pairs, seed, skip)
    out = {}
    for var, k in sorted(searchable_variables(program, inputs).items()):
        labels, positions, used = _labels(program, var, inputs, pairs, index)
        if not positions or not used:
            continue
        base = encode([inputs[b] for b, _ in used])
        source = encode([inputs[s] for _, s in used])
        results = {}
        for site in residual_sites(model.cfg):
            results[site] = das(
                model,
                site,
                base,
                source,
                labels,
                k=k,
                out_positions=[j + 1 for j in positions],
                steps=steps,
                lr=lr,
                batch=batch,
                seed=seed,
            )
        best = max(results.values(), key=lambda r: r.iia).iia
        site = [s for s, r in results.items() if r.iia == best][-1]
        choice = VariableChoice(
            var,
            site,
            k,
            {str(s): r.iia for s, r in results.items()},
            results[site].n_train,
            results[site].n_test,
        )
        out[var] = (choice, results[site])
    return out


def random_alignment(
    model: Any, program: Any, inputs: Sequence[Sequence[Any]], *, seed: int = 0
) -> dict[str, tuple[Site, Tensor]]:
    """The random baseline of :func:`das_alignment`'s search space: each variable of
    :func:`searchable_variables` at a uniformly drawn site of :func:`residual_sites`, in a
    uniformly drawn k-dimensional subspace (same k rule). Variable -> (site, basis [d, k])."""
    gen = torch.Generator().manual_seed(seed)
    sites = residual_sites(model.cfg)
    out = {}
    for var, k in sorted(searchable_variables(program, inputs).items()):
        site = sites[int(torch.randint(len(sites), (1,), generator=gen))]
        d = model.cfg.d_model  # every residual site is d_model wide
        q, _ = torch.linalg.qr(torch.randn(d, min(k, d), generator=gen))
        out[var] = (site, q)
    return out
