"""Tasks from (clean, corrupted) input pairs of a RASP program (compiled, SIIT-trained or
generated organisms): the pairs are drawn by the program's ``task_pairs``
(:mod:`interplab.compile.programs`, :mod:`interplab.compile.generate`); here they become a
:class:`~interplab.tasks.task.Task` whose labels are the model's own answers.

    pairs = spec.task_pairs(32, seed=0, length=spec.max_len)
    task = pair_task(model, spec.encode_batch, pairs, "l2", "compiled-sort")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.tasks.task import MetricSpec, Task

Tensor = torch.Tensor


def predictions(model: Any, tokens: Tensor) -> Tensor:
    """The model's own answers at positions 1..: class ids [b, p-1] (float values when numerical)."""
    with torch.no_grad():
        out = model.run(tokens)[:, 1:]
    return out[..., 0] if out.shape[-1] == 1 else out.argmax(-1)


def pair_task(model: Any, encode: Callable, pairs: list, metric: MetricSpec, name: str) -> Task:
    """The task of ``pairs`` [(clean input, corrupted input)]: every position but the BOS is
    scored; labels are ``model``'s answers on the clean inputs, wrong labels its answers on the
    corrupted ones. ``encode`` maps a list of inputs to tokens [b, p]."""
    clean = encode([c for c, _ in pairs])
    corrupted = encode([x for _, x in pairs])
    return Task(
        clean,
        corrupted,
        labels=predictions(model, clean),
        wrong_labels=predictions(model, corrupted),
        metric=metric,
        name=name,
    )


def held_out_pairs(spec: Any, avoid: list, n: int, seed: int) -> list:
    """``n`` task pairs of ``spec`` (a library program) whose inputs appear in no pair of
    ``avoid`` (drawn from other seeds)."""
    used = {tuple(x) for pair in avoid for x in pair}
    out: list = []
    for attempt in range(1, 6):
        for c, x in spec.task_pairs(4 * n, seed=10_000 * attempt + seed, length=spec.max_len):
            if tuple(c) not in used and tuple(x) not in used and len(out) < n:
                out.append((c, x))
        if len(out) == n:
            return out
    if len(out) < n // 4:
        raise ConfigError(
            f"{spec.name}: only {len(out)} task pairs avoid the {len(avoid)} scoring "
            "pairs' inputs; the truth needs held-out pairs: score on fewer pairs"
        )
    return out
