"""Trained organisms: small transformers trained here on tasks whose circuit is known.

    prevtoken  1-layer attention-only, 4 heads, outputs the previous token at every position.
               Circuit (the first half of induction, Olsson et al. 2022): previous-token heads
               attend by position (Q/K from the positional embedding) and copy the token
               (V from the token embedding) to the logits.
    modadd     1-layer transformer on [a, b, =] -> (a + b) mod 13. Circuit (Nanda et al. 2023):
               heads at "=" attend to a and b (Q/K from positions) and move their token
               embeddings (V) to the MLP, which computes the sum; the MLP and those heads
               write the logits.
    induction  2-layer attention-only, 4 heads per layer, on distinct random tokens in which a
               random-length segment recurs at a random distance (so neither the absolute nor
               the relative position of the repeat predicts it). Circuit (Olsson et al. 2022):
               layer-0 previous-token heads attend by position (Q/K from the positional
               embedding) and copy the previous token (V from the token embedding); layer-1
               induction heads read that on K (K-composition), the current token on Q, and the
               attended token on V, and write the logits. The other layer-0 heads are
               distractors outside the circuit.

Which heads play the roles is read from the trained model's attention patterns (not from any
discovery method). Ground truth differs by ablation: positional embeddings (and the "=" token)
are identical on clean and corrupted inputs, so edges from them matter only under zero ablation;
``Organism.ground_truth[ablation]`` has the right one and tests verify each by ablation.

Models are trained once, seeded, and cached as safetensors under
``interplab._config.cache_dir() / "organisms"``; a cache whose weights fail their SHA-256 check
(or cannot be read) is retrained with a warning (:func:`cached_model`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from interplab._config import cache_dir
from interplab.core.circuit import ABLATIONS, Circuit, Edge, Node
from interplab.core.sites import Component, Site
from interplab.errors import WeightsError, unknown_name
from interplab.methods.circuits.task import CircuitTask
from interplab.models.config import TransformerConfig
from interplab.models.io import load_model, save_model
from interplab.models.tasks import induction_repeat_batch, modadd_all
from interplab.models.transformer import HookedTransformer
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
TRAIN_VERSION = 2
#: seed of the fresh rows a truth is read on (tasks use 1234): truth never sees scored samples
TRUTH_SEED = 4321
_log = logging.getLogger("interplab.zoo")


@dataclass(frozen=True, eq=False)
class Organism:
    """A model with a known circuit.

    Attributes:
        name: registry name.
        model: the trained HookedTransformer.
        ground_truth: {ablation: Circuit} for "zero", "mean", "resample".
        task: clean/corrupted inputs, scored positions and labels.
        description: what it computes and how.
        info: training facts (seconds, steps, accuracy, roles of heads).
    """

    name: str
    model: HookedTransformer
    ground_truth: dict[str, Circuit]
    task: CircuitTask
    description: str
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------- prevtoken
PREV_LEN, PREV_VOCAB = 10, 16
PREV_CFG = TransformerConfig(n_layers=1, d_model=32, n_heads=4, d_head=8, d_mlp=0, d_vocab=PREV_VOCAB,
                             n_ctx=PREV_LEN, attn_only=True, normalization="none", init_std=0.1,
                             seed=0)


def _prev_batch(n: int, gen: torch.Generator) -> Tensor:
    body = torch.randint(1, PREV_VOCAB, (n, PREV_LEN - 1), generator=gen)
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), body], 1)


def _train_prevtoken(steps: int = 300) -> tuple[HookedTransformer, dict]:
    model = HookedTransformer(PREV_CFG, name="prevtoken")
    net = model.model
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.01)
    for _ in range(steps):
        x = _prev_batch(64, gen)
        loss = torch.nn.functional.cross_entropy(net(x)[:, 1:].reshape(-1, PREV_VOCAB),
                                                 x[:, :-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {"steps": steps, "final_loss": float(loss.detach())}


def _prevtoken_task() -> CircuitTask:
    gen = torch.Generator().manual_seed(1234)
    clean, corrupted = _prev_batch(64, gen), _prev_batch(64, gen)
    return CircuitTask(clean, corrupted, None, clean[:, :-1], corrupted[:, :-1], metric="kl",
                       name="prevtoken")


def _prevtoken_truth(model: HookedTransformer, task: CircuitTask) -> tuple[dict[str, Circuit], dict]:
    # attention on fresh rows (another seed than the task's): never the scored samples
    pat = _patterns(model, _prev_batch(64, torch.Generator().manual_seed(TRUTH_SEED)))[0]  # [h, q, k]
    prev = [float(torch.stack([pat[h, i, i - 1] for i in range(1, PREV_LEN)]).mean())
            for h in range(PREV_CFG.n_heads)]
    heads = [Node.attn_head(0, h) for h in range(PREV_CFG.n_heads) if prev[h] > 0.3]
    tok, pos, out = Node.tok_embed(), Node.pos_embed(), Node.logits()
    every, zero_only = [], []
    for h in heads:
        every += [Edge(tok, h, "v"), Edge(h, out)]
        # the token embedding is a constant offset of every query and key: zeroing it moves
        # the attention, resampling it (random tokens either way) does not on average
        zero_only += [Edge(pos, h, "q"), Edge(pos, h, "k"), Edge(tok, h, "q"), Edge(tok, h, "k")]
    circuit = Circuit.from_edges(every + zero_only, "prevtoken", {e: ("zero",) for e in zero_only})
    roles = {"previous_token_heads": [str(h) for h in heads], "prev_token_attention": prev}
    return {a: circuit.for_ablation(a) for a in ABLATIONS}, roles


# --------------------------------------------------------------------- modadd
MOD_P = 13
MOD_CFG = TransformerConfig(n_layers=1, d_model=64, n_heads=4, d_head=16, d_mlp=128,
                            d_vocab=MOD_P + 1, d_vocab_out=MOD_P, n_ctx=3, normalization="none",
                            init_std=0.1, seed=0)


def _train_modadd(steps: int = 400) -> tuple[HookedTransformer, dict]:
    model = HookedTransformer(MOD_CFG, name="modadd")
    net = model.model
    tokens, labels = modadd_all(MOD_P)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.5)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(net(tokens)[:, -1], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {"steps": steps, "final_loss": float(loss.detach())}


def _modadd_split() -> tuple[Tensor, Tensor]:
    """A seeded half of all (a, b) inputs for the task, the other half for the truth."""
    n = MOD_P * MOD_P
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1234))
    return order[: n // 2], order[n // 2:]


def _modadd_task() -> CircuitTask:
    tokens, labels = modadd_all(MOD_P)
    idx, _ = _modadd_split()
    tokens, labels = tokens[idx], labels[idx]
    perm = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(1234))
    corrupted = tokens[perm]
    return CircuitTask(tokens, corrupted, (2,), labels[:, None], labels[perm][:, None],
                       metric="kl", name="modadd")


def _modadd_truth(model: HookedTransformer, task: CircuitTask) -> tuple[dict[str, Circuit], dict]:
    _, held = _modadd_split()  # the inputs the task does not score
    pat = _patterns(model, modadd_all(MOD_P)[0][held])[0][:, 2, :2]  # [h, key a/b] from "="
    heads = [Node.attn_head(0, h) for h in range(MOD_CFG.n_heads) if float(pat[h].sum()) > 0.5]
    tok, pos, mlp, out = Node.tok_embed(), Node.pos_embed(), Node.mlp(0), Node.logits()
    every = [Edge(mlp, out)]
    zero_only = [Edge(tok, mlp), Edge(pos, mlp)]
    for h in heads:
        # keys carry the token too: how attention splits between a and b depends on them
        every += [Edge(tok, h, "v"), Edge(tok, h, "k"), Edge(h, mlp), Edge(h, out)]
        zero_only += [Edge(pos, h, "q"), Edge(pos, h, "k")]
    circuit = Circuit.from_edges(every + zero_only, "modadd", {e: ("zero",) for e in zero_only})
    roles = {"moving_heads": [str(h) for h in heads],
             "attention_to_a_b": [float(v) for v in pat.sum(-1)]}
    return {a: circuit.for_ablation(a) for a in ABLATIONS}, roles


# ------------------------------------------------------------------ induction
IND_LEN, IND_VOCAB, IND_SEG = 32, 64, (6, 12)
IND_CFG = TransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=0,
                            d_vocab=IND_VOCAB, n_ctx=IND_LEN, attn_only=True,
                            normalization="none", init_std=0.1, seed=0)
#: scored positions: inside the repeat of every row of the task (its repeat ends the row)
IND_POSITIONS = tuple(range(IND_LEN - IND_SEG[0], IND_LEN - 1))


def _train_induction(steps: int = 400) -> tuple[HookedTransformer, dict]:
    # one thread: multi-threaded reductions round differently from run to run, and Adam
    # blows the (ideally zero) gradient of b_K up into steps, so two runs would part ways
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_induction_1thread(steps)
    finally:
        torch.set_num_threads(threads)


def _train_induction_1thread(steps: int) -> tuple[HookedTransformer, dict]:
    model = HookedTransformer(IND_CFG, name="induction")
    net = model.model
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.01)
    for _ in range(steps):
        x, mask, _ = induction_repeat_batch(128, IND_LEN, IND_VOCAB, IND_SEG, gen)
        mask = mask[:, :-1]  # loss only where the next token is set by the repeat
        loss = torch.nn.functional.cross_entropy(net(x)[:, :-1][mask], x[:, 1:][mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {"steps": steps, "final_loss": float(loss.detach())}


def _induction_task() -> CircuitTask:
    gen = torch.Generator().manual_seed(1234)
    clean, _, layout = induction_repeat_batch(64, IND_LEN, IND_VOCAB, IND_SEG, gen, end_at_last=True)
    # same layout, fresh tokens: the repeated segment (and everything else) changes
    corrupted, _, _ = induction_repeat_batch(64, IND_LEN, IND_VOCAB, IND_SEG, gen, layout=layout)
    nxt = [p + 1 for p in IND_POSITIONS]
    return CircuitTask(clean, corrupted, IND_POSITIONS, clean[:, nxt], corrupted[:, nxt],
                       metric="kl", name="induction")


def induction_scores(model: HookedTransformer, n: int = 64, seed: int = TRUTH_SEED) -> tuple[list[float], list[float]]:
    """(previous-token score per layer-0 head, induction score per layer-1 head): mean attention
    to position i-1, and from a position inside the repeat to the token after the same token's
    first occurrence, on fresh rows of the training distribution."""
    tokens, mask, (s, t, _) = induction_repeat_batch(n, IND_LEN, IND_VOCAB, IND_SEG,
                                                     torch.Generator().manual_seed(seed))
    pat0, pat1 = _patterns(model, tokens, mean=False)  # [b, h, q, k]
    i = torch.arange(1, IND_LEN)
    prev = pat0[:, :, i, i - 1].mean((0, 2))
    rows, queries = mask.nonzero(as_tuple=True)
    keys = queries - (t - s)[rows] + 1
    induction = pat1[rows, :, queries, keys].mean(0)
    return [float(v) for v in prev], [float(v) for v in induction]


def _induction_truth(model: HookedTransformer, task: CircuitTask) -> tuple[dict[str, Circuit], dict]:
    prev, induction = induction_scores(model)
    prev_heads = [Node.attn_head(0, h) for h in range(IND_CFG.n_heads) if prev[h] > 0.4]
    ind_heads = [Node.attn_head(1, h) for h in range(IND_CFG.n_heads) if induction[h] > 0.4]
    tok, pos, out = Node.tok_embed(), Node.pos_embed(), Node.logits()
    every, zero_only = [], []
    for p in prev_heads:
        every += [Edge(tok, p, "v")] + [Edge(p, i, "k") for i in ind_heads]
        # attention by position: positions are the same on clean and corrupted rows (and so
        # equal their mean), so only zero ablation removes them
        zero_only += [Edge(pos, p, "q"), Edge(pos, p, "k")]
    for i in ind_heads:
        every += [Edge(tok, i, "q"), Edge(tok, i, "v"), Edge(i, out)]
    circuit = Circuit.from_edges(every + zero_only, "induction", {e: ("zero",) for e in zero_only})
    heads = {Node.attn_head(l, h) for l in range(IND_CFG.n_layers) for h in range(IND_CFG.n_heads)}
    roles = {"previous_token_heads": [str(h) for h in prev_heads],
             "induction_heads": [str(h) for h in ind_heads],
             "distractor_heads": [str(h) for h in sorted(heads - circuit.nodes)],
             "prev_token_score": prev, "induction_score": induction}
    return {a: circuit.for_ablation(a) for a in ABLATIONS}, roles


def _patterns(model: HookedTransformer, tokens: Tensor, mean: bool = True) -> list[Tensor]:
    """Attention pattern per layer: mean over the batch [h, q, k], or [b, h, q, k]."""
    sites = [Site(Component.ATTN_PATTERN, l) for l in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, sites)
    return [cache[s].mean(0) if mean else cache[s] for s in sites]


# ------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _Spec:
    train: Callable[[], tuple[HookedTransformer, dict]]
    task: Callable[[], CircuitTask]
    truth: Callable[[HookedTransformer, CircuitTask], tuple[dict[str, Circuit], dict]]
    description: str


_SPECS = {
    "prevtoken": _Spec(_train_prevtoken, _prevtoken_task, _prevtoken_truth,
                       "1-layer attention-only, 4 heads: output the previous token"),
    "modadd": _Spec(_train_modadd, _modadd_task, _modadd_truth,
                    "1-layer modular addition mod 13: heads move a and b to the MLP"),
    "induction": _Spec(_train_induction, _induction_task, _induction_truth,
                       "2-layer attention-only, 4 heads each: previous-token head + induction head "
                       "copy a repeated segment at a random distance"),
}
ORGANISMS = tuple(_SPECS)


def describe(name: str) -> str:
    """One-line description of a trained organism (no training)."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _SPECS[name].description


