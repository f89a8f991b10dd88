"""Utility tasks (issue 13), one module per task. Each module defines

    TASKS: dict[str, UtilityTask]     organism name (a task at one size) -> the task as data
    run(task, arm, seeds) -> ArmRun   one arm on the given seeds (interplab.eval.utility)

Module tops import only :mod:`interplab.eval.utility` (no torch), so listing specs stays cheap.
"""

TASK_MODULES = (
    "interplab.bench.utility.spurious",
    "interplab.bench.utility.spurious_text",
    "interplab.bench.utility.poison",
    "interplab.bench.utility.concept",
    "interplab.bench.utility.audit",
)
