"""Attacks: FGSM and PGD for continuous inputs, greedy token swaps (GCG) for token models, and
Neural-Cleanse trigger reconstruction. Each returns a dataclass with the inputs it found, the
predictions before and after, and per-example success."""

from interplab.methods.attacks.gradient import AttackResult, fgsm, pgd
from interplab.methods.attacks.tokens import TokenAttackResult, gcg

__all__ = ["AttackResult", "TokenAttackResult", "fgsm", "gcg", "pgd"]
from interplab.methods.attacks.trigger import (
    NeuralCleanse,
    TriggerReconstruction,
    TriggerScan,
    neural_cleanse,
    random_trigger,
    reconstruct_trigger,
    synthesis_scan,
    synthesize_trigger,
)

__all__ += [
    "NeuralCleanse",
    "TriggerReconstruction",
    "TriggerScan",
    "neural_cleanse",
    "random_trigger",
    "reconstruct_trigger",
    "synthesis_scan",
    "synthesize_trigger",
]
