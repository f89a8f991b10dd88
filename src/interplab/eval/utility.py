"""Downstream utility: does interpretability beat simple baselines at a practical task?

A :class:`UtilityTask` is data: its name, the metric it is scored by (higher is better), the
arms it knows and one shared :class:`Budget` that every arm spends (training examples, model
queries or wall time). Arms are named by what they are, so scripts can group them::

    interp:<name>     uses the model's insides (features, neurons, directions, circuits)
    baseline:<name>   a non-interpretability method (or a random control) on the same budget
    oracle:<name>     uses what no real user has (balanced training data, the planted answer)

An arm is run on ``n_seeds >= 3`` seeds; :func:`summarise` turns its per-seed values into an
:class:`ArmEstimate` (mean with a Student-t 95% interval over seeds, and the number of examples
each seed's value was computed on). :func:`verdict` compares the best interpretability arm
with the best baseline by those intervals:

    "better"    the interp arm's whole interval lies above the best baseline's
    "worse"     it lies below
    "no better" the intervals overlap (the data cannot tell them apart)

The verdict never uses the oracle: the oracle shows the headroom, not the bar.

Equal tuning. Every arm, interp and baseline alike, that has a hyperparameter picks it by one
protocol, :func:`select_by_cv`: the value of a grid stated in the task module with the best mean
score (the task's metric) on the held-out folds of a stratified ``CV_FOLDS``-fold split of the
budget examples, ties to the earlier grid value; the arm is then refit on the whole budget set
with that value and the choice is recorded in its details. The test split is never seen.

Failed seeds count. :func:`run_seeds` runs an arm seed by seed; a seed that raises, or whose
value of a metric is not a finite number, is recorded (``ArmRun.failed``: the seed and the
error), never dropped. The interval is computed on the seeds that gave a number and says how
many failed (``ArmEstimate.n_failed``). The verdict's rule for failures: an interp arm with a
failed seed is never "better" (at most "no better"), and neither is any interp arm while a
baseline has failed seeds (the bar it set is incomplete); "worse" still stands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interplab.errors import ConfigError, InterplabError, unknown_name
from interplab.eval.stats import t_interval

ARM_KINDS = ("interp", "baseline", "oracle")
BUDGET_KINDS = ("training_examples", "queries", "wall_seconds")
MIN_SEEDS = 3
#: folds of the budget set every arm's hyperparameter is chosen on (:func:`select_by_cv`)
CV_FOLDS = 4


def arm_kind(arm: str) -> str:
    """``interp`` / ``baseline`` / ``oracle`` from an arm's prefix (ConfigError without one)."""
    kind, sep, rest = arm.partition(":")
    if not sep or kind not in ARM_KINDS or not rest:
        raise ConfigError(
            f"arm {arm!r} must be named '<kind>:<name>' with kind one of "
            f"{', '.join(ARM_KINDS)} (e.g. 'interp:sae_ablation', 'baseline:dfr')"
        )
    return kind


