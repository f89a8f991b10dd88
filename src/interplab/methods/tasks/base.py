"""A token task: clean and corrupted prompts with per-row scored positions and answers.

Shapes: b = batch, p = pos, n = scored positions per row, v = vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class TokenTask:
    """Attributes:
    clean, corrupted: int64 tokens [b, p] (same shape; row i of corrupted is the resample
        source for row i).
    positions: int64 [b, n], the output positions scored in each row.
    labels: int64 [b, n], the right next token at each scored position.
    wrong_labels: int64 [b, n] (the answer the corrupted prompt suggests) or None, in which
        case the metric compares with the mean logit.
    name, description: display.
    texts: the clean prompts as text (for pages), when known.
    """

    clean: Tensor
    corrupted: Tensor
    positions: Tensor
    labels: Tensor
    wrong_labels: Tensor | None = None
    name: str = ""
    description: str = ""
    texts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        if self.clean.dim() != 2 or self.clean.shape != self.corrupted.shape:
            problems.append(
                f"clean {tuple(self.clean.shape)} and corrupted "
                f"{tuple(self.corrupted.shape)} must be [batch, pos] of one shape"
            )
        b = self.clean.shape[0]
        for attr in ("positions", "labels", "wrong_labels"):
            value = getattr(self, attr)
            if value is not None and (
                value.dim() != 2 or value.shape[0] != b or value.shape != self.positions.shape
            ):
                problems.append(
                    f"{attr} must be [batch, n_scored] like positions "
                    f"{tuple(self.positions.shape)}, got {tuple(value.shape)}"
                )
        if not problems and (
            int(self.positions.min()) < 0 or int(self.positions.max()) >= self.clean.shape[1]
        ):
            problems.append("positions must index the prompt")
        if problems:
            raise ShapeError(f"invalid task {self.name!r}: " + "; ".join(problems))

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.clean.shape[1])

    def rows(self, start: int, stop: int) -> TokenTask:
        """The prompts ``start:stop`` as a task."""
        cut = lambda t: None if t is None else t[start:stop]  # noqa: E731
        return TokenTask(
            self.clean[start:stop],
            self.corrupted[start:stop],
            self.positions[start:stop],
            self.labels[start:stop],
            cut(self.wrong_labels),
            self.name,
            self.description,
            self.texts[start:stop],
        )

    def chunks(self, batch_size: int) -> list[TokenTask]:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch size must be a positive int, got {batch_size!r}")
        return [
            self.rows(i, min(i + batch_size, len(self))) for i in range(0, len(self), batch_size)
        ]

    def logit_diffs(self, logits: Tensor) -> Tensor:
        """logits [b, p, v] -> [b, n]: logit(label) - logit(wrong label), or - mean logit."""
        rows = torch.arange(logits.shape[0]).unsqueeze(1)
        return self.logit_diffs_at(logits[rows, self.positions])

    def logit_diffs_at(self, at: Tensor) -> Tensor:
        """The same from logits already taken at the scored positions: [b, n, v] -> [b, n]."""
        right = at.gather(-1, self.labels.unsqueeze(-1))[..., 0]
        if self.wrong_labels is None:
            return right - at.mean(-1)
        return right - at.gather(-1, self.wrong_labels.unsqueeze(-1))[..., 0]

    def metric(self, logits: Tensor) -> Tensor:
        """Mean logit difference (a scalar tensor; higher = more like the clean behaviour)."""
        return self.logit_diffs(logits).mean()

    def to_circuit_task(self):
        """The same task as an organism :class:`CircuitTask` (needs one set of positions for
        every row), for the edge-patching engine."""
        from interplab.methods.circuits.task import CircuitTask

        if not bool((self.positions == self.positions[:1]).all()):
            raise ConfigError(
                f"task {self.name!r} scores different positions in different rows; "
                "a CircuitTask needs the same positions in every row"
            )
        return CircuitTask(
            self.clean,
            self.corrupted,
            tuple(int(p) for p in self.positions[0]),
            self.labels,
            self.wrong_labels,
            "logit_diff",
            self.name,
        )


def as_token_task(task: object) -> TokenTask:
    """``task`` itself, or its ``to_token_task()`` (e.g. an IOI dataset); ConfigError otherwise."""
    if isinstance(task, TokenTask):
        return task
    if hasattr(task, "to_token_task"):
        return task.to_token_task()
    raise ConfigError(
        f"expected a TokenTask (see interplab.methods.tasks.make_task), got {type(task).__name__}"
    )
