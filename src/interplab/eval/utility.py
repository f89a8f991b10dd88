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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from interplab.errors import ConfigError, unknown_name

ARM_KINDS = ("interp", "baseline", "oracle")
BUDGET_KINDS = ("training_examples", "queries", "wall_seconds")
MIN_SEEDS = 3
#: two-sided 97.5% quantiles of Student's t for df = 1..30 (beyond: the normal 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def arm_kind(arm: str) -> str:
    """``interp`` / ``baseline`` / ``oracle`` from an arm's prefix (ConfigError without one)."""
    kind, sep, rest = arm.partition(":")
    if not sep or kind not in ARM_KINDS or not rest:
        raise ConfigError(f"arm {arm!r} must be named '<kind>:<name>' with kind one of "
                          f"{', '.join(ARM_KINDS)} (e.g. 'interp:sae_ablation', 'baseline:dfr')")
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
        if not (isinstance(self.amount, (int, float)) and self.amount > 0 and math.isfinite(self.amount)):
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
            problems.append(f"n_seeds is {self.n_seeds}; an interval needs at least {MIN_SEEDS} seeds")
        if problems:
            raise ConfigError(f"utility task {self.name!r} is not valid: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "UtilityTask":
        """Build a task from plain data (e.g. a parsed TOML table); every problem is named."""
        missing = [k for k in ("name", "metric", "arms", "budget") if k not in spec]
        if missing:
            name = spec.get("name", "<unnamed>")
            hint = (" (add e.g. budget = {kind = \"training_examples\", amount = 200}; kinds: "
                    f"{', '.join(BUDGET_KINDS)}: every arm spends the same)" if "budget" in missing else "")
            raise ConfigError(f"utility task {name!r} is missing {', '.join(missing)}{hint}")
        b = spec["budget"]
        if not isinstance(b, Mapping) or "kind" not in b or "amount" not in b:
            raise ConfigError(f"utility task {spec['name']!r}: budget must be a table with 'kind' "
                              f"and 'amount', got {b!r}")
        return cls(name=spec["name"], metric=spec["metric"], arms=tuple(spec["arms"]),
                   budget=Budget(b["kind"], b["amount"], b.get("note", "")),
                   description=spec.get("description", ""), n_seeds=int(spec.get("n_seeds", MIN_SEEDS)),
                   secondary=tuple(spec.get("secondary", ())))

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


@dataclass(frozen=True)
class ArmEstimate:
    """Mean over seeds with a Student-t 95% interval; ``n`` examples per seed, ``n_seeds`` seeds."""

    mean: float
    low: float
    high: float
    n: int
    n_seeds: int
    per_seed: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.mean, "low": self.low, "high": self.high, "n": self.n,
                "n_seeds": self.n_seeds, "per_seed": list(self.per_seed)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArmEstimate":
        return cls(d["value"], d["low"], d["high"], int(d["n"]), int(d["n_seeds"]), tuple(d["per_seed"]))


def bounds_of(metric: str) -> tuple[float, float] | None:
    """(0, 1) for shares, accuracies and AUROCs (by the metric's name), else None."""
    if metric.endswith(("_accuracy", "_auroc", "_success", "_rate")) or metric in ("accuracy", "auroc"):
        return (0.0, 1.0)
    return None


def summarise(values: Sequence[float], n: int, bounds: tuple[float, float] | None = None) -> ArmEstimate:
    """Mean and t-interval of per-seed ``values`` (non-finite values are an error, not dropped);
    ``bounds``: the metric's range, to which the interval is clipped (e.g. (0, 1) for a share)."""
    vals = [float(v) for v in values]
    if len(vals) < 2:
        raise ConfigError(f"an interval over seeds needs at least 2 values, got {len(vals)}")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"per-seed values must be finite numbers, got {vals}")
    k = len(vals)
    mean = sum(vals) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (k - 1))
    t = _T975[k - 2] if k - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(k)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return ArmEstimate(mean, low, high, int(n), k, tuple(vals))


def verdict(estimates: Mapping[str, ArmEstimate]) -> dict[str, Any]:
    """Best interp arm vs best baseline by their intervals (see the module docstring).
    Returns {"verdict", "interp", "baseline", "oracle", "gap"} (arm names; gap = interp − baseline)."""
    def best(kind: str) -> str | None:
        arms = [a for a in estimates if arm_kind(a) == kind]
        return max(arms, key=lambda a: (estimates[a].mean, a), default=None)

    i, b, o = best("interp"), best("baseline"), best("oracle")
    if i is None or b is None:
        missing = "interp" if i is None else "baseline"
        return {"verdict": f"no {missing} arm run", "interp": i, "baseline": b, "oracle": o, "gap": None}
    ei, eb = estimates[i], estimates[b]
    if ei.low > eb.high:
        v = "better"
    elif ei.high < eb.low:
        v = "worse"
    else:
        v = "no better"
    return {"verdict": v, "interp": i, "baseline": b, "oracle": o, "gap": ei.mean - eb.mean}
