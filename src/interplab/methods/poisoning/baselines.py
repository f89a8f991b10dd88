"""Poison detectors that never look inside the model, and the trigger oracle.

loss           per-example cross-entropy of the model's output against the given label:
               a mislabelled example the model has not fit is an outlier (poison the model
               *has* fit is not, which is why this is a baseline and not a solution).
               New inputs take the model's predicted label, i.e. score ``-log max p``.
input_anomaly  mean Euclidean distance, in input space, to the ``neighbours`` nearest other
               training examples with the same label (leave-one-out on the training set):
               a poisoned example is labelled ``target`` but looks like another class.
random         seeded uniform scores (the control every detector must beat).
oracle:trigger the oracle: knows the trigger's mask ``m`` and pattern ``p``. With a 0/1 mask
               (a patch) the score is minus the mean squared difference between the input
               and the pattern on the mask; with a fractional mask (a blend) it is the dot
               product of the input and the pattern, both centred by the training mean.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from interplab.errors import ConfigError, ShapeError
from interplab.methods.registry import register

Tensor = torch.Tensor
#: the headline every detector is scored by
METRIC = "poison_detection_auroc"


def _flat(x: Tensor) -> Tensor:
    return x.reshape(len(x), -1).float()


@register("poisoning", "loss", kind="baseline", cost_unit="passes", metric=METRIC)
class LossScore:
    """Per-example cross-entropy of the model's output against the given label."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, batch) -> LossScore:
        self.scores_ = self.score(batch)
        self.details_: dict[str, object] = {}
        return self

    def score(self, batch) -> Tensor:
        return F.cross_entropy(batch.logits, batch.y, reduction="none")


@register("poisoning", "input_anomaly", kind="baseline", cost_unit="none", metric=METRIC)
class InputAnomaly:
    """Mean input-space distance to the nearest same-label training examples."""

    def __init__(self, seed: int = 0, neighbours: int = 10) -> None:
        self.seed, self.neighbours = seed, neighbours

    def fit(self, batch) -> InputAnomaly:
        self.x_, self.y_ = _flat(batch.x), batch.y
        self.details_ = {"neighbours": self.neighbours}
        self.scores_ = self._score(self.x_, self.y_, leave_one_out=True)
        return self

    def score(self, batch) -> Tensor:
        return self._score(_flat(batch.x), batch.y, leave_one_out=False)

    def _score(self, x: Tensor, y: Tensor, leave_one_out: bool) -> Tensor:
        scores = torch.zeros(len(x))
        for c in y.unique().tolist():
            rows, ref = y == c, self.x_[self.y_ == c]
            d = torch.cdist(x[rows], ref)
            if leave_one_out:
                d = d + torch.diag(torch.full((len(ref),), float("inf")))
            k = min(self.neighbours, len(ref) - int(leave_one_out))
            if k < 1:
                continue
            scores[rows] = d.topk(k, dim=1, largest=False).values.mean(1)
        return scores


@register("poisoning", "random", kind="baseline", cost_unit="none", metric=METRIC)
class RandomScore:
    """Seeded uniform scores (the control)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed)

    def fit(self, batch) -> RandomScore:
        self.scores_ = self.score(batch)
        self.details_: dict[str, object] = {}
        return self

    def score(self, batch) -> Tensor:
        return torch.rand(len(batch.x), generator=self.gen)


@register("poisoning", "oracle:trigger", kind="oracle", cost_unit="none", metric=METRIC)
class TriggerMatch:
    """The oracle: matches inputs against the true trigger (mask, pattern)."""

    needs_trigger = True

    def __init__(self, trigger=None, seed: int = 0) -> None:
        if trigger is None:
            raise ConfigError("the trigger oracle needs trigger= (mask, pattern) or a Trigger")
        self.seed = seed
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

    def fit(self, batch) -> TriggerMatch:
        self.centre_ = _flat(batch.x).mean(0)
        self.details_ = {"kind": "patch" if self.patch else "blend"}
        self.scores_ = self.score(batch)
        return self

    def score(self, batch) -> Tensor:
        x = _flat(batch.x)
        if x.shape[1] != len(self.mask):
            raise ShapeError(
                f"the trigger covers {len(self.mask)} inputs, the data has {x.shape[1]}"
            )
        if self.patch:
            return -(self.mask * (x - self.pattern) ** 2).sum(1) / self.mask.sum().clamp_min(1)
        return ((x - self.centre_) * self.mask) @ (self.pattern - self.centre_)
