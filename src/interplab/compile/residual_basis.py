"""Value sets (what each SOp can hold) and the residual-stream basis built from them.

Passes:
    graph_to_value_sets(graph, vocab, max_len)   ValueSets: the finite set of values per SOp
    value_sets_to_layout(graph, value_sets)      ResidualLayout: one direction per (label, value)

A categorical SOp gets one residual direction per value (a one-hot code; ``None`` is the zero
vector). A numerical SOp gets one direction holding the number. Two directions are shared:
``one`` (1 at every position) and ``bos`` (1 at the BOS position only). A SelectorWidth also
owns a scratch direction, ``<label>:bos_weight``, where its head writes 1 / (width + 1).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interplab.compile import rasp
from interplab.compile.graph import Problem, ProgramGraph, selector_terms

#: A categorical SOp may hold at most this many values (one residual direction each).
MAX_CATEGORICAL_VALUES = 512
#: A numerical SOp feeding an MLP may hold at most this many values (two neurons each).
MAX_NUMERICAL_VALUES = 2048

ONE, BOS = "one", "bos"


@dataclass(frozen=True)
class ValueSet:
    """``values``: sorted tuple of possible values, or ``None`` when too many to enumerate."""

    encoding: rasp.Encoding
    values: tuple[Any, ...] | None

    @property
    def bounded(self) -> bool:
        return self.values is not None


@dataclass(frozen=True)
class ValueSets:
    by_label: Mapping[str, ValueSet]
    problems: tuple[Problem, ...]

    def __getitem__(self, label: str) -> ValueSet:
        return self.by_label[label]


def sort_values(values: Sequence[Any]) -> tuple[Any, ...]:
    """Deterministic order: natural order when comparable, else by type name and repr."""
    unique = list({value_key(v): v for v in values}.values())
    try:
        return tuple(sorted(unique))
    except TypeError:
        return tuple(sorted(unique, key=lambda v: (type(v).__name__, repr(v))))


def dedupe_numbers(values: Sequence[float]) -> tuple[float, ...]:
    """Sorted numbers with near-duplicates (|a - b| < 1e-9) merged."""
    out: list[float] = []
    for v in sorted(float(x) for x in values):
        if not out or v - out[-1] > 1e-9:
            out.append(v)
    return tuple(out)


def graph_to_value_sets(graph: ProgramGraph, vocab: Sequence[Any], max_len: int) -> ValueSets:
    """Infer every SOp's value set; problems (a Map that raises, too many values) are collected."""
    sets: dict[str, ValueSet] = {}
    problems: list[Problem] = []
    broken: set[str] = set()  # SOps whose function failed: their readers are not blamed again
    for sop in graph.sops:
        if any(c.label in broken for c in sop.children if isinstance(c, rasp.SOp)):
            broken.add(sop.label)
            sets[sop.label] = ValueSet(sop.encoding, None)
            continue
        values: list[Any] | tuple[Any, ...] | None
        try:
            values = _values(sop, sets, vocab, max_len)
        except Exception as exc:  # a user function failed on a reachable value
            problems.append(
                Problem(
                    sop.label,
                    sop.kind,
                    f"its function raised {exc!r} on a value its "
                    "input can hold; make it total over the input's value set",
                )
            )
            broken.add(sop.label)
            values = None
        if values is not None and not sop.is_numerical:
            unhashable = [v for v in values if not rasp.is_hashable(v)]
            if unhashable:
                problems.append(Problem(sop.label, sop.kind, _unhashable_message(unhashable[0])))
                broken.add(sop.label)
                values = None
        if (
            values is not None
            and sop.is_numerical
            and not all(isinstance(v, (int, float)) for v in values)
        ):
            problems.append(
                Problem(
                    sop.label,
                    sop.kind,
                    "a numerical SOp must hold numbers; its "
                    f"values include {[v for v in values if not isinstance(v, (int, float))][:3]}",
                )
            )
            values = None
        if values is not None:
            values = (
                dedupe_numbers(values)
                if sop.is_numerical
                else sort_values([v for v in values if v is not None])
            )
            limit = MAX_NUMERICAL_VALUES if sop.is_numerical else MAX_CATEGORICAL_VALUES
            if not sop.is_numerical and len(values) > limit:
                problems.append(
                    Problem(
                        sop.label,
                        sop.kind,
                        f"unbounded value set: {len(values)} "
                        f"possible values > {limit}; each needs a residual direction."
                        " Reduce the vocabulary/max_len or encode it numerically",
                    )
                )
            if len(values) > limit:
                values = None
        elif not sop.is_numerical and not any(p.label == sop.label for p in problems):
            problems.append(
                Problem(
                    sop.label,
                    sop.kind,
                    "unbounded value set: its values cannot be "
                    "enumerated, and an SOp read by an MLP or held categorically "
                    "needs them all",
                )
            )
        sets[sop.label] = ValueSet(sop.encoding, None if values is None else tuple(values))
    return ValueSets(sets, tuple(problems))


