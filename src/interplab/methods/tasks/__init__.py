"""Tasks on language models as data: prompts, their corrupted counterparts, and a metric.

A task is kept apart from the methods that explain it, so the same EAP, patching or SAE runs on
a compiled organism and on SmolLM2 alike.

    ioi         "When Mary and John went to the store, John gave a drink to" -> " Mary"
                corrupted: three other names; metric logit(IO) - logit(S) at the last position
    induction   BOS? + r + r for a random token sequence r; corrupted: BOS? + r' + r (the second
                half is no longer a repeat); metric logit(next token of r) - mean logit over
                the second half

    from interplab.methods.tasks import make_task
    task = make_task("ioi", tokenizer, n=32, seed=0)
"""

from __future__ import annotations

from typing import Any

from interplab.errors import ConfigError, unknown_name
from interplab.methods.tasks.base import TokenTask
from interplab.methods.tasks.builders import induction_task, ioi_task

TASKS = {"ioi": ioi_task, "induction": induction_task}


def make_task(
    name: str, tokenizer: Any, *, n: int = 32, seed: int = 0, **options: Any
) -> TokenTask:
    """The task ``name`` (see :data:`TASKS`) with ``n`` prompt pairs, seeded."""
    if name not in TASKS:
        raise unknown_name("task", name, tuple(TASKS))
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"the number of prompts must be a positive int, got {n!r}")
    return TASKS[name](tokenizer, n=n, seed=seed, **options)


__all__ = ["TASKS", "TokenTask", "induction_task", "ioi_task", "make_task"]
