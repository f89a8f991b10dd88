"""Utility tasks (issue 13), one module per task. Each module defines

    TASKS: dict[str, UtilityTask]     organism name (a task at one size) -> the task as data
    run(task, arm, seeds) -> ArmRun   one arm on the given seeds (interplab.eval.utility)

Module tops import only :mod:`interplab.eval.utility` (no torch), so listing specs stays cheap.

Every task's arms are registered in the method registry's ``utility`` family (:func:`load_tasks`),
each with its kind (``interp:`` arms are methods, ``baseline:`` arms baselines, ``oracle:`` arms
oracles) and :func:`run_arm` as its function: the family's call shape is
``run_arm(task, arm, seeds)``, which runs the arm with the module that defines the task.
"""

from __future__ import annotations

import importlib
from typing import Any

from interplab.eval.utility import UtilityTask, arm_kind
from interplab.methods.registry import register

TASK_MODULES = (
    "interplab.bench.utility.spurious",
    "interplab.bench.utility.spurious_text",
    "interplab.bench.utility.poison",
    "interplab.bench.utility.concept",
    "interplab.bench.utility.audit",
    "interplab.bench.utility.fairness",
    "interplab.bench.utility.audit_content",
)
#: an arm's kind (``interp:``/``baseline:``/``oracle:``) -> its kind in the method registry
REGISTRY_KIND = {"interp": "method", "baseline": "baseline", "oracle": "oracle"}

_OWNER: dict[str, str] = {}


def run_arm(task: UtilityTask, arm: str, seeds: Any) -> Any:
    """Run ``arm`` of ``task`` on ``seeds`` (an :class:`~interplab.eval.utility.ArmRun`)."""
    return importlib.import_module(_OWNER[task.name]).run(task, arm, seeds)


def add_task(name: str, task: UtilityTask, module: str) -> tuple[str, ...]:
    """Make ``task`` runnable under ``name`` with ``module``'s ``run``, its arms registered in
    the ``utility`` family; returns the arms registered here (see :func:`remove_task`)."""
    from interplab.methods.registry import families, names

    _OWNER[name] = module
    known = set(names("utility")) if "utility" in families() else set()
    for arm in task.arms:
        register(
            "utility",
            arm,
            kind=REGISTRY_KIND[arm_kind(arm)],  # type: ignore[arg-type]
            cost_unit="none",
            metric=task.metric,
            summary=f"a utility arm ({arm_kind(arm)}); see {module}",
        )(run_arm)
    return tuple(a for a in task.arms if a not in known)


def remove_task(name: str, arms: tuple[str, ...] = ()) -> None:
    """Undo :func:`add_task` (for tests): forget the task and unregister ``arms``."""
    from interplab.methods.registry import unregister

    _OWNER.pop(name, None)
    for arm in arms:
        unregister("utility", arm)


def load_tasks() -> dict[str, UtilityTask]:
    """Every task by organism name; registers each task's arms in the ``utility`` family."""
    tasks: dict[str, UtilityTask] = {}
    for mod in TASK_MODULES:
        for name, task in importlib.import_module(mod).TASKS.items():
            tasks[name] = task
            add_task(name, task, mod)
    return tasks
