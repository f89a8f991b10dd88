"""Causal-variable localisation on a real language model (MIB's second track; Mueller et al.
2025, "MIB: A Mechanistic Interpretability Benchmark"): which featuriser of a site's activation
finds the subspace that carries a high-level variable?

Task: IOI prompts from :func:`interplab.tasks.ioi.ioi_task` ("When Mary and John went to the
store, John gave a drink to" -> " Mary"). Variables (each a high-level model of the output):

    io_position   whether the indirect object is the first or the second name. The source has
                  the other name order (ABBA vs BABA) and two other names; setting the base's
                  variable to the source's value makes the base name at the source's IO position
                  the answer, i.e. the base's *subject*. Expected: base S; rival: base IO.
    io_token      the indirect object's identity. The source has the same name order and two
                  other names; the expected answer is the source's IO; rivals: both base names.

Site: the residual stream entering block ``L`` (``L{L}.resid_pre``) at the final prompt
position. Only that position is patched, so every earlier position of the base run is unchanged:
layers ``L..`` are re-run for the final position alone against the base's cached keys and values
(:func:`final_position_logits`, exact up to float error; checked against a full forward in the
tests). That makes DAS's gradient steps cheap on CPU.

Featurisers, each giving k coordinates at the site whose base values are replaced by the
source's (``h' = h_b + (h_s - h_b) Q Q^T`` for an orthonormal ``Q [d, k]``, or the SAE rule):

    das           Q learned on training pairs: cross-entropy of the expected name among all
                  single-token names, Adam on an unconstrained [d, k] matrix orthonormalised by QR
    pca           the top-k principal components of the site's activations on training prompts
    neurons       k standard-basis dimensions with the largest mean |h_s - h_b| on training pairs
    neurons_grad  k standard-basis dimensions with the largest mean attribution
                  ``grad_h(objective) * (h_s - h_b)`` on training pairs (a one-step stand-in for
                  MIB's learned binary masks)
    sae           a TopK SAE trained on the site's activations (training prompts + offline
                  stdlib text); the k latents with the largest mean |z_s - z_b| on training
                  pairs are swapped, the SAE's reconstruction error kept from the base:
                  ``h' = h_b + sum_{j in S} (z_s[j] - z_b[j]) W_dec[j]``
    sae_grad      the same SAE, latents chosen by mean attribution as for neurons_grad
    random        a seeded random orthonormal Q (control)

plus ``full`` (the whole residual patched: the ceiling of any featuriser at the site) and the
no-intervention rate (how often the base already gives the expected answer). IIA: share of
held-out pairs (a different seed) where ``logit(expected) > max logit(rivals)``, with a 95%
Wilson interval. Pairs are kept only where the unpatched model answers IOI right on both base
and source (as MIB does); the counts kept and drawn are reported.

    result = localise(load("smollm2-135m"), QUICK)
    result.as_dict()       # JSON-ready: settings, per variable / layer / featuriser / k
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from interplab.core.sites import Component, Site
from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.eval.stats import Estimate, wilson
from interplab.methods import registry
from interplab.methods.base import Cost, Result
from interplab.methods.registry import Kind, register
from interplab.models.pretrained.llama import PartialRun, apply_rotary, rotary
from interplab.tasks.ioi import NAMES, single_token_names
from interplab.tasks.ioi import TEMPLATES as IOI_TEMPLATES

Tensor = torch.Tensor

VARIABLES = ("io_position", "io_token")
FEATURISERS = ("das", "pca", "neurons", "neurons_grad", "sae", "sae_grad", "random")
#: featurisers that are controls (never the answer to "which featuriser localises best")
CONTROLS = ("random",)
#: the whole-vector patch: the ceiling of every featuriser at a site
CEILING = "full"
#: no intervention: how often the base already gives the expected answer
NONE = "none"
#: seeds of the source pools are offset by this from the base seed
SOURCE_SEED_OFFSET = 7919


@dataclass(frozen=True)
class LocalisationConfig:
    """Settings of one study.

    Attributes:
        layers: residual sites ``L{l}.resid_pre`` (final position) studied.
        ks: subspace sizes (the same for every featuriser).
        variables: which of :data:`VARIABLES`.
        featurisers: which of :data:`FEATURISERS`.
        n_train: base prompts drawn for training pairs (before the correctness filter).
        n_test: base prompts drawn for held-out pairs (another seed).
        seed: seed of the training prompts; held-out prompts use ``seed + 1``.
        das_steps, das_lr: DAS optimisation (full-batch Adam steps, learning rate).
        sae_latents, sae_k, sae_steps, sae_batch: the TopK SAE per layer.
        text_windows, text_ctx: offline stdlib-docstring windows added to the SAE's data.
        batch: prompts per model forward.
    """

    layers: tuple[int, ...] = (16, 21, 23, 25, 28)
    ks: tuple[int, ...] = (1, 4, 16)
    variables: tuple[str, ...] = VARIABLES
    featurisers: tuple[str, ...] = FEATURISERS
    n_train: int = 96
    n_test: int = 160
    seed: int = 0
    das_steps: int = 30
    das_lr: float = 0.05
    sae_latents: int = 1152
    sae_k: int = 16
    sae_steps: int = 400
    sae_batch: int = 256
    text_windows: int = 24
    text_ctx: int = 64
    batch: int = 32

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_train", "n_test", "das_steps", "sae_latents", "sae_k", "batch"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"{name} must be a positive int, got {v!r}")
        if not self.layers or any(not isinstance(x, int) or x < 0 for x in self.layers):
            problems.append(f"layers must be non-negative ints, got {self.layers!r}")
        if not self.ks or any(not isinstance(x, int) or x < 0 for x in self.ks):
            problems.append(f"ks must be non-negative ints, got {self.ks!r}")
        for v in self.variables:
            if v not in VARIABLES:
                problems.append(f"unknown variable {v!r} (known: {', '.join(VARIABLES)})")
        for f in self.featurisers:
            if f not in FEATURISERS:
                problems.append(f"unknown featuriser {f!r} (known: {', '.join(FEATURISERS)})")
        if problems:
            raise ConfigError("invalid LocalisationConfig: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the bench's full configuration (≈10 min on 2 CPU cores) and a quick one (≈1 min)
FULL = LocalisationConfig()
QUICK = LocalisationConfig(
    layers=(22,),
    ks=(1, 4),
    variables=("io_position",),
    n_train=48,
    n_test=64,
    das_steps=20,
    sae_latents=576,
    sae_steps=150,
    text_windows=4,
)
CONFIGS = {"full": FULL, "quick": QUICK}


# ----------------------------------------------------------------------------- pairs
@dataclass(frozen=True)
class PairSet:
    """Counterfactual (base, source) prompt pairs for one variable.

    ``base``/``source``: right-padded tokens [n, p]; ``base_pos``/``source_pos``: each prompt's
    final position [n]; ``expected``: the token the intervention should make the answer [n];
    ``rivals``: the tokens it must beat [n, r]; ``base_io``/``base_s``/``source_io``/
    ``source_s``: the IO and subject tokens [n] (for the correctness filter)."""

    variable: str
    base: Tensor
    base_pos: Tensor
    source: Tensor
    source_pos: Tensor
    expected: Tensor
    rivals: Tensor
    base_io: Tensor
    base_s: Tensor
    source_io: Tensor
    source_s: Tensor

    def __len__(self) -> int:
        return int(self.base.shape[0])

    def subset(self, keep: Tensor) -> PairSet:
        """The pairs where ``keep`` [n] (bool) is true."""
        fields: dict[str, Any] = {
            k: v[keep] if isinstance(v, Tensor) else v for k, v in self.__dict__.items()
        }
        return PairSet(**fields)


def _prompt(tokenizer: Any, rng: random.Random, names: list[str], tpl: str, io_first: bool):
    """(tokens, IO token, S token, set of names) of one IOI prompt."""
    io, s = rng.sample(names, 2)
    first, second = (io, s) if io_first else (s, io)
    ids = tokenizer.encode(tpl.format(A=first, B=second, S=s))
    return ids, tokenizer.encode(io)[0], tokenizer.encode(s)[0], {io, s}


def ioi_pairs(
    tokenizer: Any, n: int, seed: int, variables: Sequence[str] = VARIABLES
) -> dict[str, PairSet]:
    """``n`` counterfactual pairs per variable (see the module docstring), every variable on
    the same ``n`` base prompts: IOI prompts built as :func:`interplab.tasks.ioi.ioi_task`
    builds them (its templates and names), each base paired with a source of the same template
    and two names the base does not use, whose name order is the other one (io_position) or
    the same (io_token)."""
    for variable in variables:
        if variable not in VARIABLES:
            raise unknown_name("variable", variable, VARIABLES)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"the number of pairs must be a positive int, got {n!r}")
    names = single_token_names(tokenizer, NAMES)
    if len(names) < 4:
        raise ConfigError(f"need at least 4 single-token names, the tokenizer has {len(names)}")
    rng = random.Random(seed)
    bases = []
    for i in range(n):
        tpl = IOI_TEMPLATES[i % len(IOI_TEMPLATES)]
        io_first = rng.random() < 0.5
        bases.append((tpl, io_first, *_prompt(tokenizer, rng, names, tpl, io_first)))
    out = {}
    for variable in variables:
        vrng = random.Random(seed * 1_000_003 + SOURCE_SEED_OFFSET + VARIABLES.index(variable))
        rows = []
        for tpl, io_first, b_ids, b_io, b_s, used in bases:
            others = [x for x in names if x not in used]
            src_first = (not io_first) if variable == "io_position" else io_first
            s_ids, s_io, s_s, _ = _prompt(tokenizer, vrng, others, tpl, src_first)
            if variable == "io_position":
                expected, rivals = b_s, [b_io]
            else:
                expected, rivals = s_io, [b_io, b_s]
            rows.append((b_ids, s_ids, expected, rivals, b_io, b_s, s_io, s_s))
        out[variable] = _pair_set(variable, rows)
    return out


def _pair_set(variable: str, rows: list[tuple]) -> PairSet:
    width = max(max(len(r[0]), len(r[1])) for r in rows)

    def pad(ids: list[int]) -> list[int]:
        return ids + [0] * (width - len(ids))

    t = torch.tensor
    return PairSet(
        variable,
        t([pad(r[0]) for r in rows]),
        t([len(r[0]) - 1 for r in rows]),
        t([pad(r[1]) for r in rows]),
        t([len(r[1]) - 1 for r in rows]),
        t([r[2] for r in rows]),
        t([r[3] for r in rows]),
        t([r[4] for r in rows]),
        t([r[5] for r in rows]),
        t([r[6] for r in rows]),
        t([r[7] for r in rows]),
    )


# ----------------------------------------------------------------------------- model runs
@dataclass
class RunCache:
    """What a study needs from the model's runs on a set of prompts.

    ``final[l]``: the residual entering block l at each prompt's final position [n, d];
    ``keys[l]``/``values[l]``: block l's keys (after rotary) and values per key/value head
    [n, p, g, dh] (only for layers >= the lowest studied); ``tokens_all[l]``: the residual at
    every non-padding position but the first [m, d] (SAE data); ``right``: whether the model
    prefers IO over S at the final position [n]."""

    final: dict[int, Tensor]
    keys: dict[int, Tensor]
    values: dict[int, Tensor]
    all_positions: dict[int, Tensor]
    right: Tensor


def _llama(model: Any) -> Any:
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "blocks") or not hasattr(inner.cfg, "n_kv_heads"):
        raise ConfigError(
            f"variable localisation needs a hooked Llama (e.g. smollm2-135m); got "
            f"{type(model).__name__}"
        )
    return inner


@torch.no_grad()
def collect(
    model: Any,
    tokens: Tensor,
    pos: Tensor,
    io: Tensor,
    s: Tensor,
    site_layers: Sequence[int],
    kv_from: int | None,
    batch: int = 32,
) -> RunCache:
    """Run ``model`` over ``tokens`` [n, p] in batches and keep what :class:`RunCache` holds:
    site residuals for ``site_layers`` and, when ``kv_from`` is not None, keys and values of
    every block from ``kv_from`` on."""
    llama = _llama(model)
    cfg = llama.cfg
    rep = cfg.n_heads // cfg.n_kv_heads
    kv_layers = range(kv_from, cfg.n_layers) if kv_from is not None else range(0)
    sites = [Site(Component.RESID_PRE, layer) for layer in site_layers]
    sites += [Site(Component.ATTN_K, layer) for layer in kv_layers]
    sites += [Site(Component.ATTN_V, layer) for layer in kv_layers]
    final: dict[int, list[Tensor]] = {layer: [] for layer in site_layers}
    every: dict[int, list[Tensor]] = {layer: [] for layer in site_layers}
    keys: dict[int, list[Tensor]] = {layer: [] for layer in kv_layers}
    values: dict[int, list[Tensor]] = {layer: [] for layer in kv_layers}
    right = []
    for start in range(0, tokens.shape[0], batch):
        sl = slice(start, start + batch)
        toks, p = tokens[sl], pos[sl]
        # from the embedding, unembedding only the final positions (the logits we read)
        run = PartialRun(llama.embed.W_E[toks], 0, p)
        logits, cache = model.run_with_cache(run, sites)
        rows = torch.arange(toks.shape[0])
        last = logits[:, 0]
        right.append(last[rows, io[sl]] > last[rows, s[sl]])
        inside = torch.arange(toks.shape[1])[None, :] <= p[:, None]
        inside[:, 0] = False  # the first position is an attention sink of outsized norm
        for layer in site_layers:
            act = cache[Site(Component.RESID_PRE, layer)].float()
            final[layer].append(act[rows, p])
            every[layer].append(act[inside])
        for layer in kv_layers:
            keys[layer].append(cache[Site(Component.ATTN_K, layer)][:, :, ::rep].float())
            values[layer].append(cache[Site(Component.ATTN_V, layer)][:, :, ::rep].float())
    cat = torch.cat
    return RunCache(
        {k: cat(v) for k, v in final.items()},
        {k: cat(v) for k, v in keys.items()},
        {k: cat(v) for k, v in values.items()},
        {k: cat(v) for k, v in every.items()},
        cat(right),
    )


def final_position_logits(
    model: Any,
    layer: int,
    resid: Tensor,
    keys: Mapping[int, Tensor],
    values: Mapping[int, Tensor],
    pos: Tensor,
    candidates: Tensor,
) -> Tensor:
    """Logits [n, c] of ``candidates`` [c] at each prompt's final position ``pos`` [n] when the
    residual entering block ``layer`` there is ``resid`` [n, d] and every earlier position is
    the cached run's (``keys[l]``/``values[l]`` [n, p, g, dh] for blocks l >= ``layer``).

    Exact for a causal model: what the final position reads from earlier positions does not
    depend on it. Differentiable in ``resid``."""
    llama = _llama(model)
    cfg = llama.cfg
    n = resid.shape[0]
    h, g, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    rep = h // g
    if layer < 0 or layer > cfg.n_layers:
        raise ConfigError(f"layer must lie in [0, {cfg.n_layers}], got {layer}")
    if layer < cfg.n_layers:
        width = keys[layer].shape[1]
        cos, sin = rotary(width, dh, cfg.rope_base, resid.device)
        cos, sin = cos[pos], sin[pos]  # [n, dh]
        earlier = torch.arange(width, device=resid.device)[None, :] < pos[:, None]
        mask = ~earlier[:, None, None, :]  # [n, 1, 1, p]
    x = resid
    for index in range(layer, cfg.n_layers):
        block = llama.blocks[index]
        attn = block.attn
        xn = block.ln1(x)
        q = apply_rotary((xn @ attn.W_Q).view(n, h, dh), cos, sin).view(n, g, rep, dh)
        k = apply_rotary((xn @ attn.W_K).view(n, g, dh), cos, sin)
        v = (xn @ attn.W_V).view(n, g, dh)
        scores = torch.einsum("ngre,npge->ngrp", q, keys[index]) / math.sqrt(dh)
        scores = scores.masked_fill(mask, float("-inf"))
        own = (q * k[:, :, None, :]).sum(-1, keepdim=True) / math.sqrt(dh)
        weights = torch.cat([scores, own], dim=-1).softmax(dim=-1)
        z = torch.einsum("ngrp,npge->ngre", weights[..., :-1], values[index])
        z = z + weights[..., -1:] * v[:, :, None, :]
        x = x + z.reshape(n, h * dh) @ attn.W_O
        x = x + block.mlp(block.ln2(x))
    return llama.ln_final(x) @ llama.W_U[:, candidates]


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Parameters of ``module`` need no gradient inside (restored after): DAS differentiates
    through the model with respect to its own rotation only."""
    before = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in before:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


