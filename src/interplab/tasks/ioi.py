"""An indirect-object-identification-style prompt set built from templates and names.

Clean: "When Mary and John went to the store, John gave a drink to" -> " Mary" (the indirect
object, IO) rather than " John" (the subject, S). Corrupted: the same template with three other
names ("... Alice and Bob ..., Carol gave ..."), which carries no IO/S information. Metric:
logit difference logit(IO) - logit(S) at the last prompt position. Prompts are right-padded;
``positions[:, 0]`` holds each prompt's final position, ``labels[:, 0]`` the IO token and
``wrong_labels[:, 0]`` the S token.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.tasks.task import Task

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


def single_token_names(tokenizer: Any, names: Sequence[str] = NAMES) -> list[str]:
    return [n for n in names if len(tokenizer.encode(n)) == 1]


def ioi_task(
    tokenizer: Any,
    *,
    n: int = 32,
    seed: int = 0,
    pad_id: int = 0,
    templates: Sequence[str] = TEMPLATES,
) -> Task:
    """``n`` clean/corrupted IOI prompt pairs (``tokenizer.encode(str) -> list[int]``), scored at
    each prompt's last position: right = the indirect object, wrong = the subject."""
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
    return Task(
        torch.tensor([pad(r[0]) for r in rows]),
        torch.tensor([pad(r[1]) for r in rows]),
        torch.tensor([[len(r[0]) - 1] for r in rows]),
        torch.tensor([[r[2]] for r in rows]),
        torch.tensor([[r[3]] for r in rows]),
        metric="logit_diff",
        name="ioi",
        description="indirect object identification: logit(IO) - logit(S) at the last token; "
        "corrupted prompts use three other names",
        texts=tuple(r[4] for r in rows),
    )
