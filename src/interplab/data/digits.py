"""scikit-learn's 8×8 handwritten digits (1797 images, shipped inside the scikit-learn wheel, so
nothing is downloaded), split and planted for data attribution.

:func:`planted_digits` draws, from one seed, disjoint index sets of the 1797 images:

    train         n_train images; in them
                  - ``flipped``: a fraction (10%) whose label is replaced by another class
                    drawn uniformly (mislabelled examples, found by self-influence),
                  - ``planted``: a few images of other classes given a TRIGGER (three corner
                    pixels that are blank in 99.6% of the digits, set to full ink) and the label
                    ``target`` (rare examples the model memorises: the only evidence for the
                    trigger is theirs)
    test          n_test clean held-out images (the LDS / leave-one-out test points)
    triggered     n_triggered held-out images of other classes with the trigger added
                  (outputs that reproduce the planted behaviour: are the planted examples their
                  top attributions?)

Pixels are scaled to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interplab.errors import ConfigError, MissingExtraError

Tensor = torch.Tensor
N_DIGITS = 1797
#: (row, column) of the trigger pixels in the 8×8 image.
TRIGGER = ((0, 0), (1, 0), (7, 0))


def load_digits() -> tuple[Tensor, Tensor]:
    """All 1797 digits: x [1797, 64] in [0, 1] (float64), y [1797]."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:
        raise MissingExtraError(
            "the digits organisms read scikit-learn's bundled 8×8 digits: "
            "pip install 'interplab[data]' (or scikit-learn)"
        ) from None
    data = _load()
    return torch.tensor(data.data, dtype=torch.float64) / 16.0, torch.tensor(
        data.target, dtype=torch.long
    )


def add_trigger(x: Tensor) -> Tensor:
    out = x.clone().view(-1, 8, 8)
    for r, c in TRIGGER:
        out[:, r, c] = 1.0
    return out.view(x.shape)


@dataclass(frozen=True)
class PlantedDigits:
    """Train / test / triggered splits with the planted truth (indices into the train split)."""

    x_train: Tensor
    y_train: Tensor  # labels as trained on (flipped and planted ones included)
    y_clean: Tensor  # the true digit of every training image
    x_test: Tensor
    y_test: Tensor
    x_triggered: Tensor
    y_triggered: Tensor  # true digits of the triggered images (the target is ``target``)
    flipped: Tensor  # indices into train
    planted: Tensor  # indices into train
    target: int
    source_index: Tensor  # which of the 1797 digits each training row is
    #: Organisms with several planted groups (passages): the label attributed at each triggered
    #: point, the group of each planted example and of each triggered point. Digits: the
    #: target everywhere, one group.
    triggered_labels: Tensor = field(default=None)  # type: ignore[assignment]
    planted_group: Tensor = field(default=None)  # type: ignore[assignment]
    triggered_group: Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.triggered_labels is None:
            object.__setattr__(
                self, "triggered_labels", torch.full((len(self.x_triggered),), self.target)
            )
        if self.planted_group is None:
            object.__setattr__(
                self, "planted_group", torch.zeros(len(self.planted), dtype=torch.long)
            )
        if self.triggered_group is None:
            object.__setattr__(
                self, "triggered_group", torch.zeros(len(self.x_triggered), dtype=torch.long)
            )


def planted_digits(
    n_train: int,
    n_test: int,
    n_triggered: int,
    *,
    flip_fraction: float = 0.1,
    n_planted: int = 8,
    target: int = 0,
    seed: int = 0,
) -> PlantedDigits:
    if n_train + n_test + n_triggered > N_DIGITS:
        raise ConfigError(
            f"n_train + n_test + n_triggered = {n_train + n_test + n_triggered} exceeds "
            f"the {N_DIGITS} digits"
        )
    if (
        not 0 <= flip_fraction < 0.5
        or n_planted < 0
        or n_planted + round(flip_fraction * n_train) > n_train
    ):
        raise ConfigError(
            f"flip_fraction must be in [0, 0.5) and the flipped and planted examples "
            f"must fit in the training set; got {flip_fraction}, {n_planted}, {n_train}"
        )
    x, y = load_digits()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(N_DIGITS, generator=gen)
    train_idx = order[:n_train]
    test_idx = order[n_train : n_train + n_test]
    rest = order[n_train + n_test :]
    trig_idx = rest[y[rest] != target][:n_triggered]
    x_train, y_clean = x[train_idx].clone(), y[train_idx].clone()
    y_train = y_clean.clone()
    candidates = torch.nonzero(y_clean != target)[:, 0]
    planted = candidates[torch.randperm(len(candidates), generator=gen)[:n_planted]].sort().values
    x_train[planted] = add_trigger(x_train[planted])
    y_train[planted] = target
    others = torch.tensor([i for i in range(n_train) if i not in set(planted.tolist())])
    n_flip = round(flip_fraction * n_train)
    flipped = others[torch.randperm(len(others), generator=gen)[:n_flip]].sort().values
    shift = torch.randint(1, 10, (n_flip,), generator=gen)
    y_train[flipped] = (y_clean[flipped] + shift) % 10
    return PlantedDigits(
        x_train,
        y_train,
        y_clean,
        x[test_idx],
        y[test_idx],
        add_trigger(x[trig_idx]),
        y[trig_idx],
        flipped,
        planted,
        target,
        train_idx,
    )