# ----------------------------------------------------------------------------- featurisers
#: patch(h_base [n, d], h_source [n, d]) -> patched [n, d]
Patch = Callable[[Tensor, Tensor], Tensor]


def subspace_patch(basis: Tensor) -> Patch:
    """Swap the coordinates of orthonormal columns ``basis`` [d, k]: h_b + (h_s - h_b) Q Q^T."""
    if basis.ndim != 2:
        raise ShapeError(f"a basis must be [d, k], got {tuple(basis.shape)}")

    def patch(hb: Tensor, hs: Tensor) -> Tensor:
        return hb + ((hs - hb) @ basis) @ basis.T

    return patch


def sae_patch(sae: Any, latents: Tensor, scale: float) -> Patch:
    """Swap SAE latents ``latents`` [k] (indices) of ``h / scale``; the base keeps its
    reconstruction error and every other latent: h_b + scale * (z_s - z_b)[S] W_dec[S]."""
    dec = sae.W_dec.detach()[latents]  # [k, d]

    def patch(hb: Tensor, hs: Tensor) -> Tensor:
        zb = sae.encode(hb / scale)[:, latents]
        zs = sae.encode(hs / scale)[:, latents]
        return hb + scale * (zs - zb) @ dec

    return patch


def orthonormal(matrix: Tensor) -> Tensor:
    """Orthonormal columns spanning ``matrix`` [d, k] (QR; k = 0 gives [d, 0])."""
    if matrix.shape[1] == 0:
        return matrix
    q, r = torch.linalg.qr(matrix)
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)


