"""The reference evaluator of RASP programs (:mod:`interplab.compile.rasp`): the value of every
expression of a program on one input, computed in plain Python.

It reads expressions by their ``kind`` and fields (``inner``, ``left``, ``keys``, ...), so it
needs nothing from :mod:`interplab.compile.rasp`, which re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interplab.errors import InterplabError


class EvaluationError(InterplabError, ValueError):
    """The reference evaluator met an input on which the program is undefined."""


def _kinds(expr: Any) -> set[str]:
    """The ``kind`` of ``expr``'s class and of its bases (``"map"``, ``"select"``, ...)."""
    return {k for c in type(expr).__mro__ if isinstance(k := c.__dict__.get("kind"), str)}


def _first_select(selector: Any) -> Any:
    """The leftmost Select under ``selector`` (as :func:`interplab.compile.rasp.first_select`)."""
    while "select" not in _kinds(selector):
        selector = selector.children[0]
    return selector


def walk(root: Any) -> list[Any]:
    """Every expression reachable from ``root``, children before parents (deterministic)."""
    order: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        expr, expanded = stack.pop()
        if expanded:
            order.append(expr)
            continue
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        stack.append((expr, True))
        for child in reversed(expr.children):
            if id(child) not in seen:
                stack.append((child, False))
    return order


def evaluate(program: Any, xs: Sequence[Any]) -> list[Any]:
    """Output of ``program`` on input ``xs``: one value per position."""
    return evaluate_all(program, xs)[program.label]


def evaluate_all(program: Any, xs: Sequence[Any]) -> dict[str, Any]:
    """Value of every expression of ``program`` on ``xs``, keyed by label.

    SOps map to a list (one value per position); selectors to a ``[query][key]`` bool matrix."""
    values: dict[int, Any] = {}
    out: dict[str, Any] = {}
    get = lambda e: values[id(e)]  # noqa: E731
    for expr in walk(program):
        values[id(expr)] = eval_node(expr, xs, get)
        out[expr.label] = values[id(expr)]
    return out


def _missing(expr: Any) -> Any:
    return 0 if expr.is_numerical else None


def eval_node(expr: Any, xs: Sequence[Any], get: Callable[[Any], Any]) -> Any:
    """Value of one expression on input ``xs``, given ``get(child)`` for its children."""
    n = len(xs)
    kinds = _kinds(expr)
    if "tokens" in kinds:
        return list(xs)
    if "indices" in kinds:
        return list(range(n))
    if "full" in kinds:
        return [expr.value] * n
    if "map" in kinds:
        return [_missing(expr) if v is None else expr.f(v) for v in get(expr.inner)]
    if "sequence_map" in kinds:
        return [
            _missing(expr) if a is None or b is None else expr.f(a, b)
            for a, b in zip(get(expr.left), get(expr.right))
        ]
    if "linear_sequence_map" in kinds:
        return [
            expr.a * (a or 0) + expr.b * (b or 0) for a, b in zip(get(expr.left), get(expr.right))
        ]
    if "select" in kinds:
        keys, queries = get(expr.keys), get(expr.queries)
        return [[expr.holds(k, q) for k in keys] for q in queries]
    if "selector_and" in kinds:
        return [
            [a and b for a, b in zip(ra, rb)] for ra, rb in zip(get(expr.left), get(expr.right))
        ]
    if "selector_or" in kinds:
        return [[a or b for a, b in zip(ra, rb)] for ra, rb in zip(get(expr.left), get(expr.right))]
    if "selector_not" in kinds:  # None keys/queries stay unselected, as in a compiled model
        leaf = _first_select(expr)
        keys, queries = get(leaf.keys), get(leaf.queries)
        return [
            [(not a) and k is not None and q is not None for a, k in zip(row, keys)]
            for row, q in zip(get(expr.inner), queries)
        ]
    if "selector_width" in kinds:
        return [sum(row) for row in get(expr.selector)]
    if "aggregate" in kinds:
        return aggregate_values(expr, get(expr.selector), get(expr.sop))
    raise EvaluationError(f"cannot evaluate {type(expr).__name__} {expr.label!r}")


def aggregate_values(expr: Any, matrix: list[list[bool]], vals: list[Any]) -> list[Any]:
    """The values an Aggregate ``expr`` reads through its selector ``matrix`` [query][key] from
    ``vals`` (see :mod:`interplab.compile.rasp`: the mean, or the one selected value)."""
    out: list[Any] = []
    for q, row in enumerate(matrix):
        chosen = [v for v, s in zip(vals, row) if s]
        if expr.is_numerical:
            out.append(sum(v or 0 for v in chosen) / len(chosen) if chosen else expr.empty_value)
            continue
        distinct = {repr(v) for v in chosen}
        if len(distinct) > 1:
            raise EvaluationError(
                f"categorical Aggregate {expr.label!r} is undefined at query position {q}: it "
                f"selects {len(chosen)} keys holding different values {sorted(distinct)}; a "
                "categorical Aggregate needs every selected key to hold the same value. Restrict "
                "the inputs (e.g. unique keys for sort) or use a numerical Aggregate for a mean."
            )
        out.append(chosen[0] if chosen else expr.empty_value)
    return out
