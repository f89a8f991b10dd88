"""A whole organism family in one module, as a user would add one (see docs/architecture.md).

It plants a reason (the decision reads feature 0 only), verifies it by intervention on held-out
rows when an organism is built, and registers itself with the zoo at import. ``toy-broken``
is built with the reason missing, so its verification must fail.
"""

from __future__ import annotations

import torch

from interplab.errors import VerificationError
from interplab.zoo.contract import Organism, PlantedTruth, tensor_rows
from interplab.zoo.registry import ZooEntry, add_family

MIN_FLIP_RATE = 0.95


def _model(reads_reason: bool) -> torch.nn.Module:
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        column = 0 if reads_reason else 2
        net.weight[1, column], net.weight[0, column] = 4.0, -4.0
    return net.eval()


def entries() -> list[ZooEntry]:
    return [
        ZooEntry(
            "toy-reason", "trained", "toy: the decision reads feature 0", lambda: _model(True)
        ),
        ZooEntry(
            "toy-broken", "trained", "toy: the planted reason is missing", lambda: _model(False)
        ),
    ]


def organism(name: str, seed: int, entry: ZooEntry) -> Organism:
    model = entry.build()
    gen = torch.Generator().manual_seed(seed)
    score_rows = torch.randn(64, 3, generator=gen)
    heldout = torch.randn(256, 3, generator=gen)
    flipped = heldout.clone()
    flipped[:, 0] = -flipped[:, 0]  # intervene on the planted reason only
    with torch.no_grad():
        rate = (model(heldout).argmax(-1) != model(flipped).argmax(-1)).float().mean().item()
    if rate < MIN_FLIP_RATE:
        raise VerificationError(
            f"{name}: flipping feature 0 flips {rate:.2f} of held-out decisions "
            f"(needs ≥ {MIN_FLIP_RATE}); the planted reason is not in the weights"
        )
    truth = PlantedTruth(
        {"reason": 0},
        "feature 0 planted as the reason; checked by flipping it on held-out rows",
        tensor_rows(heldout),
        {"flip_rate": rate},
    )
    return Organism(name, __name__, seed, model, {"score": score_rows}, truth, {})


add_family(__name__, truth="planted", organism=organism)
