"""Poison detectors that never look inside the model, and the trigger oracle.

loss           per-example cross-entropy of the model's output against the given label:
               a mislabelled example the model has not fit is an outlier (poison the model
               *has* fit is not, which is why this is a baseline and not a solution).
               New inputs take the model's predicted label, i.e. score ``-log max p``.
input_anomaly  mean Euclidean distance, in input space, to the ``neighbours`` nearest other
               training examples with the same label (leave-one-out on the training set):
               a poisoned example is labelled ``target`` but looks like another class.
random         seeded uniform scores (the control every detector must beat).
trigger        the oracle: knows the trigger's mask ``m`` and pattern ``p``. With a 0/1 mask
               (a patch) the score is minus the mean squared difference between the input
               and the pattern on the mask; with a fractional mask (a blend) it is the dot
               product of the input and the pattern, both centred by the training mean.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from interplab.errors import ShapeError

Tensor = torch.Tensor


def _flat(x: Tensor) -> Tensor:
    return x.reshape(len(x), -1).float()


class LossScore:
    def __init__(self, seed: int = 0) -> None:
        self.details: dict = {}

    def fit(self, batch) -> Tensor:
        return self.score(batch)

    def score(self, batch) -> Tensor:
        return F.cross_entropy(batch.logits, batch.y, reduction="none")


class InputAnomaly:
    def __init__(self, seed: int = 0, neighbours: int = 10) -> None:
        self.neighbours = neighbours
        self.x: Tensor | None = None
        self.y: Tensor | None = None
        self.details = {"neighbours": neighbours}

    def fit(self, batch) -> Tensor:
        self.x, self.y = _flat(batch.x), batch.y
        return self._score(self.x, self.y, leave_one_out=True)

    def score(self, batch) -> Tensor:
        return self._score(_flat(batch.x), batch.y, leave_one_out=False)

    def _score(self, x: Tensor, y: Tensor, leave_one_out: bool) -> Tensor:
        scores = torch.zeros(len(x))
        for c in y.unique().tolist():
            rows, ref = y == c, self.x[self.y == c]
            d = torch.cdist(x[rows], ref)
            if leave_one_out:
                d = d + torch.diag(torch.full((len(ref),), float("inf")))
            k = min(self.neighbours, len(ref) - int(leave_one_out))
            if k < 1:
                continue
            scores[rows] = d.topk(k, dim=1, largest=False).values.mean(1)
        return scores


class RandomScore:
    def __init__(self, seed: int = 0) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.details: dict = {}

    def fit(self, batch) -> Tensor:
        return self.score(batch)

    def score(self, batch) -> Tensor:
        return torch.rand(len(batch.x), generator=self.gen)


class TriggerMatch:
    def __init__(self, trigger, seed: int = 0) -> None:
        mask, pattern = trigger.tensors() if hasattr(trigger, "tensors") else trigger
        self.mask, self.pattern = (
            torch.as_tensor(mask).float().flatten(),
            torch.as_tensor(pattern).float().flatten(),
        )
        if self.mask.shape != self.pattern.shape:
            raise ShapeError(
                f"trigger mask {tuple(self.mask.shape)} and pattern {tuple(self.pattern.shape)} differ"
            )
        self.patch = bool(((self.mask == 0) | (self.mask == 1)).all())
        self.centre: Tensor | None = None
        self.details = {"kind": "patch" if self.patch else "blend"}

    def fit(self, batch) -> Tensor:
        self.centre = _flat(batch.x).mean(0)
        return self.score(batch)

    def score(self, batch) -> Tensor:
        x = _flat(batch.x)
        if x.shape[1] != len(self.mask):
            raise ShapeError(
                f"the trigger covers {len(self.mask)} inputs, the data has {x.shape[1]}"
            )
        if self.patch:
            return -(self.mask * (x - self.pattern) ** 2).sum(1) / self.mask.sum().clamp_min(1)
        return ((x - self.centre) * self.mask) @ (self.pattern - self.centre)
