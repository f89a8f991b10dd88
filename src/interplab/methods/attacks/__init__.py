"""Attacks: FGSM and PGD for continuous inputs, greedy token swaps (GCG) for token models, and
Neural-Cleanse trigger reconstruction. Each returns a result with the inputs it found, the
predictions before and after, per-example success and its cost in model passes.

One verb, ``attack(model, x, y, *, method="pgd", **settings)``, runs any registered attack
(family ``attacks``: pgd, fgsm, gcg; ``y`` is the true labels, or None for a targeted gcg).
The trigger scans (:mod:`.trigger`) are registered in the ``failures`` family.
"""

from typing import Any

from torch import Tensor

from interplab.methods import registry
from interplab.methods.attacks.gradient import AttackResult, fgsm, pgd
from interplab.methods.attacks.tokens import TokenAttackResult, gcg
from interplab.methods.attacks.trigger import (
    NeuralCleanse,
    TriggerReconstruction,
    TriggerScan,
    TrojanScore,
    neural_cleanse,
    random_trigger,
    reconstruct_trigger,
    synthesis_scan,
    synthesize_trigger,
    weight_norm,
)


def attack(
    model: Any,
    x: Tensor,
    y: Tensor | None = None,
    *,
    method: str = "pgd",
    seed: int = 0,
    **settings: Any,
) -> AttackResult | TokenAttackResult:
    """Run the registered attack ``method`` on inputs ``x`` with true labels ``y``."""
    return registry.get("attacks", method).fn(model, x, y, seed=seed, **settings)


__all__ = [
    "AttackResult",
    "NeuralCleanse",
    "TokenAttackResult",
    "TriggerReconstruction",
    "TriggerScan",
    "TrojanScore",
    "attack",
    "fgsm",
    "gcg",
    "neural_cleanse",
    "pgd",
    "random_trigger",
    "reconstruct_trigger",
    "synthesis_scan",
    "synthesize_trigger",
    "weight_norm",
]