def _unhashable_message(value: Any) -> str:
    kind = type(value).__name__
    fix = {"list": "a tuple", "dict": "a tuple of (key, value) pairs", "set": "a frozenset"}.get(
        kind, "a hashable value (tuple, frozenset, str, number)"
    )
    return (
        f"its values must be hashable (each value gets its own residual direction), but it "
        f"produces a {kind}, e.g. {value!r}; return {fix} instead"
    )


def _values(
    sop: rasp.SOp, sets: Mapping[str, ValueSet], vocab: Sequence[Any], max_len: int
) -> list[Any] | None:
    def of(child: rasp.SOp) -> tuple[Any, ...] | None:
        return sets[child.label].values

    if isinstance(sop, rasp.TokensType):
        return list(vocab)
    if isinstance(sop, rasp.IndicesType):
        return list(range(max_len))
    if isinstance(sop, rasp.Full):
        return [sop.value]
    if isinstance(sop, rasp.Map):
        xs = of(sop.inner)
        return None if xs is None else [sop.f(x) for x in xs]
    if isinstance(sop, (rasp.SequenceMap, rasp.LinearSequenceMap)):
        xs, ys = of(sop.left), of(sop.right)
        if xs is None or ys is None:
            return None
        if isinstance(sop, rasp.LinearSequenceMap):
            return [sop.a * x + sop.b * y for x in xs for y in ys]
        return [sop.f(x, y) for x in xs for y in ys]
    if isinstance(sop, rasp.SelectorWidth):
        return list(range(max_len + 1))
    if isinstance(sop, rasp.Aggregate):
        xs = of(sop.sop)
        default = [] if sop.default is None else [sop.default]
        if xs is None or not sop.is_numerical:
            return None if xs is None else list(xs) + default
        means = _means(xs, max_len)
        return None if means is None else means + default
    raise TypeError(f"unknown SOp {type(sop).__name__}")


def _means(xs: Sequence[float], max_len: int) -> list[float] | None:
    """Every mean of a multiset of 1..max_len values from ``xs``, plus 0 (nothing selected)."""
    sums: set[float] = {0.0}
    means: set[float] = {0.0}
    for count in range(1, max_len + 1):
        sums = {round(s + x, 9) for s in sums for x in xs}
        if len(sums) * (max_len - count + 1) > 50 * MAX_NUMERICAL_VALUES:
            return None
        means.update(s / count for s in sums)
    return list(means)


# --------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Direction:
    """One residual-stream basis direction: which variable, and which value (None: numerical)."""

    label: str
    value: Any = None


@dataclass(frozen=True)
class ResidualLayout:
    """The residual stream's basis: ``directions[i]`` is dimension i."""

    directions: tuple[Direction, ...]

    @property
    def d_model(self) -> int:
        return len(self.directions)

    def index(self, label: str, value: Any = None) -> int:
        # _index is set in __post_init__ (a frozen dataclass, so not a declared field)
        return self._index[(label, value_key(value))]  # type: ignore[attr-defined]

    def dims(self, label: str) -> list[int]:
        """Indices of every direction belonging to ``label`` (layout order)."""
        return [i for i, d in enumerate(self.directions) if d.label == label]

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_index",
            {(d.label, value_key(d.value)): i for i, d in enumerate(self.directions)},
        )


def value_key(value: Any) -> Hashable:
    """Hashable identity of a value: keeps True and 1 apart, merges 1 and 1.0."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    return ("obj", value)


def width_scratch(label: str) -> str:
    return f"{label}:bos_weight"


def value_sets_to_layout(graph: ProgramGraph, value_sets: ValueSets) -> ResidualLayout:
    """One direction per categorical value, one per numerical SOp, plus ``one``/``bos``/scratch."""
    dirs = [Direction(ONE), Direction(BOS)]
    for sop in graph.sops:
        vs = value_sets[sop.label]
        if sop.is_numerical:
            dirs.append(Direction(sop.label))
        else:
            dirs.extend(Direction(sop.label, v) for v in vs.values or ())
        if isinstance(sop, rasp.SelectorWidth):
            dirs.append(Direction(width_scratch(sop.label)))
    return ResidualLayout(tuple(dirs))


def min_gap(values: Sequence[float]) -> float:
    """Smallest distance between consecutive sorted values (inf for fewer than two)."""
    return min((b - a for a, b in zip(values, values[1:])), default=math.inf)


__all__ = [
    "BOS",
    "ONE",
    "Direction",
    "ResidualLayout",
    "ValueSet",
    "ValueSets",
    "graph_to_value_sets",
    "selector_terms",
    "value_sets_to_layout",
]
