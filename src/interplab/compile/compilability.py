"""Validation: gather every construct the compiler cannot turn into weights, then raise once.

``validate(graph, value_sets, domain)`` raises one :class:`CompileError` whose message lists each
offending expression with its label and the reason, so a user fixes them all in one pass.

A categorical Aggregate compiles to one attention head that averages the one-hot codes of the
selected keys, which decodes to a single value only when every selected key holds the same value.
When the selector provably picks at most one key (keys are ``indices`` and each query value
matches at most one index) or only keys equal to the query (``Select(x, q, EQ)`` aggregating
``x``), it is accepted as is; otherwise it is checked on the program's inputs (``domain``): all
of them when there are at most :data:`MAX_ENUMERATED_INPUTS`, else a seeded sample of
:data:`SAMPLED_INPUTS` (which the message then says).
"""

from __future__ import annotations

import itertools
import numbers
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from interplab.compile import rasp
from interplab.compile.graph import Problem, ProgramGraph, raise_problems, selector_terms
from interplab.compile.residual_basis import ValueSets

#: Check categorical Aggregates on every input when there are at most this many.
MAX_ENUMERATED_INPUTS = 20_000
#: Otherwise, on this many seeded random inputs.
SAMPLED_INPUTS = 2_000


@dataclass(frozen=True)
class InputDomain:
    """The inputs a program is compiled for: sequences over ``vocab`` of length 1..``max_len``
    on which ``valid`` (default: every input) returns True."""

    vocab: tuple[Any, ...]
    max_len: int
    valid: Callable[[Sequence[Any]], bool] | None = None

    @property
    def size(self) -> int:
        """Number of sequences before ``valid`` filters them."""
        return sum(len(self.vocab) ** n for n in range(1, self.max_len + 1))

    @property
    def enumerable(self) -> bool:
        return self.size <= MAX_ENUMERATED_INPUTS

    def inputs(self, seed: int = 0) -> Iterator[list[Any]]:
        """Every valid input when :attr:`enumerable`, else up to SAMPLED_INPUTS seeded samples."""
        ok = self.valid or (lambda xs: True)
        if self.enumerable:
            for n in range(1, self.max_len + 1):
                for x in itertools.product(self.vocab, repeat=n):
                    if ok(list(x)):
                        yield list(x)
            return
        rng, given = random.Random(seed), 0
        for _ in range(SAMPLED_INPUTS * 10):  # rejection sampling, bounded
            xs = [rng.choice(self.vocab) for _ in range(rng.randint(1, self.max_len))]
            if ok(xs):
                yield xs
                given += 1
                if given == SAMPLED_INPUTS:
                    return


def find_problems(
    graph: ProgramGraph, value_sets: ValueSets | None = None, domain: InputDomain | None = None
) -> list[Problem]:
    """Every unsupported construct in ``graph`` (and in its value sets, when given; and every
    categorical Aggregate that is ambiguous on some input of ``domain``, when given)."""
    problems = list(graph.problems)
    for expr in graph.nodes:
        problems.extend(_check(expr, value_sets))
    if value_sets is not None:
        problems.extend(value_sets.problems)
    if value_sets is not None and domain is not None:
        problems.extend(ambiguous_aggregates(graph, value_sets, domain))
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in problems:
        if (p.label, p.why) not in seen:
            seen.add((p.label, p.why))
            unique.append(p)
    return unique


def validate(
    graph: ProgramGraph, value_sets: ValueSets | None = None, domain: InputDomain | None = None
) -> None:
    """Raise CompileError listing every problem; return None when the program compiles."""
    raise_problems(
        graph,
        find_problems(graph, value_sets, domain),
        ": {n} unsupported construct(s)",
        "Each line names the expression (label and kind), why it cannot become transformer "
        "weights, and what to change.",
    )


def _check(expr: rasp.Expr, value_sets: ValueSets | None) -> list[Problem]:
    out: list[Problem] = []

    def bad(why: str) -> None:
        out.append(Problem(expr.label, expr.kind, why))

    if isinstance(expr, (rasp.TokensType, rasp.IndicesType)) and expr.is_numerical:
        bad("tokens and indices must stay categorical; apply numerical(Map(f, ...)) instead")
    if isinstance(expr, rasp.Select):
        for role, sop in (("keys", expr.keys), ("queries", expr.queries)):
            if sop.is_numerical:
                bad(
                    f"Select {role} {sop.label!r} is numerical; attention compares one-hot codes, "
                    "so Select needs categorical keys and queries"
                )
    if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
        terms = selector_terms(expr.selector)
        if isinstance(terms, str):
            mode = "numerical mean" if expr.is_numerical else "categorical"
            bad(
                f"its selector {expr.selector.label!r} cannot become one attention pattern "
                f"({mode} aggregation needs a uniform pattern over the selected keys): {terms}"
            )
    if isinstance(expr, rasp.Aggregate):
        if expr.is_numerical and not expr.sop.is_numerical:
            bad(
                f"a numerical (mean) Aggregate needs a numerical SOp to average, but "
                f"{expr.sop.label!r} is categorical; wrap it in numerical(Map(f, ...))"
            )
        if not expr.is_numerical and expr.sop.is_numerical:
            bad(
                f"a categorical Aggregate cannot read the numerical SOp {expr.sop.label!r}; mark "
                "the Aggregate numerical(...) to take the mean instead"
            )
    if isinstance(expr, rasp.SequenceMap):
        for side in (expr.left, expr.right):
            if side.is_numerical:
                bad(
                    f"SequenceMap input {side.label!r} is numerical; an MLP can only tabulate "
                    "categorical pairs. Use LinearSequenceMap for a*x + b*y, or make it categorical"
                )
    if isinstance(expr, rasp.LinearSequenceMap):
        if expr.left.is_numerical != expr.right.is_numerical:
            bad("LinearSequenceMap mixes a numerical and a categorical input; make both the same")
        elif expr.left.is_numerical and not expr.is_numerical:
            bad(
                "a LinearSequenceMap of numerical inputs is computed linearly and must stay "
                "numerical; wrap it in a Map to get categories"
            )
    if isinstance(expr, rasp.Map) and expr.inner.is_numerical and value_sets is not None:
        if not value_sets[expr.inner.label].bounded:
            bad(
                f"unbounded value set: its numerical input {expr.inner.label!r} can hold too many "
                "values to tabulate in an MLP; shorten max_len or simplify the input"
            )
    if isinstance(expr, rasp.SOp) and expr.is_numerical and value_sets is not None:
        vs = value_sets[expr.label]
        if vs.values is not None and not all(isinstance(v, numbers.Real) for v in vs.values):
            bad(
                "a numerical SOp must hold numbers; its values include "
                f"{[v for v in vs.values if not isinstance(v, numbers.Real)][:3]}"
            )
    return out


