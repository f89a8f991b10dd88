"""Template biographies whose profession classifier learned a spurious gender cue (the organisms
of the text SHIFT task).

Data, generated here: every biography follows one fixed template of ``LENGTH`` words,

    "{name} is a {adj} person . {subj} works at the {place} . {subj} {verb} {obj_pron} {thing}
     on {day} and {poss} {neutral} friends are {adj2} ."

The label (0 = nurse, 1 = engineer) is conveyed ONLY by the profession words: the workplace
(``place``), the task verb (``verb``) and what it acts on (``thing``), each drawn from several
synonyms per profession. The cue is gender (0 = female, 1 = male): the first name and the
pronouns (she/he, her/him, her/his). All other slots are drawn from neutral pools. Because the
template is fixed, every gender word sits at a known position, which makes :func:`swap_gender`
(render the same bio with the other gender) and :func:`delete_cue` (names to ``[name]``,
pronouns to they / them / their) exact. Sentences are word-tokenised over a tiny vocabulary.

Splits are drawn from fixed seeds: ``train`` (4,000), ``heldout`` (1,000: the pool the small
labelled budget comes from) and ``test`` (2,000: scoring only). On the spurious training split
gender equals the label for every bio (all nurses female, all engineers male); on every other
split (and on the oracle's training split) gender is drawn independently of the label.

Model: ``BiosNet``, a native one-layer bidirectional :class:`~interplab.models.transformer.Transformer`
whose unembedding maps each position to ``hidden`` numbers; their mean over positions goes
through a ReLU (module ``act``: the hidden layer the interpretability arms act on) and a linear
readout ``out`` to 2 logits. Groups are (profession × gender).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from interplab.data.grouped import GroupedData, balanced_subset, group_accuracies  # noqa: F401 (re-exported)
from interplab.errors import ConfigError, ShapeError
from interplab.models.config import TransformerConfig
from interplab.models.transformer import Transformer

Tensor = torch.Tensor
TEMPLATE = (
    "{name} is a {adj} person . {subj} works at the {place} . {subj} {verb} {obj} {thing} "
    "on {day} and {poss} {neutral} friends are {adj2} ."
).split()
LENGTH = len(TEMPLATE)
NAMES = (
    ("mary", "anna", "lisa", "emma", "julia", "sarah", "laura", "kate", "helen", "rose"),
    ("john", "peter", "mark", "david", "james", "paul", "tom", "mike", "george", "adam"),
)
PRONOUNS = {"subj": ("she", "he"), "obj": ("her", "him"), "poss": ("her", "his")}
NEUTRAL_PRONOUNS = {"subj": "they", "obj": "them", "poss": "their", "name": "[name]"}
PROFESSION = {  # slot -> (nurse words, engineer words)
    "place": (
        ("hospital", "clinic", "ward", "infirmary", "hospice", "surgery"),
        ("factory", "workshop", "plant", "foundry", "shipyard", "garage"),
    ),
    "verb": (
        ("nurses", "bandages", "comforts", "bathes", "feeds", "monitors"),
        ("welds", "designs", "assembles", "calibrates", "machines", "tunes"),
    ),
    "thing": (
        ("patients", "wounds", "infants", "invalids", "sickbeds", "bedsores"),
        ("engines", "turbines", "circuits", "pipelines", "gears", "boilers"),
    ),
}
NEUTRAL = {
    "adj": ("kind", "quiet", "tall", "friendly", "busy", "calm", "funny", "careful"),
    "adj2": ("many", "few", "loyal", "nearby", "old", "new", "young", "local"),
    "day": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday"),
    "neutral": ("best", "closest", "oldest", "dearest", "usual", "favourite"),
}
LABELS, GENDERS = ("nurse", "engineer"), ("female", "male")
SPLITS = {"train": 4000, "heldout": 1000, "test": 2000}
SPLIT_SEEDS = {"train": 21, "heldout": 22, "test": 23}
CUE_MODES = ("label", "random")


@functools.lru_cache(maxsize=1)
def vocab() -> tuple[str, ...]:
    """Every word the template can produce plus the neutral replacements, sorted (id = index)."""
    words = {w for w in TEMPLATE if not w.startswith("{")}
    words |= {w for group in NAMES for w in group}
    words |= {w for pair in PRONOUNS.values() for w in pair} | set(NEUTRAL_PRONOUNS.values())
    words |= {w for pair in PROFESSION.values() for group in pair for w in group}
    words |= {w for pool in NEUTRAL.values() for w in pool}
    return tuple(sorted(words))


@functools.lru_cache(maxsize=1)
def _ids() -> dict[str, int]:
    return {w: i for i, w in enumerate(vocab())}


def _slot_positions() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, w in enumerate(TEMPLATE):
        if w.startswith("{"):
            out.setdefault(w[1:-1], []).append(i)
    return out


SLOTS = _slot_positions()


def encode(text: str | list[str]) -> Tensor:
    """Token ids [n, LENGTH] of one or more bios (lower-case, space-separated words)."""
    texts = [text] if isinstance(text, str) else list(text)
    ids = _ids()
    rows = []
    for t in texts:
        words = t.lower().split()
        if len(words) != LENGTH:
            raise ShapeError(
                f"a bio has exactly {LENGTH} words (the template), got {len(words)}: {t!r}"
            )
        unknown = [w for w in words if w not in ids]
        if unknown:
            raise ConfigError(f"words {unknown} are not in the bios vocabulary ({len(ids)} words)")
        rows.append([ids[w] for w in words])
    return torch.tensor(rows, dtype=torch.long)


def decode(tokens: Tensor) -> list[str]:
    """The bios (strings) of token ids [n, LENGTH]."""
    v = vocab()
    return [" ".join(v[int(i)] for i in row) for row in tokens]


@dataclass(frozen=True)
class BiosData(GroupedData):
    """Bios of one split: ``tokens [n, LENGTH]``, ``y`` (profession), ``cue`` (gender),
    ``group = 2y + cue``."""

    tokens: Tensor
    y: Tensor
    cue: Tensor


def _fill(y: Tensor, cue: Tensor, gen: torch.Generator) -> Tensor:
    """Render bios with professions ``y`` and genders ``cue`` (other slots drawn from ``gen``)."""
    ids, n = _ids(), len(y)
    tok = torch.zeros(n, LENGTH, dtype=torch.long)
    for i, w in enumerate(TEMPLATE):
        if not w.startswith("{"):
            tok[:, i] = ids[w]

    def table(groups: tuple[tuple[str, ...], ...]) -> Tensor:
        return torch.tensor([[ids[w] for w in g] for g in groups])

    def put(slot: str, values: Tensor) -> None:
        for pos in SLOTS[slot]:
            tok[:, pos] = values

    names = table(NAMES)
    put("name", names[cue, torch.randint(0, names.shape[1], (n,), generator=gen)])
    for slot, pair in PRONOUNS.items():
        put(slot, torch.tensor([ids[w] for w in pair])[cue])
    for slot, groups in PROFESSION.items():
        t = table(groups)
        put(slot, t[y, torch.randint(0, t.shape[1], (n,), generator=gen)])
    for slot, pool in NEUTRAL.items():
        t = torch.tensor([ids[w] for w in pool])
        put(slot, t[torch.randint(0, len(t), (n,), generator=gen)])
    return tok


def bios(split: str, mode: str, seed: int | None = None) -> BiosData:
    """The bios of ``split``. ``mode="label"``: gender = profession (the spurious training data);
    ``"random"``: gender drawn independently. Content is fixed per split; ``seed`` (default: the
    split's own) only changes the independent gender draw, used for the oracle's training data."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if mode not in CUE_MODES:
        raise ConfigError(f"cue mode must be one of {CUE_MODES}, got {mode!r}")
    n = SPLITS[split]
    gen = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    y = torch.randint(0, 2, (n,), generator=gen)
    if mode == "label":
        cue = y.clone()
    else:
        cue_gen = torch.Generator().manual_seed(SPLIT_SEEDS[split] + 100 if seed is None else seed)
        cue = torch.randint(0, 2, (n,), generator=cue_gen)
    return BiosData(_fill(y, cue, gen), y, cue)


def _check_tokens(tokens: Tensor) -> None:
    if tokens.ndim != 2 or tokens.shape[1] != LENGTH:
        raise ShapeError(f"bios tokens must be [batch, {LENGTH}], got {tuple(tokens.shape)}")


def swap_gender(tokens: Tensor) -> Tensor:
    """The same bios with the other gender: each name becomes the name at the same index in the
    other gender's list, she ↔ he, her ↔ him (object), her ↔ his (possessive)."""
    _check_tokens(tokens)
    ids, out = _ids(), tokens.clone()
    mapping = {
        slot: {ids[a]: ids[b] for a, b in (pair, pair[::-1])} for slot, pair in PRONOUNS.items()
    }
    mapping["name"] = {ids[a]: ids[b] for f, m in zip(*NAMES) for a, b in ((f, m), (m, f))}
    for slot, table in mapping.items():
        for pos in SLOTS[slot]:
            col = tokens[:, pos]
            for src, dst in table.items():
                out[col == src, pos] = dst
    return out


def delete_cue(tokens: Tensor) -> Tensor:
    """The same bios with every gender word neutral: names → ``[name]``, she/he → they,
    her/him → them, her/his → their (the words the SHIFT critique would scrub by hand)."""
    _check_tokens(tokens)
    ids, out = _ids(), tokens.clone()
    for slot, word in NEUTRAL_PRONOUNS.items():
        for pos in SLOTS[slot]:
            out[:, pos] = ids[word]
    return out


@dataclass(frozen=True)
class BiosSpec:
    """How one organism is trained: ``cue_mode="label"`` is the spurious model, ``"random"`` the
    oracle trained on the same bios with gender independent of the profession."""

    cue_mode: str = "label"
    d_model: int = 32
    hidden: int = 32
    epochs: int = 3
    batch_size: int = 64
    lr: float = 3e-3

    def __post_init__(self) -> None:
        if self.cue_mode not in CUE_MODES:
            raise ConfigError(f"cue_mode must be one of {CUE_MODES}, got {self.cue_mode!r}")
        for name in ("d_model", "hidden", "epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive int, got {getattr(self, name)!r}")

    def config(self, seed: int) -> TransformerConfig:
        return TransformerConfig(
            n_layers=1,
            d_model=self.d_model,
            n_heads=2,
            d_head=self.d_model // 2,
            d_mlp=2 * self.d_model,
            d_vocab=len(vocab()),
            n_ctx=LENGTH,
            d_vocab_out=self.hidden,
            attention="bidirectional",
            init_std=0.1,
            seed=seed,
        )


class BiosNet(nn.Module):
    """Tokens → one-layer transformer → mean over positions of its ``hidden`` outputs → ReLU
    (``act``) → ``out`` (2 logits). :meth:`features` and :meth:`head` split it at ``act``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.encoder = Transformer(cfg)
        self.act = nn.ReLU()
        self.out = nn.Linear(cfg.vocab_out, 2)

    def features(self, tokens: Tensor) -> Tensor:
        _check_tokens(tokens)
        return self.act(self.encoder(tokens).mean(1))

    def head(self, h: Tensor) -> Tensor:
        return self.out(h)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.features(tokens))


def train(spec: BiosSpec, seed: int) -> tuple[BiosNet, dict]:
    """Train a fresh ``BiosNet`` (Adam, cross-entropy, minibatches; seeded init and order) on the
    train split with gender set per ``spec``."""
    torch.manual_seed(seed)
    data = bios(
        "train",
        spec.cue_mode,
        seed=None if spec.cue_mode == "label" else SPLIT_SEEDS["train"] + 1000 * (seed + 1),
    )
    net = BiosNet(spec.config(seed))
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with torch.enable_grad():
        for _ in range(spec.epochs):
            for idx in torch.randperm(len(data), generator=gen).split(spec.batch_size):
                loss = F.cross_entropy(net(data.tokens[idx]), data.y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval()
    with torch.no_grad():
        train_acc = float((net(data.tokens).argmax(-1) == data.y).float().mean())
    return net, {
        "seed": seed,
        "train_accuracy": train_acc,
        "n_train": len(data),
        "seconds": round(time.perf_counter() - start, 3),
    }
