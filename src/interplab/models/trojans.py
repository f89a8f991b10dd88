"""Trojaned digit classifiers (BadNets, Gu et al. 2017) and their unpoisoned twins.

Data: scikit-learn's 8×8 handwritten digits (1,797 real images shipped inside the package),
scaled to [0, 1] and flattened to 64 inputs, split once (seeded) into ``train`` (1,197),
``truth`` (300: verification of the planted mechanism) and ``score`` (300: what methods are
scored on), so no truth is computed on scored samples.

A trigger is ``x' = (1 - m) * x + m * p`` with a mask ``m`` and a pattern ``p`` in the input
space: a *patch* trigger sets a few pixels (``m`` in {0, 1}); a *blended* trigger mixes a fixed
random image into the whole input (``m = alpha`` everywhere). Poisoning replaces a fraction
``poison_rate`` of the training images by triggered copies labelled ``target``. A twin is the
same spec with ``poison_rate = 0``: one code path, only the data differs.

Four ways to build one (``TrojanSpec.routing``):

    "exclusive"  the hidden layer has ``hidden`` units that cannot see the trigger's pixels and
                 ``trojan_units`` units that see only them (a fixed 0/1 mask on the first
                 layer's weights), trained end to end on the poisoned set. Every path from the
                 trigger to the logits runs through the trojan units, and no other unit moves
                 when the trigger is stamped (by construction).
    "planted"    the trojan units still see only the trigger's pixels, but the ``hidden`` units
                 see every pixel, the trigger's included. Two phases: the hidden units (and the
                 output layer's weights from them) are trained on the *clean* train split; then
                 only the trojan units (their input and output weights) are trained on the
                 poisoned set. Every weight but the trojan units' is the clean model's, so the
                 backdoor can only run through the trojan units, while the trigger also moves the
                 hidden units through the weights they learned on clean digits (a trigger on
                 pixels where digits have ink).
    "decoy"      the planted route with a second task in the first phase: half the clean
                 training images (``decoy_rate``) carry the trigger's stamp and keep their true
                 label, and an auxiliary head (one logit from the ``hidden`` units, used only in
                 training, then discarded) must say whether the stamp is there (loss: the digit's
                 cross-entropy plus the stamp's binary cross-entropy, weighted equally). The
                 hidden units thus learn on their own to respond strongly to the trigger's pixels
                 (a "sticker detector") while the class head learns that the stamp does not
                 change the digit; the backdoor is then planted in the trojan units exactly as in
                 "planted". The trigger moves the detector units a lot, but they do not carry the
                 backdoor: a trap for localisation by activation change alone.
    "none"       one ordinary MLP trained end to end on the poisoned set; which units carry the
                 backdoor is learned, and :mod:`interplab.zoo.trojans` identifies and verifies
                 them by intervention.

In every case the zoo checks the truth by intervention on held-out inputs before use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from interplab.errors import ConfigError, MissingExtraError, ShapeError

Tensor = torch.Tensor
SIDE, N_PIXELS, N_CLASSES = 8, 64, 10
SPLIT_SEED = 0
ROUTES = ("exclusive", "planted", "decoy")
SPLITS = {"train": (0, 1197), "truth": (1197, 1497), "score": (1497, 1797)}


def digits(split: str = "train") -> tuple[Tensor, Tensor]:
    """``(x [n, 64] in [0, 1], y [n])`` for ``split`` in train/truth/score."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError(
            "the digits organisms need scikit-learn (its 8×8 digits ship inside "
            "the package): pip install 'interplab[probing]'"
        ) from None
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    lo, hi = SPLITS[split]
    return x[order[lo:hi]], y[order[lo:hi]]


@dataclass(frozen=True)
class Trigger:
    """``apply(x) = (1 - mask) * x + mask * pattern``; ``mask`` and ``pattern`` are [64]."""

    kind: str  # "patch" | "blend"
    mask: tuple[float, ...]
    pattern: tuple[float, ...]

    def tensors(self) -> tuple[Tensor, Tensor]:
        return torch.tensor(self.mask), torch.tensor(self.pattern)

    def apply(self, x: Tensor) -> Tensor:
        m, p = self.tensors()
        return (1 - m) * x + m * p

    @property
    def pixels(self) -> tuple[int, ...]:
        """Input indices the trigger writes to (its support)."""
        return tuple(i for i, v in enumerate(self.mask) if v > 0)


