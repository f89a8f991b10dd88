"""Validation: gather every construct the compiler cannot turn into weights, then raise once.

``validate(graph, value_sets)`` raises one :class:`CompileError` whose message lists each
offending expression with its label and the reason, so a user fixes them all in one pass.
"""

from __future__ import annotations

import numbers

from interplab.compile import rasp
from interplab.compile.bases import ValueSets
from interplab.compile.graph import Problem, ProgramGraph, selector_terms
from interplab.errors import CompileError


def find_problems(graph: ProgramGraph, value_sets: ValueSets | None = None) -> list[Problem]:
    """Every unsupported construct in ``graph`` (and in its value sets, when given)."""
    problems = list(graph.problems)
    for expr in graph.nodes:
        problems.extend(_check(expr, value_sets))
    if value_sets is not None:
        problems.extend(value_sets.problems)
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in problems:
        if (p.label, p.why) not in seen:
            seen.add((p.label, p.why))
            unique.append(p)
    return unique


def validate(graph: ProgramGraph, value_sets: ValueSets | None = None) -> None:
    """Raise CompileError listing every problem; return None when the program compiles."""
    problems = find_problems(graph, value_sets)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CompileError(
            f"cannot compile program {graph.output.label!r}: {len(problems)} unsupported "
            f"construct(s):\n{lines}\nEach line names the expression (label and kind), why it "
            "cannot become transformer weights, and what to change.")


def _check(expr: rasp.Expr, value_sets: ValueSets | None) -> list[Problem]:
    out: list[Problem] = []

    def bad(why: str) -> None:
        out.append(Problem(expr.label, expr.kind, why))

    if isinstance(expr, (rasp.TokensType, rasp.IndicesType)) and expr.is_numerical:
        bad("tokens and indices must stay categorical; apply numerical(Map(f, ...)) instead")
    if isinstance(expr, rasp.Select):
        for role, sop in (("keys", expr.keys), ("queries", expr.queries)):
            if sop.is_numerical:
                bad(f"Select {role} {sop.label!r} is numerical; attention compares one-hot codes, "
                    "so Select needs categorical keys and queries")
    if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
        terms = selector_terms(expr.selector)
        if isinstance(terms, str):
            mode = "numerical mean" if expr.is_numerical else "categorical"
            bad(f"its selector {expr.selector.label!r} cannot become one attention pattern "
                f"({mode} aggregation needs a uniform pattern over the selected keys): {terms}")
    if isinstance(expr, rasp.Aggregate):
        if expr.is_numerical and not expr.sop.is_numerical:
            bad(f"a numerical (mean) Aggregate needs a numerical SOp to average, but "
                f"{expr.sop.label!r} is categorical; wrap it in numerical(Map(f, ...))")
        if not expr.is_numerical and expr.sop.is_numerical:
            bad(f"a categorical Aggregate cannot read the numerical SOp {expr.sop.label!r}; mark "
                "the Aggregate numerical(...) to take the mean instead")
    if isinstance(expr, rasp.SequenceMap):
        for side in (expr.left, expr.right):
            if side.is_numerical:
                bad(f"SequenceMap input {side.label!r} is numerical; an MLP can only tabulate "
                    "categorical pairs. Use LinearSequenceMap for a*x + b*y, or make it categorical")
    if isinstance(expr, rasp.LinearSequenceMap):
        if expr.left.is_numerical != expr.right.is_numerical:
            bad("LinearSequenceMap mixes a numerical and a categorical input; make both the same")
        elif expr.left.is_numerical and not expr.is_numerical:
            bad("a LinearSequenceMap of numerical inputs is computed linearly and must stay "
                "numerical; wrap it in a Map to get categories")
    if isinstance(expr, rasp.Map) and expr.inner.is_numerical and value_sets is not None:
        if not value_sets[expr.inner.label].bounded:
            bad(f"unbounded value set: its numerical input {expr.inner.label!r} can hold too many "
                "values to tabulate in an MLP; shorten max_len or simplify the input")
    if isinstance(expr, rasp.SOp) and expr.is_numerical and value_sets is not None:
        vs = value_sets[expr.label]
        if vs.values is not None and not all(isinstance(v, numbers.Real) for v in vs.values):
            bad("a numerical SOp must hold numbers; its values include "
                f"{[v for v in vs.values if not isinstance(v, numbers.Real)][:3]}")
    return out