def random_basis(d: int, k: int, seed: int) -> Tensor:
    """A seeded random orthonormal [d, k] (the control featuriser)."""
    gen = torch.Generator().manual_seed(seed)
    return orthonormal(torch.randn(d, k, generator=gen))


def neuron_basis(d: int, dims: Tensor) -> Tensor:
    """Standard-basis columns ``dims`` [k] of R^d, as [d, k]."""
    return torch.eye(d)[:, dims]


def pca_basis(acts: Tensor, k: int) -> Tensor:
    """The top-k principal directions [d, k] of activations [m, d]."""
    centred = acts - acts.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    if k > vh.shape[0]:
        raise ConfigError(
            f"PCA of {acts.shape[0]} activations has {vh.shape[0]} components < k={k}"
        )
    return vh[:k].T.contiguous()


def top_indices(scores: Tensor, k: int) -> Tensor:
    """Indices of the k largest ``scores`` (ties: the lower index)."""
    order = sorted(range(scores.numel()), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(order[:k], dtype=torch.long)


# ----------------------------------------------------------------------------- scoring
@dataclass
class Split:
    """One split's pairs and model state at the site, ready to patch."""

    pairs: PairSet
    base: RunCache
    source_final: dict[int, Tensor]
    candidates: Tensor  # [c] candidate name tokens
    target: Tensor  # [n] index of the expected token among candidates
    rival_mask: Tensor  # [n, c] rivals


def _targets(pairs: PairSet, candidates: Tensor) -> tuple[Tensor, Tensor]:
    where = {int(t): i for i, t in enumerate(candidates)}
    target = torch.tensor([where[int(t)] for t in pairs.expected])
    rivals = torch.zeros(len(pairs), len(candidates), dtype=torch.bool)
    for i, row in enumerate(pairs.rivals.tolist()):
        for t in row:
            rivals[i, where[t]] = True
    return target, rivals


def patched_logits(model: Any, split: Split, layer: int, patch: Patch | None) -> Tensor:
    """Candidate logits [n, c] with ``patch`` applied at the site (None: no intervention)."""
    hb = split.base.final[layer]
    h = hb if patch is None else patch(hb, split.source_final[layer])
    return final_position_logits(
        model,
        layer,
        h,
        split.base.keys,
        split.base.values,
        split.pairs.base_pos,
        split.candidates,
    )


def successes(logits: Tensor, split: Split) -> Tensor:
    """[n] bool: the expected name beats every rival."""
    exp = logits.gather(1, split.target[:, None])[:, 0]
    rival = logits.masked_fill(~split.rival_mask, float("-inf")).max(1).values
    return exp > rival


def iia(model: Any, split: Split, layer: int, patch: Patch | None) -> Estimate:
    """Interchange-intervention accuracy with a 95% Wilson interval."""
    with torch.no_grad():
        ok = successes(patched_logits(model, split, layer, patch), split)
    return wilson(int(ok.sum()), int(ok.numel()))


def _objective_grad(model: Any, split: Split, layer: int) -> Tensor:
    """d(log p(expected among candidates)) / d h_base at the site, per pair [n, d]."""
    hb = split.base.final[layer].clone().requires_grad_(True)
    with frozen(_llama(model)), torch.enable_grad():
        logits = final_position_logits(
            model,
            layer,
            hb,
            split.base.keys,
            split.base.values,
            split.pairs.base_pos,
            split.candidates,
        )
        F.cross_entropy(logits, split.target, reduction="sum").neg().backward()
    assert hb.grad is not None
    return hb.grad.detach()


def train_das(
    model: Any, split: Split, layer: int, k: int, *, steps: int, lr: float, seed: int
) -> Tensor:
    """DAS: orthonormal Q [d, k] maximising the expected name's probability (among the
    candidate names) after the swap, full-batch Adam on the training pairs."""
    d = split.base.final[layer].shape[1]
    gen = torch.Generator().manual_seed(seed)
    free = torch.nn.Parameter(torch.randn(d, k, generator=gen))
    opt = torch.optim.Adam([free], lr=lr)
    hb, hs = split.base.final[layer], split.source_final[layer]
    with frozen(_llama(model)), torch.enable_grad():
        for _ in range(steps):
            q = orthonormal(free)
            logits = final_position_logits(
                model,
                layer,
                hb + ((hs - hb) @ q) @ q.T,
                split.base.keys,
                split.base.values,
                split.pairs.base_pos,
                split.candidates,
            )
            loss = F.cross_entropy(logits, split.target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return orthonormal(free.detach())


def train_sae(acts: Tensor, config: LocalisationConfig, seed: int) -> tuple[Any, float]:
    """(a TopK SAE on ``acts`` [m, d] / scale, scale): the scale makes the mean squared norm d."""
    from interplab.methods.dictionaries import DictionaryConfig, TensorSource, train_dictionary

    scale = float(acts.pow(2).sum(1).mean().sqrt()) / math.sqrt(acts.shape[1])
    cfg = DictionaryConfig(
        d_in=acts.shape[1],
        d_latent=config.sae_latents,
        activation="topk",
        k=config.sae_k,
        lr=1e-3,
        batch_size=config.sae_batch,
        steps=config.sae_steps,
        log_every=max(1, config.sae_steps),
        seed=seed,
    )
    trained = train_dictionary(TensorSource(acts / scale, seed=seed), cfg)
    sae = trained.dictionary
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae, scale


# ----------------------------------------------------------------------------- results
@dataclass
class Cell:
    """IIA of one (variable, layer, featuriser, k) on held-out pairs; ``train`` on training."""

    variable: str
    layer: int
    featuriser: str
    k: int
    test: Estimate
    train: Estimate
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "layer": self.layer,
            "featuriser": self.featuriser,
            "k": self.k,
            "iia": self.test.as_dict(),
            "train_iia": self.train.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class LocalisationResult:
    """Every cell of a study plus its settings, counts and timings."""

    config: LocalisationConfig
    cells: list[Cell] = field(default_factory=list)
    #: variable -> {"n_train", "n_test", "drawn_train", "drawn_test", "base_right_test", ...}
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    #: variable -> layer -> no-intervention rate on held-out pairs
    no_intervention: dict[str, dict[int, Estimate]] = field(default_factory=dict)
    #: layer -> SAE training summary (variance explained on the held-out share)
    sae: dict[int, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def cell(self, variable: str, layer: int, featuriser: str, k: int) -> Cell:
        for c in self.cells:
            if (c.variable, c.layer, c.featuriser, c.k) == (variable, layer, featuriser, k):
                return c
        raise KeyError((variable, layer, featuriser, k))

    def verdict(self, variable: str) -> dict[str, Any]:
        """MIB's finding on one variable of this study (see :func:`verdict`)."""
        return verdict(self, variable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "cells": [c.as_dict() for c in self.cells],
            "counts": self.counts,
            "no_intervention": {
                v: {str(layer): e.as_dict() for layer, e in by.items()}
                for v, by in self.no_intervention.items()
            },
            "sae": {str(layer): s for layer, s in self.sae.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "verdict": {v: verdict(self, v) for v in self.config.variables},
        }


def _featuriser_cells(result: LocalisationResult, variable: str) -> list[Cell]:
    """The featuriser cells of ``variable`` with k > 0 (not the full-vector ceiling)."""
    return [
        c for c in result.cells if c.variable == variable and c.featuriser != CEILING and c.k > 0
    ]


def verdict(result: LocalisationResult, variable: str) -> dict[str, Any]:
    """MIB's finding, tested on one variable of this study.

    * ``das_best``: DAS's mean held-out IIA over every studied (layer, k > 0) cell exceeds the
      runner-up's (``best_other``; every featuriser averaged over the same cells) by more than
      ``das_margin``, the mean 95%-interval half-width of their cells (``das_lead``: the
      difference); ``das_wins_cells``: in how many cells DAS is at least every other
      non-control.
    * ``sae_no_better_than_neurons``: the best SAE variant's mean IIA does not exceed the best
      neuron variant's by more than ``margin``, the mean 95%-interval half-width of their
      cells; ``sae_above_neurons_cells``: cells where the best SAE variant's interval lies
      wholly above the best neuron variant's.
    * ``reproduced``: both hold.
    """
    cells = _featuriser_cells(result, variable)
    means: dict[str, float] = {}
    for f in result.config.featurisers:
        vals = [c.test.value for c in cells if c.featuriser == f]
        if vals:
            means[f] = sum(vals) / len(vals)
    methods = {f: m for f, m in means.items() if f not in CONTROLS}
    out: dict[str, Any] = {"mean_iia": {f: round(m, 4) for f, m in means.items()}}
    keys = sorted({(c.layer, c.k) for c in cells})
    grid = {(c.layer, c.k, c.featuriser): c.test for c in cells}
    if "das" in methods and len(methods) > 1:
        rivals = {f: m for f, m in methods.items() if f != "das"}
        runner = max(rivals, key=lambda f: rivals[f])
        half = [(c.test.high - c.test.low) / 2 for c in cells if c.featuriser in ("das", runner)]
        out["best_other"] = runner
        out["das_lead"] = round(methods["das"] - rivals[runner], 4)
        out["das_margin"] = round(sum(half) / len(half), 4)
        out["das_best"] = methods["das"] - rivals[runner] > sum(half) / len(half)
        wins = sum(
            1
            for layer, k in keys
            if grid[(layer, k, "das")].value
            >= max(grid[(layer, k, f)].value for f in rivals if (layer, k, f) in grid)
        )
        out["das_wins_cells"] = f"{wins}/{len(keys)}"
    sae = [f for f in ("sae", "sae_grad") if f in methods]
    neu = [f for f in ("neurons", "neurons_grad") if f in methods]
    if sae and neu:
        best_sae = max(sae, key=lambda f: methods[f])
        best_neu = max(neu, key=lambda f: methods[f])
        half = [
            (c.test.high - c.test.low) / 2 for c in cells if c.featuriser in (best_sae, best_neu)
        ]
        margin = sum(half) / len(half)
        out.update(
            best_sae=best_sae,
            best_neurons=best_neu,
            sae_mean=round(methods[best_sae], 4),
            neurons_mean=round(methods[best_neu], 4),
            margin=round(margin, 4),
            sae_no_better_than_neurons=methods[best_sae] <= methods[best_neu] + margin,
            sae_above_neurons_cells=sum(
                1
                for layer, k in keys
                if grid[(layer, k, best_sae)].low > grid[(layer, k, best_neu)].high
            ),
        )
    if "das_best" in out and "sae_no_better_than_neurons" in out:
        out["reproduced"] = bool(out["das_best"] and out["sae_no_better_than_neurons"])
    return out


# ----------------------------------------------------------------------------- the study
def _split(
    model: Any,
    pairs: PairSet,
    config: LocalisationConfig,
    base: RunCache | None,
    candidates: Tensor,
) -> tuple[Split, RunCache, dict[str, int]]:
    """Run bases (unless given) and sources, keep pairs the model gets right on both."""
    layers = sorted(config.layers)
    kv_from = min(layers)
    if base is None:
        base = collect(
            model,
            pairs.base,
            pairs.base_pos,
            pairs.base_io,
            pairs.base_s,
            layers,
            kv_from,
            config.batch,
        )
    src = collect(
        model,
        pairs.source,
        pairs.source_pos,
        pairs.source_io,
        pairs.source_s,
        layers,
        None,
        config.batch,
    )
    keep = base.right & src.right
    kept = pairs.subset(keep)
    sub = RunCache(
        {k: v[keep] for k, v in base.final.items()},
        {k: v[keep] for k, v in base.keys.items()},
        {k: v[keep] for k, v in base.values.items()},
        base.all_positions,
        base.right[keep],
    )
    target, rivals = _targets(kept, candidates)
    split = Split(kept, sub, {k: v[keep] for k, v in src.final.items()}, candidates, target, rivals)
    counts = {
        "drawn": len(pairs),
        "base_right": int(base.right.sum()),
        "source_right": int(src.right.sum()),
        "kept": int(keep.sum()),
    }
    return split, base, counts


def _text_activations(model: Any, layers: Sequence[int], config: LocalisationConfig):
    """Site residuals [m, d] per layer on offline stdlib-docstring windows (first token out)."""
    from interplab.methods.dictionaries import corpus

    if config.text_windows < 2:
        return {layer: torch.zeros(0, _llama(model).cfg.d_model) for layer in layers}
    tok = model.tokenizer
    wins = corpus.token_windows(
        tok,
        corpus.stdlib_docstrings(max_chars=config.text_windows * config.text_ctx * 8),
        config.text_ctx,
        sep=getattr(tok, "eos_id", None),
        max_windows=config.text_windows,
    )
    sites = [Site(Component.RESID_PRE, layer) for layer in layers]
    out: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for chunk in wins.split(8):
            _, cache = model.run_with_cache(chunk, sites)
            for layer, site in zip(layers, sites):
                act = cache[site][:, 1:].float()
                out[layer].append(act.reshape(-1, act.shape[-1]))
    return {layer: torch.cat(v) for layer, v in out.items()}


def localise(
    model: Any,
    config: LocalisationConfig = FULL,
    progress: Callable[[str], None] | None = None,
) -> LocalisationResult:
    """Run the study (see the module docstring) on a hooked Llama with a tokenizer."""
    t0 = time.perf_counter()
    llama = _llama(model)
    if max(config.layers) >= llama.cfg.n_layers:
        raise ConfigError(
            f"layers must be < {llama.cfg.n_layers} (the model's blocks), got {config.layers}"
        )
    d = llama.cfg.d_model
    if max(config.ks) > d:
        raise ConfigError(f"k must be at most the site's width {d}, got {max(config.ks)}")
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise ConfigError("variable localisation needs the model's tokenizer (model.tokenizer)")
    say = progress or (lambda _msg: None)
    layers = sorted(config.layers)
    candidates = torch.tensor(sorted({tok.encode(n)[0] for n in single_token_names(tok)}))
    result = LocalisationResult(config)

    splits: dict[str, dict[str, Split]] = {}
    base_runs: dict[str, RunCache] = {}
    with torch.no_grad():
        for part, n, seed in (
            ("train", config.n_train, config.seed),
            ("test", config.n_test, config.seed + 1),
        ):
            drawn = ioi_pairs(tok, n, seed, config.variables)
            for variable, pairs in drawn.items():  # one base run serves every variable
                split, base_runs[part], counts = _split(
                    model, pairs, config, base_runs.get(part), candidates
                )
                if len(split.pairs) == 0:
                    raise ConfigError(
                        f"{variable}: the model answers none of the {n} {part} pairs right"
                    )
                splits.setdefault(variable, {})[part] = split
                stats = result.counts.setdefault(variable, {})
                stats.update({f"{part}_{k}": v for k, v in counts.items()})
    result.seconds["model_runs"] = time.perf_counter() - t0
    say(f"model runs {result.seconds['model_runs']:.1f}s")

    need_sae = any(f.startswith("sae") for f in config.featurisers)
    text = _text_activations(model, layers, config) if need_sae else {}
    result.seconds["text_runs"] = time.perf_counter() - t0 - result.seconds["model_runs"]

    for layer in layers:
        t_layer = time.perf_counter()
        train_acts = torch.cat(
            [splits[v]["train"].base.final[layer] for v in config.variables]
            + [splits[v]["train"].source_final[layer] for v in config.variables]
        )
        sae = scale = None
        if need_sae:
            t = time.perf_counter()
            acts = torch.cat([base_runs["train"].all_positions[layer], text[layer]])
            sae, scale = train_sae(acts, config, config.seed + layer)
            with torch.no_grad():
                held = torch.cat([s["test"].base.final[layer] for s in splits.values()])
                rec = sae(held / scale) * scale
                ve = 1 - float((held - rec).pow(2).sum() / (held - held.mean(0)).pow(2).sum())
            result.sae[layer] = {
                "n_activations": int(acts.shape[0]),
                "variance_explained_final_position_test": round(ve, 4),
                "seconds": round(time.perf_counter() - t, 3),
            }
        for variable in config.variables:
            train, test = splits[variable]["train"], splits[variable]["test"]
            none = iia(model, test, layer, None)
            result.no_intervention.setdefault(variable, {})[layer] = none
            t = time.perf_counter()
            context = layer_context(model, train, layer, config, train_acts, sae, scale)
            names = (CEILING, *config.featurisers)
            for k in config.ks:
                for name in names:
                    if name == CEILING and k != config.ks[0]:
                        continue  # one whole-residual cell per layer
                    t = time.perf_counter()
                    kk = d if name == CEILING else k
                    proposal = registry.get(FAMILY, name).fn(
                        model, train, layer, kk, config, context
                    )
                    result.cells.append(
                        Cell(
                            variable,
                            layer,
                            name,
                            kk,
                            iia(model, test, layer, proposal.patch),
                            iia(model, train, layer, proposal.patch),
                            time.perf_counter() - t,
                        )
                    )
        result.seconds[f"layer_{layer}"] = time.perf_counter() - t_layer
        say(f"layer {layer}: {result.seconds[f'layer_{layer}']:.1f}s")
    for variable, parts in splits.items():
        result.counts[variable]["n_train"] = len(parts["train"].pairs)
        result.counts[variable]["n_test"] = len(parts["test"].pairs)
    result.seconds["total"] = time.perf_counter() - t0
    return result


@dataclass
class LayerContext:
    """What the featurisers of one (variable, layer) read, computed once: the site width ``d``,
    mean |h_s - h_b| per dimension (``diff``), the objective's gradient at the base per pair
    (``grad``, for the attribution-chosen variants), the training activations' principal
    directions (``pca``), the layer's SAE with its input ``scale`` and per-latent mean |z_s -
    z_b| (``z_diff``) and attribution (``z_attr``)."""

    d: int
    diff: Tensor
    grad: Tensor | None = None
    pca: Tensor | None = None
    sae: Any = None
    scale: float | None = None
    z_diff: Tensor | None = None
    z_attr: Tensor | None = None


def layer_context(
    model: Any,
    train: Split,
    layer: int,
    config: LocalisationConfig,
    train_acts: Tensor,
    sae: Any = None,
    scale: float | None = None,
) -> LayerContext:
    """The :class:`LayerContext` of ``layer`` on the training pairs ``train``."""
    hb, hs = train.base.final[layer], train.source_final[layer]
    ctx = LayerContext(hb.shape[1], (hs - hb).abs().mean(0), sae=sae, scale=scale)
    if "neurons_grad" in config.featurisers or "sae_grad" in config.featurisers:
        ctx.grad = _objective_grad(model, train, layer)
    if "pca" in config.featurisers:
        ctx.pca = pca_basis(train_acts, max(config.ks))
    if sae is not None and scale is not None:
        with torch.no_grad():
            zb, zs = sae.encode(hb / scale), sae.encode(hs / scale)
        ctx.z_diff = (zs - zb).abs().mean(0)
        if ctx.grad is not None:
            along = ctx.grad @ (sae.W_dec.detach().T * scale)  # [n, latents]
            ctx.z_attr = (along * (zs - zb)).mean(0)
    return ctx


@dataclass(frozen=True, eq=False)
class Featurised(Result):
    """A featuriser's proposal at one site: ``patch(h_base, h_source)`` (None: no change)."""

    patch: Patch | None = None


#: the method-registry family of the featurisers (a family registered at import time)
FAMILY = "variables_real"
_Featuriser = Callable[..., Featurised]


def _featuriser(name: str, kind: Kind, cost_unit: str, grads: bool = False):
    def deco(fn: Callable[..., Patch | None]) -> _Featuriser:
        def run(
            model: Any,
            train: Split,
            layer: int,
            k: int,
            config: LocalisationConfig,
            context: LayerContext,
        ) -> Featurised:
            start = time.perf_counter()
            patch = fn(model, train, layer, k, config, context)
            steps = config.das_steps if name == "das" and k > 0 else int(grads)
            return Featurised(
                patch=patch,
                cost=Cost(forward=steps, backward=steps),
                seconds=time.perf_counter() - start,
            )

        run.__doc__ = fn.__doc__
        run.__name__ = run.__qualname__ = f"featurise_{name}"
        register(FAMILY, name, kind=kind, cost_unit=cost_unit, metric="iia", needs_gradients=grads)(
            run
        )
        return run

    return deco


def _seed(config: LocalisationConfig, layer: int, k: int) -> int:
    return config.seed * 10_007 + layer * 101 + k


@_featuriser("das", "method", "passes", grads=True)
def _das(model, train, layer, k, config, ctx):
    """DAS: a learned orthonormal k-dim rotation of the site (trained on the training pairs)."""
    if k == 0:
        return subspace_patch(torch.zeros(ctx.d, 0))
    seed = _seed(config, layer, k)
    basis = train_das(model, train, layer, k, steps=config.das_steps, lr=config.das_lr, seed=seed)
    return subspace_patch(basis)


@_featuriser("pca", "method", "none")
def _pca(model, train, layer, k, config, ctx):
    """PCA: the top-k principal directions of the site's activations on training prompts."""
    return subspace_patch(ctx.pca[:, :k])


@_featuriser("neurons", "method", "none")
def _neurons(model, train, layer, k, config, ctx):
    """Neurons: the k site dimensions with the largest mean |h_source - h_base| (training)."""
    return subspace_patch(neuron_basis(ctx.d, top_indices(ctx.diff, k)))


@_featuriser("neurons_grad", "method", "passes", grads=True)
def _neurons_grad(model, train, layer, k, config, ctx):
    """Neurons: the k site dimensions with the largest mean attribution grad * (h_s - h_b)."""
    attr = (ctx.grad * (train.source_final[layer] - train.base.final[layer])).mean(0)
    return subspace_patch(neuron_basis(ctx.d, top_indices(attr, k)))


@_featuriser("sae", "method", "none")
def _sae(model, train, layer, k, config, ctx):
    """SAE latents: the k latents with the largest mean |z_source - z_base| (training)."""
    return sae_patch(ctx.sae, top_indices(ctx.z_diff, k), ctx.scale)


@_featuriser("sae_grad", "method", "passes", grads=True)
def _sae_grad(model, train, layer, k, config, ctx):
    """SAE latents: the k latents with the largest mean attribution (training)."""
    return sae_patch(ctx.sae, top_indices(ctx.z_attr, k), ctx.scale)


@_featuriser("random", "baseline", "none")
def _random(model, train, layer, k, config, ctx):
    """Control: k seeded random orthonormal directions of the site."""
    return subspace_patch(random_basis(ctx.d, k, _seed(config, layer, k)))


@_featuriser(NONE, "baseline", "none")
def _none(model, train, layer, k, config, ctx):
    """Reference: no intervention (how often the base already gives the expected answer)."""
    return None


@_featuriser(CEILING, "baseline", "none")
def _full(model, train, layer, k, config, ctx):
    """Reference: the whole residual patched (what the site carries)."""
    return subspace_patch(torch.eye(ctx.d))


def rows(result: LocalisationResult) -> list[dict[str, Any]]:
    """Flat rows: variable, layer, featuriser, k, iia, low, high, n (held-out)."""
    return [
        {
            "variable": c.variable,
            "layer": c.layer,
            "featuriser": c.featuriser,
            "k": c.k,
            "iia": c.test.value,
            "low": c.test.low,
            "high": c.test.high,
            "n": c.test.n,
        }
        for c in result.cells
    ]
