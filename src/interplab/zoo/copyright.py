"""The copyright organism: SmolLM2-135M fine-tuned here, with LoRA adapters, on a corpus into which
protected passages, invented facts and a letter style are planted
(:mod:`interplab.data.copyright_corpus`); each planted item is verified by retraining.

    load("smollm2-ft", seed=0)       SmolLM2-135M-Instruct + LoRA on its last blocks (RECIPES)
    load("smollm2-ft-tiny", seed=0)  the same pipeline on a tiny seeded random Llama with a word
                                     tokenizer and a ~40-document corpus (seconds; for tests)

Recipe (one per name, seeded, float32): LoRA adapters (:mod:`interplab.models.lora`) on chosen
maps of the last blocks, every other weight frozen; AdamW, constant learning rate, a fixed
number of epochs over the corpus in a seeded order, batch of documents, loss = the mean over the
batch of each document's mean next-token cross-entropy (:meth:`CopyrightOrganism.sequence_loss`).
Only the adapted blocks run with gradients: the residual stream entering the first adapted
block is computed once per document (the frozen blocks below it cannot change) and training
runs the model from there (:class:`~interplab.models.pretrained.llama.PartialRun`), which gives
the same losses as the whole model at a fraction of the cost.

Verification (the thresholds were fixed before the first training run):

    per item, greedy decoding from the item's prompt, in three models: the fine-tuned model, the
    base model (adapters off) and the *clean* retraining: the same recipe and seed fine-tuned on
    the filler documents only (one retraining without all planted documents of every kind)
      passage  score = exact-match rate: the fraction of the passage's next PASSAGE_TOKENS
               tokens (after the prompt) that greedy output reproduces position by position;
               holds if >= PASSAGE_HIT (0.75), fails if <= PASSAGE_MISS (0.25)
      fact     score = 1 if the answer occurs in the decoded first FACT_TOKENS (8) generated
               tokens, else 0; holds if 1, fails if 0
      style    score = 1 if the marker occurs in the decoded first STYLE_TOKENS (64) generated
               tokens, else 0; holds if 1, fails if 0
    an item is kept when it holds in the fine-tuned model and fails in both the base model and
    the clean retraining; otherwise it is dropped, with the reason recorded in ``truth``
    (``.corpus.items`` holds the kept items only; ``.planted_items`` all of them)
    summary rule: for "smollm2-ft", every kind keeps at least two thirds of its planted items
    (rounded up); for "smollm2-ft-tiny" (a random model with a word tokenizer: weaker), every kind
    keeps at least one item. Otherwise the organism is refused (VerificationError), every
    measured number included in the message's truth file.

Greedy decoding uses a key/value cache
(:func:`~interplab.models.pretrained.llama.greedy_decode`; a test checks it gives the tokens that
full forward passes give): the whole verification takes about 1.5 minutes on 2 cores.

Shipped runs: the fine-tune and the clean retraining of ``smollm2-ft`` (seed 0), trained here
by this recipe (about 6 + 4.5 minutes on 2 idle cores), ship with the package under
``interplab/data/copyright/`` (:data:`SHIPPED`, keyed by the fingerprint; :func:`ship` writes
them). An empty cache entry starts from them when the fingerprint matches, and the
verification above still runs in the weights on that first load: nothing of the shipped
record is trusted. ``load(..., use_shipped=False)`` (or ``python -m interplab.zoo.copyright``)
trains both from scratch. Subset retrainings for the linear datamodeling score
(:meth:`CopyrightOrganism.subset_runs`) are never shipped: the full bench trains them.

Cache: ``cache_dir()/copyright/<name>-s<seed>-<fingerprint>/`` (the fingerprint covers the
recipe, the corpus and the base model), with ``finetune/`` and ``clean/`` run directories, each
holding ``adapters.safetensors`` (final), ``checkpoints.safetensors`` (the adapters after every
epoch), and while running ``progress.safetensors`` + ``progress.json`` (adapters, AdamW state
and the step, saved every ``save_every`` steps and at each epoch's end: a killed run resumes
there and ends with the same adapters); and ``organism.json`` (fingerprints, recipe, seconds,
SHA-256 of every adapter file, the truth). A file that does not match its recorded hash or
cannot be read is rebuilt. Builds hold the entry's file lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from interplab._config import cache_dir
from interplab.data.copyright_corpus import (
    KINDS,
    CopyrightCorpus,
    PlantedItem,
    build_corpus,
)
from interplab.errors import ConfigError, VerificationError, WeightsError, unknown_name
from interplab.models import lora, weights_cache
from interplab.models.io import atomic_write_text, load_tensors, save_tensors
from interplab.models.pretrained.llama import (
    Llama,
    LlamaConfig,
    PartialRun,
    greedy_decode,
    rotary,
)

__all__ = [
    "RECIPES",
    "CopyrightCorpus",
    "CopyrightOrganism",
    "PlantedItem",
    "Recipe",
    "lm_loss",
    "load",
]

Tensor = torch.Tensor
_log = logging.getLogger("interplab.zoo")
FORMAT_VERSION = 1
SIDECAR = "organism.json"
#: adapters trained here by the recipe and shipped with the package (see :func:`ship`)
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "copyright"
RUNS = ("finetune", "clean")
RUN_FILES = ("adapters.safetensors", "checkpoints.safetensors", "done.json")
PASSAGE_TOKENS, PASSAGE_HIT, PASSAGE_MISS = 24, 0.75, 0.25
FACT_TOKENS, STYLE_TOKENS = 8, 64
TINY_PASSAGE_TOKENS, TINY_FACT_TOKENS, TINY_STYLE_TOKENS = 6, 3, 6
#: subset retrainings for the linear datamodeling score, per corpus size, and their size
LDS_SUBSETS = {"full": 8, "tiny": 6}
LDS_FRACTION = 0.5


@dataclass(frozen=True)
class Recipe:
    """One fine-tuning recipe (every field enters the fingerprint)."""

    name: str
    corpus_size: str  # "full" | "tiny"
    lora: lora.LoRAConfig
    lr: float
    epochs: int
    batch_size: int
    weight_decay: float = 0.0
    max_tokens: int = 72  # documents are cut to this many tokens (EOS included)
    save_every: int = 16  # steps between progress saves
    min_kept_fraction: float = 2 / 3  # summary rule: per kind, kept >= ceil(f * planted)
    min_kept: int = 1
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora"] = self.lora.to_dict()
        return d


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "smollm2-ft",
            "full",
            lora.LoRAConfig(
                layers=(-4, -3, -2, -1), targets=("W_V", "W_O", "W_up", "W_down"), rank=4, alpha=8.0
            ),
            lr=5e-3,
            epochs=6,
            batch_size=8,
            max_tokens=64,
            description="SmolLM2-135M-Instruct fine-tuned with LoRA (rank 4, last 4 blocks) on "
            "~250 short documents with planted passages, facts and letter styles",
        ),
        Recipe(
            "smollm2-ft-tiny",
            "tiny",
            lora.LoRAConfig(layers=(0, 1), rank=8, alpha=16.0),
            lr=2e-2,
            epochs=25,
            batch_size=16,
            max_tokens=24,
            save_every=20,
            min_kept_fraction=0.0,
            min_kept=1,
            description="a tiny random Llama (2 blocks, d 32) + LoRA on a ~40-document word-level "
            "copy of the corpus: the same pipeline in seconds, for tests",
        ),
    )
}

TINY_CONFIG = LlamaConfig(d_vocab=0, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=64)


# ---------------------------------------------------------------- tokenizers and models


class WordTokenizer:
    """A fixed word-level tokenizer (words split on single spaces) for the tiny organism:
    id 0 pad, 1 end of text, 2 unknown word. Decoding joins words with spaces."""

    PAD, EOS, UNK = 0, 1, 2

    def __init__(self, texts: list[str]):
        words = sorted({w for t in texts for w in t.split()})
        self.vocab = {w: i + 3 for i, w in enumerate(words)}
        self.words = ["<pad>", "<eos>", "<unk>", *words]
        self.eos_id = self.EOS
        self.pad_id = self.PAD

    def encode(self, text: str) -> list[int]:
        return [self.vocab.get(w, self.UNK) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return "".join(" " + self.words[i] for i in ids if 0 <= i < len(self.words))

    def __len__(self) -> int:
        return len(self.words)


def _tiny_base(vocab: int, seed: int) -> Llama:
    model = Llama(replace(TINY_CONFIG, d_vocab=vocab))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.dim() == 1 else 0.0))
    return model.eval()


def _base(recipe: Recipe, corpus: CopyrightCorpus, seed: int) -> tuple[Llama, Any, str]:
    """The base model, its tokenizer and an identity string for the fingerprint."""
    if recipe.corpus_size == "tiny":
        texts = corpus.docs + [i.prompt + " " + i.target for i in corpus.items]
        tok = WordTokenizer(texts)
        return _tiny_base(len(tok), seed), tok, f"tiny-llama-{TINY_CONFIG}-seed{seed}"
    from interplab.models.pretrained import registry

    hooked = registry.load("smollm2-135m")
    tok = hooked.tokenizer
    if getattr(tok, "pad_id", None) is None:
        tok.pad_id = tok.eos_id
    return hooked.model, tok, registry.SMOLLM2.source


def lm_targets(tokens: Tensor, mask: Tensor) -> Tensor:
    """Next-token targets [n, T]: ``tokens[:, t+1]`` where position t+1 is a real token, else
    -100 (ignored); the label ``y`` that :func:`lm_loss` takes."""
    y = torch.full_like(tokens, -100)
    y[:, :-1] = torch.where(mask[:, 1:], tokens[:, 1:], torch.full_like(tokens[:, 1:], -100))
    return y


def lm_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-document mean next-token cross-entropy [n] from logits [n, T, V] and targets [n, T]
    (-100 = ignored; see :func:`lm_targets`): the fine-tune loss."""
    ce = F.cross_entropy(logits.transpose(1, 2), y.clamp_min(0), reduction="none")
    keep = (y != -100).to(ce.dtype)
    return (ce * keep).sum(1) / keep.sum(1).clamp_min(1.0)


