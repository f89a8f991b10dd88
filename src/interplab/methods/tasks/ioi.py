"""An indirect-object-identification-style prompt set built from templates and names.

Clean: "When Mary and John went to the store, John gave a drink to" -> " Mary" (the indirect
object, IO) rather than " John" (the subject, S). Corrupted: the same template with three other
names ("... Alice and Bob ..., Carol gave ..."), which carries no IO/S information. Metric:
logit difference logit(IO) - logit(S) at the last prompt position. Prompts are right-padded;
``last`` holds each prompt's final position.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.errors import ConfigError

Tensor = torch.Tensor

TEMPLATES = (
    "When{A} and{B} went to the store,{S} gave a drink to",
    "When{A} and{B} went to the park,{S} handed a ball to",
    "After{A} and{B} went to the party,{S} gave a gift to",
    "Then,{A} and{B} had a long argument, and afterwards{S} said to",
    "While{A} and{B} were working at the office,{S} passed a note to",
    "Friends{A} and{B} found a bone at the beach.{S} gave it to",
)
NAMES = (
    " Mary",
    " John",
    " Tom",
    " James",
    " Dan",
    " Sid",
    " Anna",
    " Paul",
    " Kate",
    " Lisa",
    " Mark",
    " Sarah",
    " David",
    " Emma",
    " Alice",
    " Bob",
    " Jack",
    " Laura",
    " Peter",
    " Ben",
)


@dataclass
class IOIDataset:
    """clean / corrupt [n, p] token ids, last [n] final positions, io_ids / s_ids [n]."""

    clean: Tensor
    corrupt: Tensor
    last: Tensor
    io_ids: Tensor
    s_ids: Tensor
    texts: list[str]

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    def to_token_task(self):
        """The same prompts as a :class:`~interplab.methods.tasks.base.TokenTask` (scored at
        each prompt's last position, right = IO, wrong = S)."""
        from interplab.methods.tasks.base import TokenTask

        return TokenTask(
            self.clean,
            self.corrupt,
            self.last.unsqueeze(1),
            self.io_ids.unsqueeze(1),
            self.s_ids.unsqueeze(1),
            "ioi",
            "indirect object identification: logit(IO) - logit(S) at the last token; "
            "corrupted prompts use three other names",
            tuple(self.texts),
        )


def single_token_names(tokenizer: Any, names: Sequence[str] = NAMES) -> list[str]:
    return [n for n in names if len(tokenizer.encode(n)) == 1]


def make_ioi(
    tokenizer: Any,
    n: int = 32,
    seed: int = 0,
    pad_id: int = 0,
    templates: Sequence[str] = TEMPLATES,
) -> IOIDataset:
    """``n`` clean/corrupted prompt pairs. ``tokenizer.encode(str) -> list[int]``."""
    names = single_token_names(tokenizer)
    if len(names) < 5:
        raise ConfigError(f"need at least 5 single-token names, the tokenizer has {len(names)}")
    rng = random.Random(seed)
    rows: list[tuple[list[int], list[int], int, int, str]] = []
    for i in range(n):
        tpl = templates[i % len(templates)]
        io, s, a, b, c = rng.sample(names, 5)
        first, second = (io, s) if rng.random() < 0.5 else (s, io)
        text = tpl.format(A=first, B=second, S=s)
        clean = tokenizer.encode(text)
        corrupt = tokenizer.encode(tpl.format(A=a, B=b, S=c))
        if len(clean) != len(corrupt):
            raise ConfigError(f"template {tpl!r} tokenizes differently with different names")
        rows.append((clean, corrupt, tokenizer.encode(io)[0], tokenizer.encode(s)[0], text))
    width = max(len(r[0]) for r in rows)
    pad = lambda ids: ids + [pad_id] * (width - len(ids))  # noqa: E731
    return IOIDataset(
        clean=torch.tensor([pad(r[0]) for r in rows]),
        corrupt=torch.tensor([pad(r[1]) for r in rows]),
        last=torch.tensor([len(r[0]) - 1 for r in rows]),
        io_ids=torch.tensor([r[2] for r in rows]),
        s_ids=torch.tensor([r[3] for r in rows]),
        texts=[r[4] for r in rows],
    )


def logit_diff(logits: Tensor, ds: IOIDataset, at_last: bool = True) -> Tensor:
    """Per-prompt logit(IO) - logit(S): logits [n, p, v] (or [n, 1, v] already at ``last``)."""
    rows = torch.arange(len(ds))
    final = logits[rows, ds.last] if at_last and logits.shape[1] > 1 else logits[:, -1]
    return final[rows, ds.io_ids] - final[rows, ds.s_ids]
