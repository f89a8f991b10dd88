"""Removing a concept from a model's hidden layer, and the baselines that do without insides.

from interplab.methods.erasure import fit_leace, rank_units, mean_ablate, retrain_readout
eraser = fit_leace(h, cue)            # LEACE: closed-form linear concept erasure
h_clean = eraser.apply(h)
ranking = rank_units(h, cue, readout) # units most attributable to a concept
h_abl = mean_ablate(h, ranking.top(4), ranking.means)
readout = retrain_readout(h, y)       # Deep Feature Reweighting: refit the last layer
"""

from __future__ import annotations

from interplab.methods.erasure.ablation import UnitRanking, mean_ablate, rank_units
from interplab.methods.erasure.leace import LeaceEraser, fit_leace, random_eraser
from interplab.methods.erasure.reweighting import Readout, retrain_readout

__all__ = [
    "LeaceEraser",
    "Readout",
    "UnitRanking",
    "fit_leace",
    "mean_ablate",
    "random_eraser",
    "rank_units",
    "retrain_readout",
]
