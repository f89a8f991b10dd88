"""Tasks as data: clean prompts, their corrupted counterparts, what is scored and the metric.

One task type, :class:`Task`, serves every method that compares a clean run with a corrupted or
ablated one (circuit discovery, activation patching, the logit lens), on a compiled organism
and on SmolLM2 alike. The builders:

    ioi         "When Mary and John went to the store, John gave a drink to" -> " Mary"
                corrupted: three other names; metric logit(IO) - logit(S) at the last position
    induction   BOS? + r + r for a random token sequence r; corrupted: BOS? + r' + r; metric
                logit(next token of r) - mean logit over the second copy
    rasp pairs  (clean, corrupted) inputs of a RASP program (:func:`pair_task`)
    sentiment   labelled template sentences and steering prompts (:mod:`.sentiment`)
    algorithmic token batches the trained organisms learn from (:mod:`.algorithmic`)

    from interplab.tasks import make_task
    task = make_task("ioi", tokenizer, n=32, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interplab.errors import ConfigError, unknown_name
from interplab.tasks.induction import induction_task, repeated_tokens
from interplab.tasks.ioi import ioi_task
from interplab.tasks.metrics import METRICS, Metric, MetricContext, resolve_metric, select_outputs
from interplab.tasks.rasp import pair_task
from interplab.tasks.task import MetricSpec, Task, check_task

#: the named prompt sets of :func:`make_task`
TASKS: dict[str, Callable[..., Task]] = {"ioi": ioi_task, "induction": induction_task}


def make_task(name: str, tokenizer: Any, *, n: int = 32, seed: int = 0, **options: Any) -> Task:
    """The task ``name`` (see :data:`TASKS`) with ``n`` prompt pairs, seeded."""
    if name not in TASKS:
        raise unknown_name("task", name, tuple(TASKS))
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"the number of prompts must be a positive int, got {n!r}")
    return TASKS[name](tokenizer, n=n, seed=seed, **options)


__all__ = [
    "METRICS",
    "TASKS",
    "Metric",
    "MetricContext",
    "MetricSpec",
    "Task",
    "check_task",
    "induction_task",
    "ioi_task",
    "make_task",
    "pair_task",
    "repeated_tokens",
    "resolve_metric",
    "select_outputs",
]