def cached_model(directory: Path, name: str,
                 train: Callable[[], tuple[HookedTransformer, dict]], *,
                 use_cache: bool = True) -> tuple[HookedTransformer, dict]:
    """The model cached in ``directory``, or ``train()``-ed (and saved there when
    ``use_cache``). A cache that cannot be loaded (corrupt weights, a hash mismatch, a broken
    sidecar: any WeightsError) is rebuilt with a one-line warning on the ``interplab.zoo`` logger.
    Caches written before sidecars held a weights hash load without that check."""
    if use_cache and (directory / "model.json").is_file():
        try:
            return load_model(directory, name=name)
        except WeightsError as exc:
            _log.warning("rebuilding organism %s: its cache in %s is unusable (%s)",
                         name, directory, str(exc).splitlines()[0])
    start = time.perf_counter()
    model, info = train()
    info["train_seconds"] = time.perf_counter() - start
    if use_cache:
        save_model(directory, model, extra=info)
    return model, info


def load_organism(name: str, *, use_cache: bool = True) -> Organism:
    """Train (seeded, at most a minute or two on 2 cores) or load from cache the organism
    ``name`` (one of :data:`ORGANISMS`)."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    spec = _SPECS[name]
    directory = cache_dir() / "organisms" / f"{name}-v{TRAIN_VERSION}"
    model, info = cached_model(directory, name, spec.train, use_cache=use_cache)
    model.model.eval()
    for p in model.model.parameters():
        p.requires_grad_(False)
    task = spec.task()
    truth, roles = spec.truth(model, task)
    with torch.no_grad():
        from interplab.methods.circuits.task import select_outputs

        out = select_outputs(model.run(task.clean), task).argmax(-1)
    info = {**info, **roles, "accuracy": float((out == task.labels).float().mean())}
    return Organism(name, model, truth, task, spec.description, info)


def _random_transformer() -> HookedTransformer:
    cfg = TransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=128, d_vocab=32,
                            n_ctx=32, seed=0)
    return HookedTransformer(cfg, name="random-2l")


def entries() -> list[ZooEntry]:
    """``trained-<task>`` for every trained organism (tags "trained", "circuits"), plus the
    seeded random control ``random-2l`` (tag "controls")."""
    out = [ZooEntry("random-2l", "random",
                    "2-layer, 4-head native transformer with seeded random weights (a control)",
                    _random_transformer, frozenset({"controls"}))]
    for name in ORGANISMS:
        tags = {"trained", "circuits"} | ({"quick"} if name == "prevtoken" else set())
        out.append(ZooEntry(f"trained-{name}", "trained", describe(name),
                            lambda name=name: load_organism(name), frozenset(tags)))
    return out
