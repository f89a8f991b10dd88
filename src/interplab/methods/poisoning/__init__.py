"""Poisoned-data detection: which training examples (and which new inputs) carry a backdoor.

from interplab.methods.poisoning import detect_poison
found = detect_poison(model, x_train, y_train, method="spectral_signature", site=Site.module("act"))
found.scores            # [n] suspicion per training example (higher = more suspicious)
found.score(x_new)      # the same detector, fit on the training set, applied to new inputs

The detectors (estimator classes) register themselves in the ``poisoning`` family when their
modules are imported here; :func:`detect_poison` looks them up in the registry.
"""

from __future__ import annotations

from interplab.methods.poisoning.baselines import InputAnomaly, LossScore, RandomScore, TriggerMatch
from interplab.methods.poisoning.clustering import ActivationClustering, SpectralSignature
from interplab.methods.poisoning.detect import Batch, PoisonScores, detect_poison
from interplab.methods.poisoning.sae import SAEFeatures

__all__ = [
    "ActivationClustering",
    "Batch",
    "InputAnomaly",
    "LossScore",
    "PoisonScores",
    "RandomScore",
    "SAEFeatures",
    "SpectralSignature",
    "TriggerMatch",
    "detect_poison",
]
