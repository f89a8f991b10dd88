"""Removing a concept from a model's hidden layer, and the baselines that do without insides.

from interplab.methods.erasure import fit_leace, rank_units, mean_ablate, retrain_readout
eraser = fit_leace(h, cue)            # LEACE: closed-form linear concept erasure
h_clean = eraser.apply(h)
ranking = rank_units(h, cue, readout=readout)  # units most attributable to a concept
h_abl = mean_ablate(h, ranking.top(4), ranking.means)
readout = retrain_readout(h, y)       # Deep Feature Reweighting: refit the last layer
eraser = erase(h, cue, method="leace")  # any registered erasure method, by name
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interplab.methods import registry
from interplab.methods.base import Result
from interplab.methods.erasure.ablation import UnitRanking, mean_ablate, rank_units
from interplab.methods.erasure.leace import LeaceEraser, fit_leace, random_eraser, random_erasure
from interplab.methods.erasure.reweighting import Readout, retrain_readout


def erase(
    h: Tensor, concept: Tensor, *, method: str = "leace", seed: int = 0, **settings: Any
) -> Result:
    """Fit the registered ``erasure`` method on features ``h [n, d]`` and ``concept [n]``
    (leace, random: an eraser; neuron_ablation: a unit ranking; dfr: a refit readout of the
    labels ``concept``)."""
    return registry.get("erasure", method).fn(h, concept, seed=seed, **settings)


__all__ = [
    "LeaceEraser",
    "Readout",
    "UnitRanking",
    "erase",
    "fit_leace",
    "mean_ablate",
    "random_eraser",
    "random_erasure",
    "rank_units",
    "retrain_readout",
]
