"""Choose a dictionary's sparsity from its activations alone: ``sweep_sparsity(...) -> SparsitySweep``.

The rule (diminishing returns on held-out activations). Settings of one sparsity knob are
tried in a fixed order from sparsest to densest (a *ladder*: TopK's k doubling 1, 2, 4, ...;
an L1 coefficient falling by about √10 per rung). Each setting trains a dictionary on ``x``
(target ``y``) and is scored by its variance explained on *held-out* activations. The chosen
setting is the first whose next rung gains less than ``min_gain`` variance explained; if every
rung still gains that much, the densest one tried. Training stops as soon as the choice is
made, so a sweep costs (chosen rung + 2) trainings at most.

The rule looks at gains, not at a level ("the smallest k reaching 90 % variance explained"):
sweep runs are short to keep the sweep cheap, and a short run under-trains every setting by a
similar amount, which lowers the levels but hardly the gains. That holds for TopK's k and for an
L1 coefficient; it does not hold for JumpReLU's L0 coefficient, whose thresholds move too slowly
for a short run to show any difference (held-out variance explained is flat across a 100x range),
so sweep that knob only with full-length runs.

The sweep sees tensors of activations and a config, nothing else: no organism, no true
features, no true L0. Whatever it picks, it picked from what a practitioner could measure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.dictionaries.config import DictionaryConfig
from interplab.methods.dictionaries.modules import SparseDictionary
from interplab.methods.dictionaries.sources import TensorSource
from interplab.methods.dictionaries.train import train_dictionary

Tensor = torch.Tensor

#: TopK's ladder; :func:`k_ladder` keeps the rungs that fit the activations.
K_LADDER = (1, 2, 4, 8, 16, 32, 64, 128)
#: The ReLU's L1 coefficient per unit of activation scale (:func:`activation_scale`), sparsest first.
L1_LADDER = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
#: JumpReLU's L0 coefficient per unit of activation scale squared, sparsest first (full-length runs only).
L0_LADDER = (0.3, 0.1, 0.03, 0.01, 0.003)
#: Held-out variance explained a rung must add to be worth its extra density.
MIN_GAIN = 0.05
#: The knobs a sweep may turn.
SPARSITY_FIELDS = ("k", "l1_coefficient", "l0_coefficient")


@dataclass(frozen=True)
class SparsitySweep:
    """What a sweep tried and what it chose.

    Attributes:
        field: the DictionaryConfig field swept ("k", "l1_coefficient" or "l0_coefficient").
        values: the settings trained, sparsest first (a prefix of the ladder).
        variance_explained: held-out variance explained per setting tried.
        l0: held-out active latents per sample per setting tried.
        chosen: the setting picked by the rule.
        min_gain: the rule's threshold on the gain per rung.
        steps: training steps of each sweep run.
        seconds: training time of every run together.
        dictionary: the chosen run's dictionary (eval mode).
    """

    field: str
    values: tuple[float, ...]
    variance_explained: tuple[float, ...]
    l0: tuple[float, ...]
    chosen: float
    min_gain: float
    steps: int
    seconds: float = dataclass_field(default=0.0, compare=False)
    dictionary: SparseDictionary | None = dataclass_field(default=None, compare=False, repr=False)

    def to_json(self) -> dict:
        return {
            "field": self.field,
            "values": list(self.values),
            "variance_explained": [round(v, 5) for v in self.variance_explained],
            "l0": [round(v, 4) for v in self.l0],
            "chosen": self.chosen,
            "min_gain": self.min_gain,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "rule": "first setting (sparsest first) whose next rung adds less than min_gain "
            "held-out variance explained; else the densest tried",
        }


def activation_scale(x: Tensor) -> float:
    """RMS distance of activations x [n, d] from their mean: the unit that makes an L1
    coefficient (or a threshold) mean the same thing at any activation scale."""
    x = x.detach().float()
    return float(((x - x.mean(0)) ** 2).sum(-1).mean().sqrt())


def k_ladder(d_in: int, d_latent: int) -> tuple[int, ...]:
    """The rungs of :data:`K_LADDER` below ``d_in`` (from k = d_in on, a TopK dictionary can
    reconstruct anything and variance explained stops saying anything about sparsity) and at
    most ``d_latent``; at least (1,)."""
    ladder = tuple(k for k in K_LADDER if k < d_in and k <= d_latent)
    return ladder or (1,)


def choose(
    values: Sequence[float], variance_explained: Sequence[float], min_gain: float = MIN_GAIN
) -> float:
    """The rule on a finished sweep: the first value whose successor gains < ``min_gain``."""
    for i in range(len(values) - 1):
        if variance_explained[i + 1] - variance_explained[i] < min_gain:
            return values[i]
    return values[-1]


def sweep_sparsity(
    config: DictionaryConfig,
    field: str,
    ladder: Sequence[float],
    x: Tensor,
    held_out_x: Tensor,
    *,
    y: Tensor | None = None,
    held_out_y: Tensor | None = None,
    steps: int | None = None,
    min_gain: float = MIN_GAIN,
) -> SparsitySweep:
    """Pick ``config.<field>`` from ``ladder`` (sparsest first) by the module's rule.

    Args:
        config: everything but the swept field.
        field: "k" (TopK), "l1_coefficient" (ReLU) or "l0_coefficient" (JumpReLU).
        ladder: the settings, sparsest first, fixed before looking at any activations.
        x: training activations [n, d_in]; y: a transcoder's targets [n, d_out] (None: x).
        held_out_x, held_out_y: activations the sweep scores on and never trains on.
        steps: training steps of each run (default ``config.steps``; with the full schedule the
            chosen run's ``dictionary`` is the finished dictionary, else retrain it).
    """
    if field not in SPARSITY_FIELDS:
        raise ConfigError(f"field must be one of {SPARSITY_FIELDS}, got {field!r}")
    if not ladder:
        raise ConfigError("the ladder is empty; give at least one setting, sparsest first")
    for name, t in (("x", x), ("held_out_x", held_out_x), ("y", y), ("held_out_y", held_out_y)):
        if t is not None and not isinstance(t, Tensor):
            raise ConfigError(
                f"{name} must be a tensor of activations, got a {type(t).__name__}; the "
                "sweep chooses from activations only"
            )
    if (y is None) != (held_out_y is None) or (y is None) == config.is_transcoder:
        raise ShapeError(
            "give y and held_out_y exactly when the config is a transcoder (d_out set)"
        )
    steps = config.steps if steps is None else steps
    source = TensorSource(x, y, seed=config.seed)
    target = (held_out_x if held_out_y is None else held_out_y).float()
    var = float(((target - target.mean(0)) ** 2).sum())
    tried: list[float] = []
    ves: list[float] = []
    l0s: list[float] = []
    dictionaries: list[SparseDictionary] = []
    seconds = 0.0
    for value in ladder:
        changes: dict[str, Any] = {field: value, "steps": steps}
        trained = train_dictionary(source, dataclasses.replace(config, **changes))
        seconds += trained.seconds
        with torch.no_grad():
            latents = trained.dictionary.encode(held_out_x.float())
            recon = trained.dictionary.decode(latents)
        ves.append(1.0 - float(((target - recon) ** 2).sum()) / var if var > 0 else float("nan"))
        l0s.append(float((latents != 0).float().sum(-1).mean()))
        tried.append(value)
        dictionaries.append(trained.dictionary)
        if len(ves) >= 2 and ves[-1] - ves[-2] < min_gain:
            break
    chosen = choose(tried, ves, min_gain)
    return SparsitySweep(
        field,
        tuple(tried),
        tuple(ves),
        tuple(l0s),
        chosen,
        min_gain,
        steps,
        seconds,
        dictionaries[tried.index(chosen)],
    )


__all__ = [
    "K_LADDER",
    "L0_LADDER",
    "L1_LADDER",
    "MIN_GAIN",
    "SparsitySweep",
    "activation_scale",
    "choose",
    "k_ladder",
    "sweep_sparsity",
]