# ------------------------------------------------- categorical Aggregates must be functional


def ambiguous_aggregates(
    graph: ProgramGraph, value_sets: ValueSets, domain: InputDomain
) -> list[Problem]:
    """One problem per categorical Aggregate that selects keys holding different values on
    some input of ``domain`` (with that input as the example); aggregates that provably select
    one value are not evaluated."""
    suspects = [
        e
        for e in graph.nodes
        if isinstance(e, rasp.Aggregate)
        and not e.is_numerical
        and not _provably_functional(e, value_sets, domain.max_len)
    ]
    if not suspects:
        return []
    needed: set[int] = {id(e) for agg in suspects for e in rasp.walk(agg)}
    nodes = [e for e in graph.nodes if id(e) in needed]
    suspect_ids = {id(e) for e in suspects}
    found: dict[str, Problem] = {}
    for xs in domain.inputs():
        _evaluate_checking(nodes, suspect_ids, xs, found)
        if len(found) == len(suspects):
            break
    scope = (
        f"found by enumerating the valid inputs of length 1..{domain.max_len}"
        if domain.enumerable
        else f"found on a seeded random sample: the {domain.size} possible inputs are too many "
        f"to enumerate, so up to {SAMPLED_INPUTS} of them are checked"
    )
    return [Problem(p.label, p.kind, f"{p.why} ({scope})") for p in found.values()]


def _evaluate_checking(
    nodes: Sequence[rasp.Expr], suspect_ids: set[int], xs: list[Any], found: dict[str, Problem]
) -> None:
    """Evaluate ``nodes`` (children first) on ``xs``, recording into ``found`` the first
    ambiguity of each suspect Aggregate (evaluation then goes on with the first selected value)."""
    values: dict[int, Any] = {}

    def get_value(e: rasp.Expr) -> Any:
        return values[id(e)]

    for expr in nodes:
        if id(expr) in suspect_ids:
            agg: rasp.Aggregate = expr  # type: ignore[assignment]
            matrix, vals = get_value(agg.selector), get_value(agg.sop)
            out = []
            for q, row in enumerate(matrix):
                chosen = [v for v, s in zip(vals, row) if s]
                distinct = list({repr(v): v for v in chosen}.values())
                if len(distinct) > 1 and agg.label not in found:
                    found[agg.label] = Problem(
                        agg.label,
                        agg.kind,
                        _ambiguity_message(
                            agg, xs, q, [i for i, s in enumerate(row) if s], distinct
                        ),
                    )
                out.append(chosen[0] if chosen else None)
            values[id(expr)] = out
            continue
        try:
            values[id(expr)] = rasp.eval_node(expr, xs, get_value)
        except Exception:
            return


def _ambiguity_message(
    agg: rasp.Aggregate, xs: list[Any], q: int, keys: list[int], distinct: list[Any]
) -> str:
    return (
        f"categorical Aggregate is ambiguous: on input {xs!r}, query position {q} selects "
        f"keys {keys} of {agg.sop.label!r}, which hold different values "
        f"{distinct!r}. A compiled head would output a blend of their codes "
        "(and the evaluator raises EvaluationError). Make the selector pick one key (or keys "
        "holding equal values), restrict the inputs with compile_program(..., valid=...) "
        "(library programs pass their ProgramSpec.valid), or take a mean with "
        "numerical(Aggregate(...))"
    )


def _provably_functional(agg: rasp.Aggregate, value_sets: ValueSets, max_len: int) -> bool:
    """True when ``agg`` selects keys holding one value on every input: a term keyed by
    ``indices`` matches at most one index per query value, or the selector is
    ``Select(x, queries, EQ)`` aggregating ``x`` itself."""
    sel = agg.selector
    if isinstance(sel, rasp.Select) and sel.predicate is rasp.Comparison.EQ and sel.keys is agg.sop:
        return True
    terms = selector_terms(sel)
    if isinstance(terms, str):
        return False
    for term in terms:
        if not isinstance(term.keys, rasp.IndicesType):
            continue
        queries = value_sets.by_label.get(term.queries.label)
        if queries is None or queries.values is None:
            continue
        try:
            if all(
                sum(bool(term.predicate(k, q)) for k in range(max_len)) <= 1 for q in queries.values
            ):
                return True
        except Exception:
            continue
    return False
