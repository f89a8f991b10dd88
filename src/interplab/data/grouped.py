"""Data split into (label × cue) groups, for organisms with a planted spurious cue.

Any record with ``y`` (label), ``cue`` (0/1), ``group = 2y + cue`` and ``subset(idx)`` works:
:class:`interplab.models.spurious.CuedData` (images) and :class:`interplab.models.bios.BiosData`
(token sequences) both are.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from interplab.errors import ConfigError

Tensor = torch.Tensor


class GroupedData:
    """Shared behaviour of a frozen dataclass of per-example tensors with ``y`` (label) and
    ``cue`` fields; its first field is what the model reads (:attr:`inputs`)."""

    y: Tensor
    cue: Tensor

    @property
    def group(self) -> Tensor:
        return 2 * self.y + self.cue

    @property
    def inputs(self) -> Tensor:
        record: Any = self  # a dataclass instance (subclasses are dataclasses)
        return getattr(record, dataclasses.fields(record)[0].name)

    def subset(self, idx: Tensor) -> Any:
        """The examples ``idx`` (every field indexed alike)."""
        record: Any = self  # a dataclass instance (subclasses are dataclasses)
        return dataclasses.replace(
            record, **{f.name: getattr(record, f.name)[idx] for f in dataclasses.fields(record)}
        )

    def __len__(self) -> int:
        return len(self.y)


def balanced_subset(data: Any, per_group: int, seed: int) -> Any:
    """``per_group`` examples of each (label × cue) group, drawn without replacement (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for g in range(4):
        idx = torch.nonzero(data.group == g).flatten()
        if len(idx) < per_group:
            raise ConfigError(
                f"group {g} has {len(idx)} examples, fewer than per_group={per_group}"
            )
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:per_group]])
    return data.subset(torch.cat(picks))


def group_accuracies(pred: Tensor, data: Any) -> dict[str, float]:
    """``accuracy``, ``worst_group_accuracy`` and each group's accuracy (``group_<y><cue>``)."""
    correct = (pred == data.y).float()
    out = {"accuracy": float(correct.mean())}
    accs = []
    for g in range(4):
        mask = data.group == g
        acc = float(correct[mask].mean()) if bool(mask.any()) else float("nan")
        out[f"group_{g // 2}{g % 2}"] = acc
        accs.append(acc)
    out["worst_group_accuracy"] = min(accs)
    return out
