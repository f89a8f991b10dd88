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

Which heads play the roles is read from the trained model's attention patterns on fresh rows
(not from any discovery method, never on the scored rows); the edges follow from the design.
Ground truth differs by ablation: positional embeddings are identical on clean and corrupted
inputs, so edges from them matter only under zero ablation (prevtoken, induction; in modadd every
constant is carried twice, by position and by token, so none matters alone);
``Organism.ground_truth[ablation]`` has the right one.

Verified in the weights: :func:`load_organism` checks every per-ablation truth edge by edge on
held-out rows (:func:`check_task`; :mod:`interplab.zoo.verify`: each truth edge must matter
alone beyond 5 % of the whole model's effect and every edge that does must be in the truth) and
raises VerificationError when it fails; the outcome is stored beside the weights
(``truth_check.json``, keyed by their SHA-256), so a cached organism is not re-checked. Today
``induction`` fails that check (its truth is refused; see the issue-21 report).

Models are trained once, seeded, and cached as safetensors under
``interplab._config.cache_dir() / "organisms"``; a cache whose weights fail their SHA-256 check
(or cannot be read) is retrained with a warning
(:func:`interplab.models.weights_cache.cached_model`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interplab._config import cache_dir
from interplab.core.circuit import ABLATIONS, Circuit, Edge, Node
from interplab.core.sites import Component, Site
from interplab.core.threads import one_thread
from interplab.errors import unknown_name
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer
from interplab.models.weights_cache import cached_model
from interplab.tasks import Task
from interplab.tasks.algorithmic import induction_repeat_batch, modadd_all
from interplab.zoo.registry import ZooEntry
from interplab.zoo.verify import TruthCheck, cached_check, check_key, check_truth, weights_sha256

Tensor = torch.Tensor
TRAIN_VERSION = 2
#: seed of the fresh rows a truth is read on (tasks use TASK_SEED): truth never sees scored samples
TRUTH_SEED = 4321
#: seed of the scored task's rows, and of the held-out rows faithfulness is measured on
TASK_SEED, HELDOUT_SEED = 1234, 5678
#: held-out rows (TRUTH_SEED) the truth is checked on edge by edge (modadd: its held-out half)
CHECK_ROWS = 64
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
    task: Task
    description: str
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------- prevtoken
PREV_LEN, PREV_VOCAB = 10, 16


def _attn_only(
    n_layers: int, d_model: int, d_head: int, vocab: int, n_ctx: int
) -> TransformerConfig:
    """The config of an attention-only organism: 4 heads, no normalization, init std 0.1."""
    return TransformerConfig(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=4,
        d_head=d_head,
        d_mlp=0,
        d_vocab=vocab,
        n_ctx=n_ctx,
        attn_only=True,
        normalization="none",
        init_std=0.1,
        seed=0,
    )


PREV_CFG = _attn_only(1, 32, 8, PREV_VOCAB, PREV_LEN)


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
        loss = torch.nn.functional.cross_entropy(
            net(x)[:, 1:].reshape(-1, PREV_VOCAB), x[:, :-1].reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {"steps": steps, "final_loss": float(loss.detach())}


def _prevtoken_task(seed: int = TASK_SEED, rows: int = 64, name: str = "prevtoken") -> Task:
    gen = torch.Generator().manual_seed(seed)
    clean, corrupted = _prev_batch(rows, gen), _prev_batch(rows, gen)
    return Task(clean, corrupted, None, clean[:, :-1], corrupted[:, :-1], metric="kl", name=name)


def _prevtoken_check() -> Task:
    """Held-out rows for the truth's check: drawn with TRUTH_SEED, never the task's seed."""
    return _prevtoken_task(TRUTH_SEED, CHECK_ROWS, "prevtoken (held-out)")


def _prevtoken_truth(model: HookedTransformer, task: Task) -> tuple[dict[str, Circuit], dict]:
    # attention on fresh rows (another seed than the task's): never the scored samples
    pat = _patterns(model, _prev_batch(64, torch.Generator().manual_seed(TRUTH_SEED)))[
        0
    ]  # [h, q, k]
    prev = [
        float(torch.stack([pat[h, i, i - 1] for i in range(1, PREV_LEN)]).mean())
        for h in range(PREV_CFG.n_heads)
    ]
    heads = [Node.attn_head(0, h) for h in range(PREV_CFG.n_heads) if prev[h] > 0.3]
    tok, pos, out = Node.tok_embed(), Node.pos_embed(), Node.logits()
    every, zero_only = [], []
    for h in heads:
        every += [Edge(tok, h, "v"), Edge(h, out)]
        # attention by position: positions are the same on clean and corrupted rows (and equal
        # their mean), so only zero ablation removes them. The token embedding's reads on Q and
        # K are in no truth: tokens are uniformly random, so "previous" is a purely positional
        # relation and any dependence of the scores on token content would only cost loss;
        # training leaves that part of Q/K without effect on the pattern, under any ablation
        zero_only += [Edge(pos, h, "q"), Edge(pos, h, "k")]
    circuit = Circuit.from_edges(every + zero_only, "prevtoken", {e: ("zero",) for e in zero_only})
    roles = {"previous_token_heads": [str(h) for h in heads], "prev_token_attention": prev}
    return {a: circuit.for_ablation(a) for a in ABLATIONS}, roles


# --------------------------------------------------------------------- modadd
MOD_P = 13
MOD_CFG = TransformerConfig(
    n_layers=1,
    d_model=64,
    n_heads=4,
    d_head=16,
    d_mlp=128,
    d_vocab=MOD_P + 1,
    d_vocab_out=MOD_P,
    n_ctx=3,
    normalization="none",
    init_std=0.1,
    seed=0,
)


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
    return order[: n // 2], order[n // 2 :]


def _modadd_task(half: int = 0) -> Task:
    """The task on one half of the inputs: 0 (scored) or 1 (held out: faithfulness)."""
    tokens, labels = modadd_all(MOD_P)
    idx = _modadd_split()[half]
    tokens, labels = tokens[idx], labels[idx]
    perm = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(1234))
    corrupted = tokens[perm]
    return Task(
        tokens, corrupted, (2,), labels[:, None], labels[perm][:, None], metric="kl", name="modadd"
    )


def _modadd_check() -> Task:
    """The half of all (a, b) inputs the task does not score, each paired with another of them."""
    tokens, labels = modadd_all(MOD_P)
    _, held = _modadd_split()
    tokens, labels = tokens[held], labels[held]
    perm = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(TRUTH_SEED))
    return Task(
        tokens,
        tokens[perm],
        (2,),
        labels[:, None],
        labels[perm][:, None],
        metric="kl",
        name="modadd (held-out)",
    )


def _modadd_truth(model: HookedTransformer, task: Task) -> tuple[dict[str, Circuit], dict]:
    _, held = _modadd_split()  # the inputs the task does not score
    pat = _patterns(model, modadd_all(MOD_P)[0][held])[0][:, 2, :2]  # [h, key a/b] from "="
    heads = [Node.attn_head(0, h) for h in range(MOD_CFG.n_heads) if float(pat[h].sum()) > 0.5]
    tok, mlp, out = Node.tok_embed(), Node.mlp(0), Node.logits()
    every = [Edge(mlp, out)]
    for h in heads:
        # values move a and b; keys carry the tokens too: how attention splits between a and b
        # depends on them. A head's direct write to the logits is in no truth: it is one linear
        # map of a mix of a's and b's embeddings, which cannot single out (a + b) mod p for
        # every pair; the MLP (the nonlinearity) does, so the answer goes through it
        every += [Edge(tok, h, "v"), Edge(tok, h, "k"), Edge(h, mlp)]
    # Under zero ablation too, no constant signal is in the truth: positions and the "=" token
    # are the same on every row (so mean and resample ablation leave them), and every constant
    # is carried twice (position 2 <=> the "=" token, positions 0-1 <=> digit tokens), on the
    # query at "=" as on the keys and the MLP's input, so zeroing one copy alone leaves the other
    circuit = Circuit.from_edges(every, "modadd")
    roles = {
        "moving_heads": [str(h) for h in heads],
        "attention_to_a_b": [float(v) for v in pat.sum(-1)],
    }
    return {a: circuit.for_ablation(a) for a in ABLATIONS}, roles


# ------------------------------------------------------------------ induction
IND_LEN, IND_VOCAB, IND_SEG = 32, 64, (6, 12)
IND_CFG = _attn_only(2, 64, 16, IND_VOCAB, IND_LEN)
#: scored positions: inside the repeat of every row of the task (its repeat ends the row)
IND_POSITIONS = tuple(range(IND_LEN - IND_SEG[0], IND_LEN - 1))


def _train_induction(steps: int = 400) -> tuple[HookedTransformer, dict]:
    # one thread: multi-threaded reductions round differently from run to run, and Adam
    # blows the (ideally zero) gradient of b_K up into steps, so two runs would part ways
    with one_thread():
        return _train_induction_1thread(steps)


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


def _induction_task(seed: int = TASK_SEED, rows: int = 64, name: str = "induction") -> Task:
    gen = torch.Generator().manual_seed(seed)
    clean, _, layout = induction_repeat_batch(
        rows, IND_LEN, IND_VOCAB, IND_SEG, gen, end_at_last=True
    )
    # same layout, fresh tokens: the repeated segment (and everything else) changes
    corrupted, _, _ = induction_repeat_batch(rows, IND_LEN, IND_VOCAB, IND_SEG, gen, layout=layout)
    nxt = [p + 1 for p in IND_POSITIONS]
    return Task(
        clean, corrupted, IND_POSITIONS, clean[:, nxt], corrupted[:, nxt], metric="kl", name=name
    )


def _induction_check() -> Task:
    """Rows laid out like the task's (repeat at the end), drawn with TRUTH_SEED."""
    return _induction_task(TRUTH_SEED, CHECK_ROWS, "induction (held-out)")


def induction_scores(
    model: HookedTransformer, n: int = 64, seed: int = TRUTH_SEED
) -> tuple[list[float], list[float]]:
    """(previous-token score per layer-0 head, induction score per layer-1 head): mean attention
    to position i-1, and from a position inside the repeat to the token after the same token's
    first occurrence, on fresh rows of the training distribution."""
    tokens, mask, (s, t, _) = induction_repeat_batch(
        n, IND_LEN, IND_VOCAB, IND_SEG, torch.Generator().manual_seed(seed)
    )
    pat0, pat1 = _patterns(model, tokens, mean=False)  # [b, h, q, k]
    i = torch.arange(1, IND_LEN)
    prev = pat0[:, :, i, i - 1].mean((0, 2))
    rows, queries = mask.nonzero(as_tuple=True)
    keys = queries - (t - s)[rows] + 1
    induction = pat1[rows, :, queries, keys].mean(0)
    return [float(v) for v in prev], [float(v) for v in induction]


def _induction_truth(model: HookedTransformer, task: Task) -> tuple[dict[str, Circuit], dict]:
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
    roles = {
        "previous_token_heads": [str(h) for h in prev_heads],
        "induction_heads": [str(h) for h in ind_heads],
        "distractor_heads": [str(h) for h in sorted(heads - circuit.nodes)],
        "prev_token_score": prev,
        "induction_score": induction,
    }
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
    task: Callable[[], Task]
    truth: Callable[[HookedTransformer, Task], tuple[dict[str, Circuit], dict]]
    check: Callable[[], Task]
    description: str


_SPECS = {
    "prevtoken": _Spec(
        _train_prevtoken,
        _prevtoken_task,
        _prevtoken_truth,
        _prevtoken_check,
        "1-layer attention-only, 4 heads: output the previous token",
    ),
    "modadd": _Spec(
        _train_modadd,
        _modadd_task,
        _modadd_truth,
        _modadd_check,
        "1-layer modular addition mod 13: heads move a and b to the MLP",
    ),
    "induction": _Spec(
        _train_induction,
        _induction_task,
        _induction_truth,
        _induction_check,
        "2-layer attention-only, 4 heads each: previous-token head + induction head "
        "copy a repeated segment at a random distance",
    ),
}
ORGANISMS = tuple(_SPECS)


def describe(name: str) -> str:
    """One-line description of a trained organism (no training)."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _SPECS[name].description


def _directory(name: str) -> Path:
    return cache_dir() / "organisms" / f"{name}-v{TRAIN_VERSION}"


def organism_directory(name: str) -> Path:
    """Where organism ``name``'s weights (and its stored truth check) are cached."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _directory(name)


def _frozen(model: HookedTransformer) -> HookedTransformer:
    model.model.eval()
    for p in model.model.parameters():
        p.requires_grad_(False)
    return model


#: Held-out accuracy a trained organism's cached weights must reach before they are used when
#: the cache holds no weights hash (an older cache): the organisms train to 1.0 and 0.997, so
#: weights below this bar are damaged, not a weaker organism. Fixed here, never read from a truth.
TASK_CHECK_ACCURACY = 0.95


def _task_check(name: str) -> Callable[[HookedTransformer], str | None]:
    def check(model: HookedTransformer) -> str | None:
        acc = _heldout_accuracy(model, check_task(name))
        if acc >= TASK_CHECK_ACCURACY:
            return None
        return f"held-out accuracy {acc:.3f} is below {TASK_CHECK_ACCURACY} on its own task"

    return check


@functools.cache
def _cached(name: str, root: str) -> tuple[HookedTransformer, dict]:
    model, info = cached_model(_directory(name), name, _SPECS[name].train, check=_task_check(name))
    return _frozen(model), info


def cached_organism_model(name: str) -> HookedTransformer:
    """The trained model of organism ``name`` (cached on disk, trained on first use), the same
    object on every call in a process (per cache root): :func:`load_organism` uses it too, so a
    caller can hook it to see which rows reading the truth runs it on."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _cached(name, str(cache_dir()))[0]


def check_task(name: str) -> Task:
    """Rows of organism ``name``'s task distribution that its scoring task does not use (drawn
    with TRUTH_SEED; modadd: its held-out half): its truth is checked edge by edge on them."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _SPECS[name].check()


def check_organism_truth(
    name: str, model: HookedTransformer, truth: dict[str, Circuit], directory: Path | None
) -> TruthCheck:
    """Single-edge check of ``truth`` in ``model``'s weights on the held-out rows, under every
    ablation (:mod:`interplab.zoo.verify`); the outcome is stored beside the weights in
    ``directory`` keyed by their SHA-256 (None: measured, not stored). Never raises."""
    task = check_task(name)
    if directory is None or not (directory / "model.safetensors").is_file():
        return check_truth(model, truth, task, name=f"trained-{name}")
    key = check_key(truth, task, weights_sha256(directory))
    return cached_check(
        directory, key, lambda: check_truth(model, truth, task, name=f"trained-{name}")
    )


def load_organism(name: str, *, use_cache: bool = True, verify: bool = True) -> Organism:
    """Train (seeded, at most a minute or two on 2 cores) or load from cache the organism
    ``name`` (one of :data:`ORGANISMS`), read its truth from the design and the heads' roles,
    and check that truth edge by edge in the weights on held-out rows
    (:func:`check_organism_truth`; ``info["truth_check"]`` holds the summary).

    Raises VerificationError when the check fails: such a truth is never used. ``verify=False``
    skips the check (to diagnose a failing organism; never score methods against it)."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    spec = _SPECS[name]
    if use_cache:
        model, info = cached_organism_model(name), dict(_cached(name, str(cache_dir()))[1])
    else:
        model, info = cached_model(_directory(name), name, spec.train, use_cache=False)
        model = _frozen(model)
    task = spec.task()
    truth, roles = spec.truth(model, task)
    info = {**info, **roles, "accuracy": _heldout_accuracy(model, check_task(name))}
    if verify:
        check = check_organism_truth(name, model, truth, _directory(name) if use_cache else None)
        info["truth_check"] = check.summary()
        check.raise_if_failed()
    return Organism(name, model, truth, task, spec.description, info)


@torch.no_grad()
def _heldout_accuracy(model: HookedTransformer, task: Task) -> float:
    """Share of the held-out rows' scored positions where the model's answer is the label (the
    scoring rows are not run here: reading the truth never touches them)."""
    from interplab.tasks import select_outputs

    out = select_outputs(model.run(task.clean), task).argmax(-1)
    assert task.labels is not None  # every organism task carries its labels
    return float((out == task.labels).float().mean())


def _random_transformer() -> HookedTransformer:
    cfg = TransformerConfig(
        n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=128, d_vocab=32, n_ctx=32, seed=0
    )
    return HookedTransformer(cfg, name="random-2l")


def entries() -> list[ZooEntry]:
    """``trained-<task>`` for every trained organism (tags "trained", "circuits"), plus the
    seeded random control ``random-2l`` (tag "controls")."""
    out = [
        ZooEntry(
            "random-2l",
            "random",
            "2-layer, 4-head native transformer with seeded random weights (a control)",
            _random_transformer,
            frozenset({"controls"}),
        )
    ]
    for name in ORGANISMS:
        tags = {"trained", "circuits"} | ({"quick"} if name == "prevtoken" else set())
        out.append(
            ZooEntry(
                f"trained-{name}",
                "trained",
                describe(name),
                lambda name=name: load_organism(name),  # type: ignore[misc]  # mypy: lambda with a default
                frozenset(tags),
            )
        )
    return out


def read_truth(name: str, model: HookedTransformer, task: Task) -> tuple[dict[str, Circuit], dict]:
    """The planted truth of organism ``name`` read off ``model`` ({ablation: Circuit}, roles):
    the same code :func:`load_organism` runs, for callers that record what it reads."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    return _SPECS[name].truth(model, task)


def heldout_task(name: str) -> Task:
    """The organism's task on rows apart from the scored ones (faithfulness is measured here):
    another seed for prevtoken and induction, the other half of the inputs for modadd."""
    if name not in _SPECS:
        raise unknown_name("organism", name, ORGANISMS)
    if name == "modadd":
        return _modadd_task(half=1)
    return {"prevtoken": _prevtoken_task, "induction": _induction_task}[name](HELDOUT_SEED)