@dataclass(frozen=True)
class Budget:
    """What every arm of a task may spend, the same for all: ``amount`` of ``kind``."""

    kind: str
    amount: float
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise unknown_name("budget kind", self.kind, BUDGET_KINDS)
        if not (
            isinstance(self.amount, (int, float)) and self.amount > 0 and math.isfinite(self.amount)
        ):
            raise ConfigError(f"a budget's amount must be a positive number, got {self.amount!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "amount": self.amount, "note": self.note}


@dataclass(frozen=True)
class UtilityTask:
    """One practical task: the arms it knows (every kind present), its metric and its budget."""

    name: str
    metric: str
    arms: tuple[str, ...]
    budget: Budget
    description: str = ""
    n_seeds: int = MIN_SEEDS
    secondary: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        kinds = set()
        for a in self.arms:
            try:
                kinds.add(arm_kind(a))
            except ConfigError as e:
                problems.append(str(e))
        if not problems:
            if "interp" not in kinds:
                problems.append("it has no interp: arm")
            if sum(arm_kind(a) == "baseline" for a in self.arms) < 2:
                problems.append("it needs at least two baseline: arms")
        if self.n_seeds < MIN_SEEDS:
            problems.append(
                f"n_seeds is {self.n_seeds}; an interval needs at least {MIN_SEEDS} seeds"
            )
        if problems:
            raise ConfigError(f"utility task {self.name!r} is not valid: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> UtilityTask:
        """Build a task from plain data (e.g. a parsed TOML table); every problem is named."""
        missing = [k for k in ("name", "metric", "arms", "budget") if k not in spec]
        if missing:
            name = spec.get("name", "<unnamed>")
            hint = (
                ' (add e.g. budget = {kind = "training_examples", amount = 200}; kinds: '
                f"{', '.join(BUDGET_KINDS)}: every arm spends the same)"
                if "budget" in missing
                else ""
            )
            raise ConfigError(f"utility task {name!r} is missing {', '.join(missing)}{hint}")
        b = spec["budget"]
        if not isinstance(b, Mapping) or "kind" not in b or "amount" not in b:
            raise ConfigError(
                f"utility task {spec['name']!r}: budget must be a table with 'kind' "
                f"and 'amount', got {b!r}"
            )
        return cls(
            name=spec["name"],
            metric=spec["metric"],
            arms=tuple(spec["arms"]),
            budget=Budget(b["kind"], b["amount"], b.get("note", "")),
            description=spec.get("description", ""),
            n_seeds=int(spec.get("n_seeds", MIN_SEEDS)),
            secondary=tuple(spec.get("secondary", ())),
        )

    def check_arm(self, arm: str) -> str:
        """``arm`` if the task knows it, else a clear error listing the arms it does know."""
        if arm not in self.arms:
            err = unknown_name("arm", arm, self.arms)
            raise type(err)(f"utility task {self.name!r}: {err}")
        return arm

    def seeds(self, base: int) -> list[int]:
        return [base * 1000 + i for i in range(self.n_seeds)]


@dataclass
class ArmRun:
    """What running one arm returns: per-seed values of each metric (the task's metric first),
    the number of examples each seed's value rests on, the budget actually spent per seed, and
    anything worth showing (found features, queries used, ...)."""

    values: dict[str, list[float]]
    n: dict[str, int]
    spent: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: one {"seed", "error"} per seed that raised or gave a non-finite value (see run_seeds)
    failed: list[dict[str, Any]] = field(default_factory=list)


class ArmFailedError(InterplabError):
    """Every seed of an arm failed: there is no number to report (each seed's error is named)."""


@dataclass(frozen=True)
class ArmEstimate:
    """Mean over seeds with a Student-t 95% interval; ``n`` examples per seed, ``n_seeds`` seeds
    that gave a number, ``n_failed`` more that were run and failed (not in the interval)."""

    mean: float
    low: float
    high: float
    n: int
    n_seeds: int
    per_seed: tuple[float, ...]
    n_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.mean,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "n_seeds": self.n_seeds,
            "per_seed": list(self.per_seed),
            "n_failed": self.n_failed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArmEstimate:
        return cls(
            d["value"],
            d["low"],
            d["high"],
            int(d["n"]),
            int(d["n_seeds"]),
            tuple(d["per_seed"]),
            int(d.get("n_failed", 0)),
        )


def bounds_of(metric: str) -> tuple[float, float] | None:
    """(0, 1) for shares, accuracies and AUROCs (by the metric's name), else None."""
    if metric.endswith(("_accuracy", "_auroc", "_success", "_rate")) or metric in (
        "accuracy",
        "auroc",
    ):
        return (0.0, 1.0)
    return None


def summarise(
    values: Sequence[float], n: int, bounds: tuple[float, float] | None = None, n_failed: int = 0
) -> ArmEstimate:
    """Mean and t-interval of per-seed ``values`` (non-finite values are an error, not dropped:
    pass the seeds that gave a number and count the others in ``n_failed``); ``bounds``: the
    metric's range, to which the interval is clipped (e.g. (0, 1) for a share)."""
    vals = [float(v) for v in values]
    if len(vals) < 2:
        raise ConfigError(f"an interval over seeds needs at least 2 values, got {len(vals)}")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"per-seed values must be finite numbers, got {vals}")
    e = t_interval(vals, bounds)
    return ArmEstimate(e.value, e.low, e.high, int(n), e.n, tuple(vals), int(n_failed))


def verdict(
    estimates: Mapping[str, ArmEstimate], failed: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Best interp arm vs best baseline by their intervals, under the rule for failed seeds (see
    the module docstring). ``failed``: arm -> seeds that failed, for arms that may have no
    estimate at all (every seed failed); arms in ``estimates`` also count their ``n_failed``.
    Returns {"verdict", "interp", "baseline", "oracle", "gap", "failed", "note"} (arm names;
    gap = interp − baseline; failed: arm -> failed seeds, only arms with failures)."""
    fails = {a: e.n_failed for a, e in estimates.items() if e.n_failed}
    fails.update({a: int(k) for a, k in (failed or {}).items() if k})

    def best(kind: str) -> str | None:
        arms = [a for a in estimates if arm_kind(a) == kind]
        return max(arms, key=lambda a: (estimates[a].mean, a), default=None)

    i, b, o = best("interp"), best("baseline"), best("oracle")
    out: dict[str, Any] = {
        "interp": i,
        "baseline": b,
        "oracle": o,
        "gap": None,
        "failed": fails,
        "note": "",
    }
    if i is None or b is None:
        kind = "interp" if i is None else "baseline"
        tried = sorted(a for a in fails if arm_kind(a) == kind)
        out["verdict"] = f"no {kind} arm gave a number" if tried else f"no {kind} arm run"
        if tried:
            out["note"] = f"every seed of {', '.join(tried)} failed"
        return out
    ei, eb = estimates[i], estimates[b]
    v = "better" if ei.low > eb.high else "worse" if ei.high < eb.low else "no better"
    if v == "better":
        blockers = [a for a in sorted(fails) if a == i or arm_kind(a) == "baseline"]
        if blockers:
            v = "no better"
            failures = ", ".join(f"{a} failed {fails[a]} seed(s)" for a in blockers)
            out["note"] = (
                f"not counted better: {failures} (an arm with failed seeds is never "
                "better, and a baseline's failures leave the bar unknown)"
            )
    out.update(verdict=v, gap=ei.mean - eb.mean)
    return out


# ---------------------------------------------------------------------------- equal tuning


@dataclass(frozen=True)
class Selection:
    """A hyperparameter chosen by :func:`select_by_cv`: ``value`` from ``grid``, with the mean
    held-out-fold score of every grid value (None where a fold gave no finite number)."""

    param: str
    value: Any
    grid: tuple[Any, ...]
    cv_scores: tuple[float | None, ...]
    n_folds: int
    n_examples: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "param": self.param,
            "value": self.value,
            "grid": list(self.grid),
            "cv_score": {str(g): s for g, s in zip(self.grid, self.cv_scores)},
            "folds": self.n_folds,
            "examples": self.n_examples,
            "protocol": f"{self.n_folds}-fold stratified cross-validation on the {self.n_examples} "
            "budget examples; best mean held-out score, ties to the earlier grid value",
        }


def cv_folds(strata: Sequence[Hashable], n_folds: int = CV_FOLDS, seed: int = 0) -> list[list[int]]:
    """``n_folds`` disjoint lists of indices into ``strata`` covering all of them, each stratum
    (a label, or a label × cue group) shuffled by ``seed`` and dealt round-robin so every fold
    holds about the same share of it."""
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if len(strata) < n_folds:
        raise ConfigError(f"{len(strata)} budget examples cannot be split into {n_folds} folds")
    rng = random.Random(f"cv-folds:{seed}")
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    groups: dict[Hashable, list[int]] = {}
    for i, s in enumerate(strata):
        groups.setdefault(s, []).append(i)
    dealt = 0
    for key in sorted(groups, key=repr):
        idx = groups[key]
        rng.shuffle(idx)
        for i in idx:
            folds[dealt % n_folds].append(i)
            dealt += 1
    return [sorted(f) for f in folds]


def select_by_cv(
    param: str,
    grid: Sequence[Any],
    strata: Sequence[Hashable],
    fold_score: Callable[[Any, list[int], list[int]], float],
    *,
    n_folds: int = CV_FOLDS,
    seed: int = 0,
) -> Selection:
    """The one selection protocol of the utility track (module docstring): for each ``grid``
    value, ``fold_score(value, train_idx, held_idx)`` fits the arm on the training folds of the
    budget examples (indices into ``strata``) and returns the task's metric on the held-out fold;
    the value with the best mean wins, ties to the earlier one (list grids simplest first). A
    value any of whose folds gives a non-finite score is out; if every value is out, ConfigError."""
    grid = tuple(grid)
    if not grid:
        raise ConfigError(f"the grid of {param!r} is empty: state at least one value")
    folds = cv_folds(strata, n_folds, seed)
    every = range(len(strata))
    means: list[float | None] = []
    for value in grid:
        scores = []
        for held in folds:
            keep = set(held)
            scores.append(float(fold_score(value, [i for i in every if i not in keep], held)))
        means.append(sum(scores) / len(scores) if all(math.isfinite(x) for x in scores) else None)
    ok = [j for j, m in enumerate(means) if m is not None]
    if not ok:
        raise ConfigError(
            f"no value of {param!r} in {list(grid)} gave a finite cross-validated score"
        )
    pick = max(ok, key=lambda j: (means[j], -j))
    return Selection(param, grid[pick], grid, tuple(means), n_folds, len(strata))


# ---------------------------------------------------------------------------- failed seeds

SeedRun = Callable[[int], "tuple[Mapping[str, float], float, Mapping[str, Any]]"]


def run_seeds(
    metrics: Sequence[str], seeds: Sequence[int], one_seed: SeedRun
) -> tuple[dict[str, list[float]], list[float], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run ``one_seed(seed) -> (values, spent, info)`` on every seed and keep every outcome:
    returns (values per metric, aligned with ``seeds``, NaN where a seed gave no number; spent per
    seed, NaN for a seed that raised; per-seed info; failures, one {"seed", "error"} per seed that
    raised or gave a non-finite value). One failing seed never stops the others."""
    values: dict[str, list[float]] = {m: [] for m in metrics}
    spent: list[float] = []
    per_seed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for seed in seeds:
        try:
            got, used, info = one_seed(seed)
        except Exception as exc:
            failed.append(
                {"seed": seed, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
            )
            for m in metrics:
                values[m].append(math.nan)
            spent.append(math.nan)
            per_seed.append({"seed": seed, "failed": True})
            continue
        bad = []
        for m in metrics:
            v = got.get(m)
            v = math.nan if v is None else float(v)
            bad += [m] if not math.isfinite(v) else []
            values[m].append(v)
        if bad:
            failed.append({"seed": seed, "error": f"no finite value of {', '.join(bad)}"})
        spent.append(float(used))
        per_seed.append({"seed": seed, **dict(info)})
    return values, spent, per_seed, failed
