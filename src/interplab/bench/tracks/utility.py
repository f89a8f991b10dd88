"""Utility track: interpretability arms beside non-interpretability baselines and an oracle, on
practical tasks whose answer is planted and known (:mod:`interplab.bench.utility`).

Organisms are tasks (at a size); methods are the task's arms, named ``interp:``, ``baseline:``
or ``oracle:`` (:mod:`interplab.eval.utility`). One job runs one arm on ``task.n_seeds`` seeds
(derived from the job's seed) under the task's budget and writes

    <task metric>      mean over seeds (worst_group_accuracy, poison_detection_auroc,
                       concept_auroc, audit_success)
    <secondary>        the task's other metrics, the same way

with each metric's per-seed values, t-interval and n in the ``utility`` artifact, beside the
budget, what the arm spent and every seed that failed (its error; never dropped). The report
compares the arms of a task by those intervals, counting failed seeds against their arm
(:func:`interplab.eval.utility.verdict`).
"""

from __future__ import annotations

import math
import time
from typing import Any

from interplab.bench.track import Job, JobOutput, module_track
from interplab.bench.utility import load_tasks
from interplab.errors import ConfigError, unknown_name
from interplab.eval.utility import ArmFailedError, arm_kind, bounds_of, summarise
from interplab.methods import registry

TASKS = load_tasks()  # registers the arms in the method registry's "utility" family
ORGANISMS = tuple(TASKS)
METHODS = tuple(dict.fromkeys(a for t in TASKS.values() for a in t.arms))
ABLATIONS = (None,)
QUICK = tuple(n for n in ORGANISMS if n.endswith("-small"))
SUITES = {
    "quick": [{"organisms": [n], "methods": list(TASKS[n].arms)} for n in QUICK],
    "full": [
        {"organisms": [n], "methods": list(TASKS[n].arms)} for n in ORGANISMS if n not in QUICK
    ],
}


def methods_of(organism: str) -> tuple[str, ...]:
    """The arms of task ``organism`` (empty for an unknown task)."""
    return TASKS[organism].arms if organism in TASKS else ()


def applies(organism: str, method: str) -> bool:
    """Whether ``method`` is an arm of task ``organism`` (a spec listing several tasks runs
    each task's own arms only)."""
    return method in methods_of(organism)


def run_job(job: Job) -> JobOutput:
    """One arm on the task's seeds. A seed that failed (raised or gave a non-finite value) is kept
    in the artifact (``failed``: seed and error; ``n_failed`` per metric) and counts against the
    arm in the verdict; an arm whose every seed failed raises :class:`ArmFailedError` naming each
    seed's error, so the job is recorded as failed (and the report still lists the arm)."""
    if job.organism not in TASKS:
        raise unknown_name("utility task", job.organism, ORGANISMS)
    task = TASKS[job.organism]
    arm = task.check_arm(job.method)
    seeds = task.seeds(job.seed)
    start = time.perf_counter()
    out = registry.run("utility", arm, task, arm, seeds)
    secs = time.perf_counter() - start
    if task.metric not in out.values:
        raise ConfigError(f"task {task.name} arm {arm} returned no {task.metric} values")
    main = [v for v in out.values[task.metric] if v is not None and math.isfinite(v)]
    if not main:
        errors = "; ".join(f"seed {f['seed']}: {f['error']}" for f in out.failed) or "no values"
        raise ArmFailedError(
            f"task {task.name} arm {arm}: every one of its {len(seeds)} seeds failed ({errors})"
        )
    rows, estimates = [], {}
    for metric, vals in out.values.items():
        finite = [v for v in vals if v is not None and math.isfinite(v)]
        n_failed = len(seeds) - len(finite)
        if len(finite) < 2:
            rows.append(
                {
                    "metric": metric,
                    "value": None,
                    "seconds": round(secs, 3),
                    "reason": f"{n_failed} of {len(seeds)} seeds gave no number",
                }
            )
            continue
        est = summarise(finite, out.n.get(metric, 0), bounds_of(metric), n_failed=n_failed)
        estimates[metric] = est.as_dict()
        rows.append({"metric": metric, "value": est.mean, "seconds": round(secs, 3)})
    return JobOutput(
        rows,
        {
            "utility": {
                "task": task.name,
                "arm": arm,
                "kind": arm_kind(arm),
                "metric": task.metric,
                "description": task.description,
                "budget": task.budget.as_dict(),
                "spent": [x for x in out.spent if math.isfinite(x)],
                "estimates": estimates,
                "seeds": seeds,
                "failed": out.failed,
                "n_failed": len(seeds) - len(main),
                "details": _jsonable(out.details),
            }
        },
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


TRACK = module_track(
    globals(),
    name="utility",
    section="interplab.report.utility:section",
    summary_card="interplab.report.utility:summary_card",  # arms differ per task
    methods_of_fn=methods_of,
)
