"""The one task type: clean inputs, their corrupted counterparts, what is scored and how.

A :class:`Task` is data, kept apart from the methods that explain it, so the same EAP, patching
or lens runs on a compiled organism and on SmolLM2 alike. Every circuit, patching and lens
method takes one; the builders of :mod:`interplab.tasks` (IOI, induction, RASP pairs) make them.

Shapes: b = batch, p = pos, n = scored positions per row, v = vocab (d_vocab_out).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch

from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor
#: a metric name of :data:`interplab.tasks.metrics.METRICS` or fn(out [b, n, v], ctx) -> scalar,
#: ctx a :class:`~interplab.tasks.metrics.MetricContext`
MetricSpec = Union[str, Callable[[Tensor, Any], Tensor]]  # noqa: UP007


@dataclass(frozen=True, eq=False)
class Task:
    """Clean and corrupted inputs plus what is scored.

    Attributes:
        clean: int64 tokens [b, p].
        corrupted: int64 tokens [b, p] (same shape); row i is the resample source for row i.
        positions: the scored output positions. Given as None (every position but 0, the BOS),
            a sequence of ints (the same in every row) or an int tensor [b, n] (per row); stored
            as the int64 tensor [b, n].
        labels: the right answer at each scored position [b, n] (int64 classes, or float values
            for a numerical output); None = the clean model's own predictions.
        wrong_labels: the answer the corrupted input suggests [b, n], used by ``logit_diff``;
            None = compare with the mean logit.
        metric: the default metric (a name of :data:`~interplab.tasks.metrics.METRICS` or a
            callable) for methods that are not given one.
        name, description: display.
        texts: the clean prompts as text (for pages), when known.
    """

    clean: Tensor
    corrupted: Tensor
    positions: Any = None
    labels: Tensor | None = None
    wrong_labels: Tensor | None = None
    metric: MetricSpec = "kl"
    name: str = ""
    description: str = ""
    texts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        for attr in ("clean", "corrupted"):
            value = getattr(self, attr)
            if not isinstance(value, Tensor) or value.dim() != 2:
                problems.append(
                    f"{attr} must be a [batch, pos] token tensor, got "
                    f"{getattr(value, 'shape', type(value).__name__)}"
                )
        if not problems and self.clean.shape != self.corrupted.shape:
            problems.append(
                f"clean {tuple(self.clean.shape)} and corrupted "
                f"{tuple(self.corrupted.shape)} must have the same shape "
                "(resample ablation pairs row i with row i)"
            )
        if problems:
            raise ShapeError(f"invalid task {self.name!r}: " + "; ".join(problems))
        b, p = self.clean.shape
        object.__setattr__(self, "positions", _positions(self.positions, b, p, self.name))
        object.__setattr__(self, "texts", tuple(self.texts))
        shape = tuple(self.positions.shape)
        for attr in ("labels", "wrong_labels"):
            value = getattr(self, attr)
            if value is not None and tuple(value.shape) != shape:
                problems.append(
                    f"{attr} must have shape [batch, n_scored] = {shape}, got {tuple(value.shape)}"
                )
        if problems:
            raise ShapeError(f"invalid task {self.name!r}: " + "; ".join(problems))

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return int(self.clean.shape[0])

    @property
    def batch_size(self) -> int:
        return len(self)

    @property
    def seq_len(self) -> int:
        return int(self.clean.shape[1])

    @property
    def shared_positions(self) -> bool:
        """Whether every row scores the same positions."""
        return bool((self.positions == self.positions[:1]).all())

    @property
    def scored_positions(self) -> tuple[int, ...]:
        """The scored positions when every row scores the same ones (ConfigError otherwise)."""
        if not self.shared_positions:
            raise ConfigError(
                f"task {self.name!r} scores different positions in different rows; "
                "read task.positions [batch, n_scored] instead"
            )
        return tuple(int(q) for q in self.positions[0])

    # ------------------------------------------------------------------ rows
    def rows(self, start: int, stop: int) -> Task:
        """The prompts ``start:stop`` as a task."""
        cut = lambda t: None if t is None else t[start:stop]  # noqa: E731
        return Task(
            self.clean[start:stop],
            self.corrupted[start:stop],
            self.positions[start:stop],
            cut(self.labels),
            cut(self.wrong_labels),
            self.metric,
            self.name,
            self.description,
            self.texts[start:stop],
        )

    def chunks(self, batch_size: int) -> list[Task]:
        """The task cut into consecutive chunks of at most ``batch_size`` prompts."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch size must be a positive int, got {batch_size!r}")
        n = len(self)
        return [self.rows(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]

    # ------------------------------------------------------------------ outputs
    def select(self, logits: Tensor) -> Tensor:
        """Model outputs [b, p, v] -> the scored positions [b, n, v]."""
        rows = torch.arange(logits.shape[0]).unsqueeze(1)
        return logits[rows, self.positions]

    def logit_diffs(self, logits: Tensor) -> Tensor:
        """logits [b, p, v] -> [b, n]: logit(label) - logit(wrong label), or - mean logit."""
        return self.logit_diffs_at(self.select(logits))

    def logit_diffs_at(self, at: Tensor) -> Tensor:
        """The same from outputs already at the scored positions: [b, n, v] -> [b, n]."""
        if self.labels is None:
            raise ConfigError(
                f"task {self.name!r} has no labels; the logit difference needs the right answers"
            )
        right = at.gather(-1, self.labels.long().unsqueeze(-1))[..., 0]
        if self.wrong_labels is None:
            return right - at.mean(-1)
        return right - at.gather(-1, self.wrong_labels.long().unsqueeze(-1))[..., 0]

    def mean_logit_diff(self, logits: Tensor) -> Tensor:
        """Mean logit difference over rows and scored positions (a scalar tensor; higher =
        more like the clean behaviour)."""
        return self.logit_diffs(logits).mean()


def _positions(value: Any, b: int, p: int, name: str) -> Tensor:
    if value is None:
        if p < 2:
            raise ShapeError(f"invalid task {name!r}: prompts of {p} token score no position")
        return torch.arange(1, p).expand(b, -1).clone()
    if isinstance(value, Tensor):
        pos = value.long()
        if pos.dim() == 1:
            pos = pos.expand(b, -1)
    elif isinstance(value, Sequence) and not isinstance(value, str) and _ints(value):
        pos = torch.tensor([operator.index(q) for q in value], dtype=torch.long).expand(b, -1)
    else:
        raise ShapeError(
            f"invalid task {name!r}: positions must be None, a sequence of ints or an int "
            f"tensor [batch, n_scored], got {type(value).__name__}"
        )
    if pos.dim() != 2 or pos.shape[0] != b or pos.shape[1] < 1:
        raise ShapeError(
            f"invalid task {name!r}: positions must be [batch, n_scored] = [{b}, n >= 1], got "
            f"{tuple(pos.shape)}"
        )
    if int(pos.min()) < 0 or int(pos.max()) >= p:
        raise ShapeError(f"invalid task {name!r}: positions must index the prompt (0..{p - 1})")
    return pos.contiguous()


def _ints(values: Sequence) -> bool:
    try:
        [operator.index(q) for q in values]
    except TypeError:
        return False
    return True


def check_task(task: object) -> Task:
    """``task`` itself when it is a :class:`Task`; ConfigError naming what was given otherwise."""
    if isinstance(task, Task):
        return task
    raise ConfigError(
        f"expected an interplab.tasks.Task (see interplab.tasks.make_task), got "
        f"{type(task).__name__}"
    )
