"""Poisoned-data detection: which training examples (and which new inputs) carry a backdoor.

from interplab.methods.poisoning import detect_poison
found = detect_poison(model, x_train, y_train, "spectral_signature", site=Site.module("act"))
found.scores            # [n] suspicion per training example (higher = more suspicious)
found.score(x_new)      # the same detector, fit on the training set, applied to new inputs
"""

from __future__ import annotations

from interplab.methods.poisoning.detect import METHODS, NEEDS_SITE, PoisonScores, detect_poison

__all__ = ["METHODS", "NEEDS_SITE", "PoisonScores", "detect_poison"]