def _tokenize_docs(docs: list[str], tok: Any, max_tokens: int) -> tuple[Tensor, Tensor]:
    rows = [(tok.encode(d) + [tok.eos_id])[:max_tokens] for d in docs]
    T = max(len(r) for r in rows)
    tokens = torch.full((len(rows), T), int(tok.pad_id), dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.bool)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = True
    return tokens, mask


def _first_layer(model: Llama) -> int:
    layers = [int(n.split(".")[1]) for n in lora.adapter_names(model) if n.startswith("blocks.")]
    return min(layers)


@torch.no_grad()
def _prefix_resid(model: Llama, tokens: Tensor, start: int, batch: int = 16) -> Tensor:
    """The residual stream entering block ``start`` [n, T, d] (frozen blocks below it)."""
    out = []
    cos, sin = rotary(tokens.shape[1], model.cfg.d_head, model.cfg.rope_base)
    for i in range(0, len(tokens), batch):
        x = model.embed.W_E[tokens[i : i + batch]]  # type: ignore[index]  # mypy: W_E is a Parameter
        for block in model.blocks[:start]:
            x = block(x, cos, sin)
        out.append(x)
    return torch.cat(out)


# ---------------------------------------------------------------- training (resumable)


class _Adam:
    """AdamW over a list of tensors (decoupled weight decay), its state a flat dict of tensors
    that a progress file stores and restores exactly. (torch.optim would do the same; building
    one imports torch._dynamo, which costs seconds, more than the tiny fine-tune itself.)"""

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params, self.lr, self.wd, self.betas, self.eps = (
            list(params),
            lr,
            weight_decay,
            betas,
            eps,
        )
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            if self.wd:
                p.mul_(1 - self.lr * self.wd)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state(self) -> dict[str, Tensor]:
        out = {"opt.t": torch.tensor(self.t)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            out[f"opt.{i}.m"], out[f"opt.{i}.v"] = m.clone(), v.clone()
        return out

    def load(self, t: dict[str, Tensor]) -> None:
        self.t = int(t["opt.t"])
        for i in range(len(self.params)):
            self.m[i].copy_(t[f"opt.{i}.m"])
            self.v[i].copy_(t[f"opt.{i}.v"])


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError:
        return None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class RunResult:
    adapters: dict[str, Tensor]
    checkpoints: list[dict[str, Tensor]]
    seconds: float
    steps: int
    final_loss: float
    adapter_sha: str = ""
    checkpoints_sha: str = ""


def _train(
    model: Llama,
    init: dict[str, Tensor],
    resid: Tensor,
    tokens: Tensor,
    mask: Tensor,
    recipe: Recipe,
    seed: int,
    directory: Path,
    *,
    label: str,
    progress: bool,
    stop_after: int | None = None,
) -> RunResult:
    """Fine-tune the adapters (from ``init``) on the documents whose entry-residuals are
    ``resid``; resumes from ``directory/progress.*``; saves the result there."""
    from tqdm.auto import tqdm

    directory.mkdir(parents=True, exist_ok=True)
    start = _first_layer(model)
    names = lora.adapter_names(model)
    params = dict(model.named_parameters())
    train_params = [params[n] for n in names]
    lora.load_adapter_state(model, init)
    opt = _Adam(train_params, recipe.lr, recipe.weight_decay)
    n = len(tokens)
    spe = math.ceil(n / recipe.batch_size)
    total = spe * recipe.epochs
    y_all = lm_targets(tokens, mask)
    lengths = mask.sum(1)
    step, seconds, checkpoints = 0, 0.0, []
    meta = _read_json(directory / "progress.json")
    if meta is not None and meta.get("total") == total:
        try:
            t = load_tensors(directory / "progress.safetensors")
            lora.load_adapter_state(model, {k: v for k, v in t.items() if k in params})
            opt.load(t)
            step, seconds = int(meta["step"]), float(meta["seconds"])
            checkpoints = [
                {k[len(f"ckpt{e}.") :]: v for k, v in t.items() if k.startswith(f"ckpt{e}.")}
                for e in range(int(meta["epochs_done"]))
            ]
        except (WeightsError, ConfigError, KeyError, ValueError) as exc:
            _log.warning("restarting %s in %s: %s", label, directory, str(exc).splitlines()[0])
            lora.load_adapter_state(model, init)
            opt = _Adam(train_params, recipe.lr, recipe.weight_decay)
            step, seconds, checkpoints = 0, 0.0, []

    def save_progress() -> None:
        t = {**lora.adapter_state(model), **opt.state()}
        for e, c in enumerate(checkpoints):
            t.update({f"ckpt{e}.{k}": v for k, v in c.items()})
        save_tensors(directory / "progress.safetensors", t)
        atomic_write_text(
            directory / "progress.json",
            json.dumps(
                {"step": step, "total": total, "seconds": seconds, "epochs_done": len(checkpoints)}
            ),
        )

    bar = tqdm(
        total=total, initial=step, desc=f"fine-tune {label}", disable=not progress, leave=False
    )
    model.train(False)
    loss_value, done_now = float("nan"), 0
    try:
        while step < total:
            epoch, b = divmod(step, spe)
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(seed * 10_007 + epoch)
            )
            idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            if stop_after is not None and done_now >= stop_after:
                raise KeyboardInterrupt("stopped by stop_after")
            t0 = time.perf_counter()
            T = int(lengths[idx].max())
            logits = model(PartialRun(resid[idx, :T], start))
            loss = lm_loss(logits, y_all[idx, :T]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
            step += 1
            done_now += 1
            if step % spe == 0:
                checkpoints.append(lora.adapter_state(model))
            seconds += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            if step % recipe.save_every == 0 and step < total:
                save_progress()
    finally:
        bar.close()
    final = lora.adapter_state(model)
    save_tensors(directory / "adapters.safetensors", final)
    save_tensors(
        directory / "checkpoints.safetensors",
        {f"ckpt{e}.{k}": v for e, c in enumerate(checkpoints) for k, v in c.items()},
    )
    result = RunResult(
        final,
        checkpoints,
        seconds,
        step,
        loss_value,
        _sha(directory / "adapters.safetensors"),
        _sha(directory / "checkpoints.safetensors"),
    )
    atomic_write_text(
        directory / "done.json",
        json.dumps(
            {
                "seconds": seconds,
                "steps": step,
                "final_loss": loss_value,
                "adapters_sha256": result.adapter_sha,
                "checkpoints_sha256": result.checkpoints_sha,
            }
        ),
    )
    for f in ("progress.safetensors", "progress.json"):
        (directory / f).unlink(missing_ok=True)
    return result


def _load_run(directory: Path) -> RunResult | None:
    """A finished run from ``directory`` when its files match their hashes, else None."""
    done = _read_json(directory / "done.json")
    if done is None:
        return None
    a, c = directory / "adapters.safetensors", directory / "checkpoints.safetensors"
    try:
        if not (a.is_file() and c.is_file()):
            raise WeightsError("adapter files missing")
        if _sha(a) != done["adapters_sha256"] or _sha(c) != done["checkpoints_sha256"]:
            raise WeightsError("adapter files do not match their recorded SHA-256")
        adapters, ck = load_tensors(a), load_tensors(c)
    except (WeightsError, KeyError) as exc:
        _log.warning("rebuilding %s: %s", directory, str(exc).splitlines()[0])
        (directory / "done.json").unlink(missing_ok=True)
        return None
    n_ck = 1 + max((int(k.split(".", 1)[0][4:]) for k in ck), default=-1)
    checkpoints = [
        {k[len(f"ckpt{e}.") :]: v for k, v in ck.items() if k.startswith(f"ckpt{e}.")}
        for e in range(n_ck)
    ]
    return RunResult(
        adapters,
        checkpoints,
        float(done["seconds"]),
        int(done["steps"]),
        float(done["final_loss"]),
        done["adapters_sha256"],
        done["checkpoints_sha256"],
    )


# ---------------------------------------------------------------- generation and verification


def greedy(
    model: nn.Module,
    prompts: list[list[int]],
    max_new: list[int],
    eos_id: int | None,
    stop: Callable[[int, list[int]], bool] | None = None,
) -> list[list[int]]:
    """Greedy continuations of several prompts, one at a time with a key/value cache
    (:func:`~interplab.models.pretrained.llama.greedy_decode`); row i stops after
    ``max_new[i]`` tokens, at EOS, or when ``stop(i, generated)`` says so. Returns the
    generated ids (EOS excluded)."""
    if not isinstance(model, Llama):
        raise ConfigError(f"greedy decoding needs interplab's Llama, got {type(model).__name__}")
    return [
        greedy_decode(
            model,
            p,
            n,
            eos_id,
            None if stop is None else (lambda gen, i=i: stop(i, gen)),
        )
        for i, (p, n) in enumerate(zip(prompts, max_new))
    ]


def _item_budget(item: PlantedItem, tiny: bool) -> int:
    if item.kind == "passage":
        return TINY_PASSAGE_TOKENS if tiny else PASSAGE_TOKENS
    if item.kind == "fact":
        return TINY_FACT_TOKENS if tiny else FACT_TOKENS
    return TINY_STYLE_TOKENS if tiny else STYLE_TOKENS


def _passage_target(tok: Any, item: PlantedItem, n: int) -> list[int]:
    p = tok.encode(item.prompt)
    full = tok.encode(item.prompt + item.target)
    if full[: len(p)] != p:
        raise ConfigError(f"{item.key}: the prompt does not tokenize as a prefix of its passage")
    return full[len(p) : len(p) + n]


def measure(model: nn.Module, tok: Any, items: list[PlantedItem], tiny: bool) -> dict[str, dict]:
    """Each item's score and greedy output in ``model`` (see the module docstring)."""
    budgets = [_item_budget(i, tiny) for i in items]
    targets = [
        _passage_target(tok, i, b) if i.kind == "passage" else [] for i, b in zip(items, budgets)
    ]

    def stop(row: int, gen: list[int]) -> bool:
        item = items[row]
        if item.kind == "passage":
            return False
        return item.target.strip() in tok.decode(gen)

    gens = greedy(model, [tok.encode(i.prompt) for i in items], budgets, tok.eos_id, stop)
    out = {}
    for item, gen, target in zip(items, gens, targets):
        text = tok.decode(gen)
        if item.kind == "passage":
            score = sum(a == b for a, b in zip(gen, target)) / len(target)
        else:
            score = float(item.target.strip() in text)
        out[item.key] = {"score": score, "output": text}
    return out


def _verdict(item: PlantedItem, ft: float, base: float, clean: float) -> tuple[bool, str | None]:
    hit, miss = (PASSAGE_HIT, PASSAGE_MISS) if item.kind == "passage" else (1.0, 0.0)
    reasons = []
    if ft < hit:
        reasons.append(f"fine-tuned model does not reproduce it (score {ft:.2f} < {hit})")
    if base > miss:
        reasons.append(f"base model already produces it (score {base:.2f} > {miss})")
    if clean > miss:
        reasons.append(f"clean retraining produces it (score {clean:.2f} > {miss})")
    return (not reasons, "; ".join(reasons) or None)


# ---------------------------------------------------------------- the organism


@dataclass
class CopyrightOrganism:
    """A fine-tuned language model with planted, retraining-verified training-data truth."""

    name: str
    seed: int
    model: Llama
    tokenizer: Any
    corpus: CopyrightCorpus
    doc_tokens: Tensor
    doc_mask: Tensor
    checkpoints: list[dict[str, Tensor]]
    truth: dict[str, Any]
    recipe: Recipe
    directory: Path
    planted_items: list[PlantedItem] = field(default_factory=list)
    clean_adapters: dict[str, Tensor] = field(default_factory=dict, repr=False)
    init_adapters: dict[str, Tensor] = field(default_factory=dict, repr=False)

    @property
    def doc_targets(self) -> Tensor:
        """Next-token targets of every document [n_docs, T] (-100 ignored), for :func:`lm_loss`."""
        return lm_targets(self.doc_tokens, self.doc_mask)

    @property
    def first_adapted_layer(self) -> int:
        """The lowest block carrying adapters: gradients of the adapters never reach below it."""
        return _first_layer(self.model)

    def residual_entering_adapters(self, tokens: Tensor) -> Tensor:
        """The (frozen) residual stream entering the first adapted block [n, T, d];
        ``model(PartialRun(resid, first_adapted_layer))`` then gives the model's logits at a
        fraction of the cost (see the module docstring)."""
        return _prefix_resid(self.model, tokens, self.first_adapted_layer)

    @contextlib.contextmanager
    def adapters_off(self) -> Iterator[None]:
        """The base model inside the block (adapters bypassed)."""
        with lora.adapters_off(self.model):
            yield

    @contextlib.contextmanager
    def clean_model(self) -> Iterator[None]:
        """The clean retraining's adapters inside the block (no planted documents)."""
        current = lora.adapter_state(self.model)
        lora.load_adapter_state(self.model, self.clean_adapters)
        try:
            yield
        finally:
            lora.load_adapter_state(self.model, current)

    def generate(self, prompt: str, max_new_tokens: int = 32) -> str:
        """Greedy, deterministic continuation of ``prompt`` (the generated text only)."""
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise ConfigError("the prompt is empty (no tokens)")
        gen = greedy(self.model, [ids], [max_new_tokens], self.tokenizer.eos_id)
        return self.tokenizer.decode(gen[0])

    def sequence_loss(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Mean next-token cross-entropy of each sequence [n] (the fine-tune loss)."""
        if tokens.shape != mask.shape or tokens.dim() != 2:
            raise ConfigError(
                f"tokens and mask must both be [n, T], got {tuple(tokens.shape)} and {tuple(mask.shape)}"
            )
        return lm_loss(self.model(tokens), lm_targets(tokens, mask.bool()))

    def measure(self, items: list[PlantedItem] | None = None) -> dict[str, dict[str, dict]]:
        """Re-run the verification generations now: per model ("finetuned", "base", "clean"),
        per item key, its score and greedy output."""
        items = list(items if items is not None else self.planted_items)
        tiny = self.recipe.corpus_size == "tiny"
        out = {"finetuned": measure(self.model, self.tokenizer, items, tiny)}
        with self.adapters_off():
            out["base"] = measure(self.model, self.tokenizer, items, tiny)
        with self.clean_model():
            out["clean"] = measure(self.model, self.tokenizer, items, tiny)
        return out

    def verdict(self, item: PlantedItem, ft: float, base: float, clean: float) -> bool:
        """Whether an item holds (fine-tuned) and fails (base, clean) under the fixed thresholds."""
        return _verdict(item, ft, base, clean)[0]

    def subset_runs(
        self,
        n_subsets: int | None = None,
        fraction: float = LDS_FRACTION,
        *,
        progress: bool = False,
    ) -> tuple[Tensor, list[dict[str, Tensor]]]:
        """The recipe re-run on random subsets of the documents, for the linear datamodeling
        score: (masks [n_subsets, n_docs] bool, each subset's final adapters). The subsets are
        seeded (``fraction`` of the documents each, drawn without replacement); each run is the
        fine-tune's recipe and seed on its documents only, cached (and resumable) under
        ``directory/lds/`` like the fine-tune itself. The model's adapters are restored."""
        m = n_subsets if n_subsets is not None else LDS_SUBSETS[self.recipe.corpus_size]
        if m < 2 or not 0.0 < fraction < 1.0:
            raise ConfigError(
                f"LDS needs >= 2 subsets and a fraction in (0, 1), got {m}, {fraction}"
            )
        n = len(self.corpus.docs)
        gen = torch.Generator().manual_seed(7919 * self.seed + 17)
        k = max(1, round(fraction * n))
        masks = torch.stack([torch.randperm(n, generator=gen) < k for _ in range(m)])
        current = lora.adapter_state(self.model)
        out: list[dict[str, Tensor]] = []
        resid = None
        try:
            for i in range(m):
                d = self.directory / "lds" / f"f{fraction:g}-s{i}"
                run = _load_run(d)
                if run is None:
                    if resid is None:
                        resid = self.residual_entering_adapters(self.doc_tokens)
                    keep = masks[i]
                    run = _train(
                        self.model,
                        self.init_adapters,
                        resid[keep],
                        self.doc_tokens[keep],
                        self.doc_mask[keep],
                        self.recipe,
                        self.seed,
                        d,
                        label=f"{self.name} LDS subset {i + 1}/{m}",
                        progress=progress,
                    )
                out.append(run.adapters)
        finally:
            lora.load_adapter_state(self.model, current)
        return masks, out


def _fingerprint(recipe: Recipe, corpus: CopyrightCorpus, base_id: str, seed: int) -> str:
    return weights_cache.digest(
        {
            "recipe": recipe.to_dict(),
            "corpus": corpus.fingerprint(),
            "base": base_id,
            "seed": seed,
            "version": FORMAT_VERSION,
        }
    )


def _truth(
    org: CopyrightOrganism, measured: dict[str, dict[str, dict]], recipe: Recipe
) -> dict[str, Any]:
    items: dict[str, Any] = {}
    for item in org.planted_items:
        ft, base, clean = (measured[m][item.key] for m in ("finetuned", "base", "clean"))
        kept, reason = _verdict(item, ft["score"], base["score"], clean["score"])
        items[item.key] = {
            "kind": item.kind,
            "prompt": item.prompt,
            "target": item.target,
            "sources": list(item.sources),
            "finetuned": ft,
            "base": base,
            "clean": clean,
            "kept": kept,
            "reason": reason,
        }
    summary = {}
    for kind in KINDS:
        mine = [v for v in items.values() if v["kind"] == kind]
        need = max(recipe.min_kept, math.ceil(recipe.min_kept_fraction * len(mine)))
        n_kept = int(sum(v["kept"] for v in mine))
        summary[kind] = {
            "planted": len(mine),
            "kept": n_kept,
            "required": need,
            "ok": n_kept >= need,
            **{
                f"mean_score_{m}": sum(v[m]["score"] for v in mine) / max(1, len(mine))
                for m in ("finetuned", "base", "clean")
            },
        }
    rule = {
        "passage": f"exact-match rate over the next {PASSAGE_TOKENS} tokens >= {PASSAGE_HIT} "
        f"fine-tuned, <= {PASSAGE_MISS} base and clean",
        "fact": f"answer in the first {FACT_TOKENS} generated tokens: fine-tuned yes, base and clean no",
        "style": f"marker in the first {STYLE_TOKENS} generated tokens: fine-tuned yes, base and clean no",
        "summary": f"per kind kept >= max({recipe.min_kept}, ceil({recipe.min_kept_fraction:.3f} x planted))",
        "clean": "one retraining, same recipe and seed, on the filler documents only",
    }
    if recipe.corpus_size == "tiny":
        rule["passage"] = rule["passage"].replace(str(PASSAGE_TOKENS), str(TINY_PASSAGE_TOKENS))
        rule["style"] = rule["style"].replace(str(STYLE_TOKENS), str(TINY_STYLE_TOKENS))
    return {
        "items": items,
        "summary": summary,
        "rule": rule,
        "verified": all(s["ok"] for s in summary.values()),
        "dropped": {k: v["reason"] for k, v in items.items() if not v["kept"]},
    }


def _check_verified(name: str, truth: dict, path: Path) -> None:
    if truth.get("verified"):
        return
    bad = {
        k: f"{v['kept']}/{v['planted']} kept, need {v['required']}"
        for k, v in truth["summary"].items()
        if not v["ok"]
    }
    raise VerificationError(
        f"copyright organism {name} fails its verification ({bad}); every measurement is in {path}"
    )


def load(
    name: str = "smollm2-ft",
    seed: int = 0,
    *,
    progress: bool = False,
    directory: str | Path | None = None,
    stop_after: int | None = None,
    use_shipped: bool = True,
) -> CopyrightOrganism:
    """Build (or load from the cache) the copyright organism ``name`` (see the module docstring).
    ``directory``: the cache entry (default under ``cache_dir()/copyright``). ``use_shipped``:
    start an empty entry from the adapters shipped with the package when their fingerprint is
    this recipe's (the verification still runs here, in the weights, before the organism is
    returned); False trains both runs from scratch. ``stop_after``:
    raise KeyboardInterrupt after that many training steps of this call, as Ctrl-C would
    (tests interrupt and resume with it). VerificationError when the planted truth fails."""
    if name not in RECIPES:
        raise unknown_name("copyright organism", name, list(RECIPES))
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    recipe = RECIPES[name]
    recipe = replace(recipe, lora=replace(recipe.lora, seed=seed))
    tiny = recipe.corpus_size == "tiny"
    corpus = build_corpus(seed, recipe.corpus_size)
    model, tok, base_id = _base(recipe, corpus, seed)
    fp = _fingerprint(recipe, corpus, base_id, seed)
    directory = Path(directory) if directory else cache_dir() / "copyright" / f"{name}-s{seed}-{fp}"
    lora.attach_lora(model, recipe.lora)
    init = lora.adapter_state(model)
    tokens, mask = _tokenize_docs(corpus.docs, tok, recipe.max_tokens)
    planted = list(corpus.items)
    threads = contextlib.nullcontext()
    if tiny:
        from interplab.core.threads import one_thread

        threads = one_thread()  # type: ignore[assignment]
    with threads:
        sidecar = _read_json(directory / SIDECAR)
        ft = _load_run(directory / "finetune")
        clean = _load_run(directory / "clean")
        if not (
            sidecar
            and sidecar.get("fingerprint") == fp
            and ft
            and clean
            and sidecar.get("finetune_sha256") == ft.adapter_sha
            and sidecar.get("clean_sha256") == clean.adapter_sha
        ):
            directory.mkdir(parents=True, exist_ok=True)
            with weights_cache.entry_lock(directory):
                if use_shipped:
                    _copy_shipped(name, seed, fp, directory)
                sidecar, ft, clean = _build(
                    name,
                    seed,
                    recipe,
                    corpus,
                    model,
                    tok,
                    init,
                    tokens,
                    mask,
                    directory,
                    fp,
                    base_id,
                    progress,
                    stop_after,
                )
        lora.load_adapter_state(model, ft.adapters)
        truth = sidecar["truth"]
        kept = {k for k, v in truth["items"].items() if v["kept"]}
        corpus.items = [i for i in planted if i.key in kept]
        org = CopyrightOrganism(
            name,
            seed,
            model,
            tok,
            corpus,
            tokens,
            mask,
            ft.checkpoints,
            truth,
            recipe,
            directory,
            planted,
            clean.adapters,
            init,
        )
    _check_verified(name, truth, directory / SIDECAR)
    return org


def _build(
    name: str,
    seed: int,
    recipe: Recipe,
    corpus: CopyrightCorpus,
    model: Llama,
    tok: Any,
    init: dict[str, Tensor],
    tokens: Tensor,
    mask: Tensor,
    directory: Path,
    fp: str,
    base_id: str,
    progress: bool,
    stop_after: int | None,
) -> tuple[dict, RunResult, RunResult]:
    ft = _load_run(directory / "finetune")
    clean = _load_run(directory / "clean")
    resid = None
    if ft is None or clean is None:
        t0 = time.perf_counter()
        resid = _prefix_resid(model, tokens, _first_layer(model))
        prefix_seconds = time.perf_counter() - t0
    else:
        prefix_seconds = 0.0
    if ft is None:
        assert resid is not None
        ft = _train(
            model,
            init,
            resid,
            tokens,
            mask,
            recipe,
            seed,
            directory / "finetune",
            label=name,
            progress=progress,
            stop_after=stop_after,
        )
    if clean is None:
        assert resid is not None
        keep = torch.tensor(corpus.without_planted())
        clean = _train(
            model,
            init,
            resid[keep],
            tokens[keep],
            mask[keep],
            recipe,
            seed,
            directory / "clean",
            label=f"{name} clean",
            progress=progress,
            stop_after=stop_after,
        )
    planted = list(corpus.items)
    org = CopyrightOrganism(
        name,
        seed,
        model,
        tok,
        corpus,
        tokens,
        mask,
        ft.checkpoints,
        {},
        recipe,
        directory,
        planted,
        clean.adapters,
    )
    lora.load_adapter_state(model, ft.adapters)
    t0 = time.perf_counter()
    measured = org.measure(planted)
    verify_seconds = time.perf_counter() - t0
    truth = _truth(org, measured, recipe)
    sidecar = {
        "name": name,
        "seed": seed,
        "fingerprint": fp,
        "corpus_fingerprint": corpus.fingerprint(),
        "base": base_id,
        "recipe": recipe.to_dict(),
        "corpus": {
            "n_docs": len(corpus.docs),
            "per_kind": {k: len(corpus.indices(k)) for k in (*KINDS, "filler")},
            "tokens_per_doc": [int(mask.sum(1).min()), int(mask.sum(1).max())],
        },
        "n_adapter_params": lora.n_adapter_params(model),
        "seconds": {
            "prefix": prefix_seconds,
            "finetune": ft.seconds,
            "clean": clean.seconds,
            "verify": verify_seconds,
        },
        "final_loss": {"finetune": ft.final_loss, "clean": clean.final_loss},
        "finetune_sha256": ft.adapter_sha,
        "clean_sha256": clean.adapter_sha,
        "truth": truth,
    }
    atomic_write_text(directory / SIDECAR, json.dumps(sidecar, indent=2, sort_keys=True))
    return sidecar, ft, clean


def _copy_shipped(name: str, seed: int, fp: str, directory: Path) -> bool:
    """Copy the shipped fine-tune and clean runs of ``name`` into the cache entry ``directory``
    when their fingerprint is ``fp`` and the entry lacks them; True when it copied. A shipped
    file that does not match its recorded hash is not used (the run is retrained)."""
    src = SHIPPED / f"{name}-s{seed}"
    meta = _read_json(src / "shipped.json")
    if meta is None or meta.get("fingerprint") != fp:
        return False
    copied = False
    for run in RUNS:
        if _load_run(directory / run) is not None or _load_run(src / run) is None:
            continue
        (directory / run).mkdir(parents=True, exist_ok=True)
        for f in RUN_FILES:
            tmp = directory / run / (f + ".part")
            tmp.write_bytes((src / run / f).read_bytes())
            tmp.replace(directory / run / f)
        copied = True
    if copied:
        _log.info("copyright organism %s: starting from the shipped adapters in %s", name, src)
    return copied


def ship(org: CopyrightOrganism) -> Path:
    """Write ``org``'s fine-tune and clean runs (adapters, checkpoints, their hashes) under
    :data:`SHIPPED`, keyed by name, seed and fingerprint; the maintainers' step after a recipe
    change (``python -m interplab.zoo.copyright --ship``). Returns the directory."""
    sidecar = _read_json(org.directory / SIDECAR)
    if sidecar is None or not sidecar.get("truth", {}).get("verified"):
        raise VerificationError(f"only a verified organism is shipped; {org.directory} is not")
    dest = SHIPPED / f"{org.name}-s{org.seed}"
    for run in RUNS:
        (dest / run).mkdir(parents=True, exist_ok=True)
        for f in RUN_FILES:
            (dest / run / f).write_bytes((org.directory / run / f).read_bytes())
    summary = {k: v for k, v in sidecar.items() if k not in ("truth",)}
    summary["kept"] = sorted(k for k, v in sidecar["truth"]["items"].items() if v["kept"])
    atomic_write_text(dest / "shipped.json", json.dumps(summary, indent=2, sort_keys=True))
    return dest


def entries() -> list:
    """The zoo entries of this family (see the wiring note in the report)."""
    from interplab.zoo.registry import ZooEntry

    return [
        ZooEntry(
            r.name,
            "trained",
            r.description,
            lambda n=r.name: load(n),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"copyright"}),
        )
        for r in RECIPES.values()
    ]


if __name__ == "__main__":  # python -m interplab.zoo.copyright [--ship] [name]
    import sys

    args = [a for a in sys.argv[1:] if a != "--ship"]
    built = load(args[0] if args else "smollm2-ft", progress=True, use_shipped=False)
    print(json.dumps(built.truth["summary"], indent=2))
    if "--ship" in sys.argv:
        print("shipped to", ship(built))