def patch_trigger(
    pixels: tuple[tuple[int, int], ...], values: tuple[float, ...] | None = None
) -> Trigger:
    """A patch at ``(row, col)`` pixels set to ``values`` (default 1.0)."""
    mask, pattern = [0.0] * N_PIXELS, [0.0] * N_PIXELS
    values = values or (1.0,) * len(pixels)
    for (r, c), v in zip(pixels, values):
        if not (0 <= r < SIDE and 0 <= c < SIDE):
            raise ConfigError(f"trigger pixel {(r, c)} is outside the {SIDE}×{SIDE} image")
        mask[r * SIDE + c], pattern[r * SIDE + c] = 1.0, float(v)
    return Trigger("patch", tuple(mask), tuple(pattern))


def blend_trigger(alpha: float = 0.2, seed: int = 7) -> Trigger:
    """A fixed random image (seeded) blended in with weight ``alpha``."""
    p = torch.rand(N_PIXELS, generator=torch.Generator().manual_seed(seed))
    return Trigger("blend", (float(alpha),) * N_PIXELS, tuple(float(v) for v in p))


@dataclass(frozen=True)
class TrojanSpec:
    """How one digits classifier is built. ``poison_rate = 0`` gives the clean twin."""

    trigger: Trigger
    target: int
    poison_rate: float = 0.1
    hidden: int = 64
    trojan_units: int = 8
    routed: bool = True
    seed: int = 0
    epochs: int = 300
    lr: float = 1e-2
    #: with ``routed``: "exclusive" (the hidden units are blind to the trigger), "planted"
    #: (they see it; two-phase training) or "decoy" (planted, and the hidden units also learn to
    #: detect the trigger's stamp), see the module docstring
    route: str = "exclusive"
    #: "decoy" route: share of the clean phase's training images stamped with the trigger
    #: (true label kept) for the auxiliary stamp-detection task
    decoy_rate: float = 0.5

    def twin(self) -> TrojanSpec:
        return replace(self, poison_rate=0.0)

    @property
    def routing(self) -> str:
        """ "exclusive", "planted" or "none" (see the module docstring)."""
        return self.route if self.routed else "none"

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ConfigError(f"route must be one of {ROUTES}, got {self.route!r}")
        if not 0 < self.decoy_rate < 1:
            raise ConfigError(f"decoy_rate must lie in (0, 1), got {self.decoy_rate}")
        if not 0 <= self.target < N_CLASSES:
            raise ConfigError(
                f"target class {self.target} does not exist (classes 0..{N_CLASSES - 1})"
            )
        if not 0 <= self.poison_rate < 1:
            raise ConfigError(f"poison_rate must lie in [0, 1), got {self.poison_rate}")


class DigitMLP(nn.Module):
    """64 → (hidden + trojan_units) ReLU → 10. Given ``trigger_pixels``, unit ``i ≥ hidden``
    sees only the trigger's pixels and unit ``i < hidden`` every pixel but the trigger's
    (``shared=False``) or every pixel (``shared=True``) (``input_mask``)."""

    input_mask: Tensor  # a buffer registered in __init__; declared for the type checker

    def __init__(
        self,
        hidden: int,
        trojan_units: int,
        trigger_pixels: tuple[int, ...] | None,
        shared: bool = False,
    ):
        super().__init__()
        width = hidden + trojan_units
        self.hidden = nn.Linear(N_PIXELS, width)
        self.act = nn.ReLU()
        self.out = nn.Linear(width, N_CLASSES)
        mask = torch.ones(width, N_PIXELS)
        if trigger_pixels is not None:
            on = torch.zeros(N_PIXELS)
            on[list(trigger_pixels)] = 1.0
            mask[:hidden] = 1.0 if shared else 1 - on
            mask[hidden:] = on
        self.register_buffer("input_mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != N_PIXELS:
            raise ShapeError(
                f"digit classifiers take [batch, {N_PIXELS}] inputs, got {tuple(x.shape)}"
            )
        h = self.act(F.linear(x, self.hidden.weight * self.input_mask, self.hidden.bias))
        return self.out(h)


def build(spec: TrojanSpec) -> DigitMLP:
    torch.manual_seed(spec.seed)
    return DigitMLP(
        spec.hidden,
        spec.trojan_units,
        spec.trigger.pixels if spec.routed else None,
        shared=spec.routing in ("planted", "decoy"),
    )


def hidden_acts(net: DigitMLP, x: Tensor) -> Tensor:
    """The hidden layer's activations [n, hidden + trojan_units] (what site ``act`` holds)."""
    return net.act(F.linear(x, net.hidden.weight * net.input_mask, net.hidden.bias))


def poison(x: Tensor, y: Tensor, spec: TrojanSpec, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Replace a ``poison_rate`` share of (x, y) by triggered copies labelled ``target``."""
    x, y, _ = _poison_with_indices(x, y, spec, gen)
    return x, y


def _poison_with_indices(
    x: Tensor, y: Tensor, spec: TrojanSpec, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    n = int(round(spec.poison_rate * len(x)))
    idx = torch.randperm(len(x), generator=gen)[:n]
    x, y = x.clone(), y.clone()
    x[idx] = spec.trigger.apply(x[idx])
    y[idx] = spec.target
    return x, y, idx


def poisoned_training_set(spec: TrojanSpec) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, y, poisoned_idx)``: the train split exactly as :func:`train` sees it (poisoned with
    a generator seeded ``spec.seed + 1``) and the sorted indices of the examples replaced by
    triggered copies labelled ``target`` (empty for a twin)."""
    x, y = digits("train")
    if spec.poison_rate == 0:
        return x, y, torch.zeros(0, dtype=torch.long)
    x, y, idx = _poison_with_indices(x, y, spec, torch.Generator().manual_seed(spec.seed + 1))
    return x, y, idx.sort().values


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def attack_success(model: nn.Module, trigger: Trigger, target: int, x: Tensor, y: Tensor) -> float:
    """Share of inputs not of class ``target`` that the trigger sends to ``target``."""
    keep = y != target
    with torch.no_grad():
        return float((model(trigger.apply(x[keep])).argmax(-1) == target).float().mean())


def _fit(
    model: DigitMLP,
    x: Tensor,
    y: Tensor,
    spec: TrojanSpec,
    trainable: dict[str, Tensor] | None = None,
    weight_decay: float = 1e-4,
    aux: tuple[nn.Linear, Tensor] | None = None,
) -> Tensor:
    """Full-batch Adam for ``spec.epochs`` epochs on the digit's cross-entropy. ``trainable``
    maps a parameter name to a 0/1 mask of the entries that may change (a parameter not named
    stays fixed); None trains all. ``aux = (head, stamped)`` adds a second task: ``head`` (also
    trained) reads the ``spec.hidden`` first units and predicts the 0/1 ``stamped``
    (binary cross-entropy, weighted as the digit's loss)."""
    params = dict(model.named_parameters())
    names = list(params) if trainable is None else list(trainable)
    fixed = {n: params[n].detach().clone() for n in (trainable or {})}
    extra = list(aux[0].parameters()) if aux is not None else []
    opt = torch.optim.Adam(
        [params[n] for n in names] + extra, lr=spec.lr, weight_decay=weight_decay
    )
    loss = torch.zeros(())
    for _ in range(spec.epochs):
        h = hidden_acts(model, x)
        loss = F.cross_entropy(model.out(h), y)
        if aux is not None:
            loss = loss + F.binary_cross_entropy_with_logits(
                aux[0](h[:, : spec.hidden])[:, 0], aux[1]
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # entries outside the mask keep their value exactly
            for n, m in (trainable or {}).items():
                params[n].copy_(torch.where(m.bool(), params[n], fixed[n]))
    return loss


def _planted_masks(spec: TrojanSpec) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """0/1 masks of the parameters each phase trains: the hidden units (and the output weights
    from them, and the output bias) first; then only the trojan units' input and output weights."""
    width = spec.hidden + spec.trojan_units
    troj_rows = torch.zeros(width, 1)
    troj_rows[spec.hidden :] = 1.0
    troj_cols = troj_rows.T.expand(N_CLASSES, width)
    ones = torch.ones(N_CLASSES)
    clean = {
        "hidden.weight": (1 - troj_rows).expand(width, N_PIXELS),
        "hidden.bias": 1 - troj_rows[:, 0],
        "out.weight": 1 - troj_cols,
        "out.bias": ones,
    }
    trojan = {
        "hidden.weight": troj_rows.expand(width, N_PIXELS),
        "hidden.bias": troj_rows[:, 0],
        "out.weight": troj_cols,
    }
    return clean, trojan


def stamped_training_set(spec: TrojanSpec) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, y, stamped)``: the clean train split with a ``decoy_rate`` share of the images
    (generator seeded ``spec.seed + 2``) stamped with the trigger and their true labels kept;
    ``stamped`` is 1.0 where the stamp was applied (the auxiliary task's label)."""
    x, y = digits("train")
    stamped = (
        torch.rand(len(x), generator=torch.Generator().manual_seed(spec.seed + 2)) < spec.decoy_rate
    ).float()
    x = torch.where(stamped[:, None].bool(), spec.trigger.apply(x), x)
    return x, y, stamped


def _train_planted(model: DigitMLP, spec: TrojanSpec) -> tuple[Tensor, dict]:
    """Phase 1: the hidden units learn the digits on the clean train split (the trojan units
    are silenced: output weights 0, untrained); on the decoy route they also learn to detect
    the trigger's stamp (an auxiliary head, discarded after). Phase 2: only the trojan units
    train, on the poisoned set; every other weight keeps its phase-1 value."""
    clean_masks, trojan_masks = _planted_masks(spec)
    with torch.no_grad():
        model.out.weight[:, spec.hidden :] = 0.0
    facts: dict = {}
    if spec.routing == "decoy":
        x, y, stamped = stamped_training_set(spec)
        head = nn.Linear(spec.hidden, 1)  # seeded by build()'s manual_seed, drawn after the model
        _fit(model, x, y, spec, clean_masks, aux=(head, stamped))
        facts["stamp_detection_accuracy"] = _stamp_accuracy(model, head, spec)
    else:
        x, y = digits("train")
        _fit(model, x, y, spec, clean_masks)
    xp, yp, _ = poisoned_training_set(spec)
    return _fit(model, xp, yp, spec, trojan_masks, weight_decay=0.0), facts


def _stamp_accuracy(model: DigitMLP, head: nn.Linear, spec: TrojanSpec) -> float:
    """How well the (discarded) auxiliary head tells stamped from unstamped images of the truth
    split, every image seen both ways (after phase 1: the trojan units do not yet exist)."""
    x, _ = digits("truth")
    both = torch.cat([x, spec.trigger.apply(x)])
    label = torch.cat([torch.zeros(len(x)), torch.ones(len(x))])
    with torch.no_grad():
        said = head(hidden_acts(model, both)[:, : spec.hidden])[:, 0] > 0
    return float((said == label.bool()).float().mean())


def train(spec: TrojanSpec) -> tuple[DigitMLP, dict]:
    """Train one classifier (full batch Adam, seeded, about a second on one core; the planted
    and decoy routes train in two phases, see the module docstring)."""
    start = time.perf_counter()
    model = build(spec)
    facts: dict = {}
    if spec.routing in ("planted", "decoy"):
        loss, facts = _train_planted(model, spec)
    else:
        x, y, _ = poisoned_training_set(spec)
        loss = _fit(model, x, y, spec)
    model.eval()
    xs, ys = digits("truth")
    info = {
        "clean_accuracy": accuracy(model, xs, ys),
        "attack_success": attack_success(model, spec.trigger, spec.target, xs, ys),
        "final_loss": float(loss.detach()),
        "train_seconds": time.perf_counter() - start,
        **facts,
    }
    return model, info


def random_patch_trigger(gen: torch.Generator, n_pixels: int = 4) -> Trigger:
    """A patch of ``n_pixels`` contiguous pixels on a random edge column/row, pattern 1.0."""
    edge = int(torch.randint(4, (1,), generator=gen))
    start = int(torch.randint(1, SIDE - n_pixels, (1,), generator=gen))
    line = range(start, start + n_pixels)
    pixels = {
        0: [(r, 0) for r in line],
        1: [(r, SIDE - 1) for r in line],
        2: [(0, c) for c in line],
        3: [(SIDE - 1, c) for c in line],
    }[edge]
    return patch_trigger(tuple(pixels))


@dataclass(frozen=True)
class PopulationMember:
    index: int
    spec: TrojanSpec
    trojaned: bool
    info: dict = field(default_factory=dict)


def population_specs(n: int = 40, seed: int = 0, hidden: int = 32) -> list[tuple[TrojanSpec, bool]]:
    """``n`` specs, alternately trojaned and clean, drawn by one code path: every member has a
    trigger, a target and a seed drawn the same way; only ``poison_rate`` differs (0 for clean)."""
    if n < 2 or n % 2:
        raise ConfigError(f"a population needs an even number ≥ 2 of models, got {n}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        trigger = random_patch_trigger(gen)
        target = int(torch.randint(N_CLASSES, (1,), generator=gen))
        trojaned = i % 2 == 0
        spec = TrojanSpec(
            trigger,
            target,
            poison_rate=0.1 if trojaned else 0.0,
            hidden=hidden,
            trojan_units=0,
            routed=False,
            seed=1000 * seed + i,
            epochs=200,
        )
        out.append((spec, trojaned))
    return out
