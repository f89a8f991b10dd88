"""Causal compilation: a program whose selects can look forward cannot run in a decoder.

``forward_selects(graph, value_sets, domain)`` returns one :class:`Problem` per Aggregate or
SelectorWidth whose selector can select, for some query position, a key at a *later* position.
A causal model masks those keys, so it would compute something other than the program.

The decision has two steps, as the check of categorical Aggregates in
:mod:`interplab.compile.compilability` does:

1. **Proof on value sets.** For every position ``i`` the set of values each SOp can hold there is
   inferred (``indices`` holds ``i``; ``tokens`` any token; a Map or SequenceMap what its function
   makes of its inputs' values at ``i``; an Aggregate the values its selector can gather at ``i``;
   a selector width ``0..``(the keys it can select)). A selector is *causal* when no query value
   at position ``q`` and key value at a later position ``k`` satisfy its predicate. This
   over-approximates (values at one position are treated as independent), so it may fail to
   prove a causal program; it never accepts a forward-looking one.
2. **Search for a witness.** A selector the proof leaves open is evaluated on the program's
   inputs (``domain``: every valid input when there are at most
   :data:`~interplab.compile.compilability.MAX_ENUMERATED_INPUTS`, else a seeded sample). An input
   on which a query selects a later key is a witness and the message shows it. With every input
   checked and no witness, the selector is accepted. On a sample without a witness it is still
   rejected (the sample proves nothing), with the value-set counterexample in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interplab.compile import rasp
from interplab.compile.compilability import SAMPLED_INPUTS, InputDomain
from interplab.compile.graph import Problem, ProgramGraph, raise_problems, selector_terms
from interplab.compile.residual_basis import ValueSets

#: a SequenceMap's positional value set is the image of the product of its inputs' sets at that
#: position when the product has at most this many pairs (else its global value set is used)
MAX_PAIRS = 20_000

Reader = rasp.Aggregate | rasp.SelectorWidth


def check_causal(graph: ProgramGraph, value_sets: ValueSets, domain: InputDomain) -> None:
    """Raise CompileError naming every forward-looking select; None when all are causal."""
    raise_problems(
        graph,
        forward_selects(graph, value_sets, domain),
        " causally: {n} select(s) can look forward",
        "A causal (decoder) model masks every key after the query, so each of these would compute "
        "something else. Restrict the selector to earlier keys (e.g. & Select(indices, indices, "
        "Comparison.LEQ)), or compile without causal=True.",
    )


def forward_selects(
    graph: ProgramGraph, value_sets: ValueSets, domain: InputDomain
) -> list[Problem]:
    """One problem per Aggregate / SelectorWidth whose selector can select a later key."""
    suspects = unproved_selectors(graph, value_sets, domain.max_len)
    if not suspects:
        return []
    witnesses = _witnesses(graph, [r for r, _ in suspects], domain)
    problems = []
    for reader, (q, k, qv, kv) in suspects:
        select = _leaves(reader.selector)
        names = ", ".join(repr(s.label) for s in select)
        head = f"its selector {reader.selector.label!r}" + (
            f" (select {names})" if names != repr(reader.selector.label) else ""
        )
        if reader.label in witnesses:
            xs, wq, wk = witnesses[reader.label]
            why = (
                f"{head} looks forward: on input {xs!r}, query position {wq} selects key "
                f"position {wk}"
            )
        elif domain.enumerable:
            continue  # every input checked: the value-set counterexample never happens
        else:
            why = (
                f"{head} may look forward: query position {q} (value {qv!r}) may select key "
                f"position {k} (value {kv!r}); none of {SAMPLED_INPUTS} sampled inputs shows "
                f"it, but the {domain.size} inputs are too many to check them all"
            )
        problems.append(Problem(reader.label, reader.kind, why))
    return problems


def unproved_selectors(
    graph: ProgramGraph, value_sets: ValueSets, max_len: int
) -> list[tuple[Reader, tuple[int, int, Any, Any]]]:
    """Readers whose selector the positional value sets do not prove causal, each with a
    counterexample (query position, key position, query value, key value)."""
    positional: dict[str, list[frozenset | None]] = {}
    out = []
    cache: dict[tuple[int, frozenset, frozenset], tuple[Any, Any] | None] = {}

    def at(sop: rasp.SOp, i: int) -> frozenset | None:
        p = positional.get(sop.label)
        vs = p[i] if p is not None else None
        if vs is not None:
            return vs
        glob = value_sets.by_label.get(sop.label)
        if glob is None or glob.values is None:
            return None
        return frozenset(_keys(glob.values) + [_key(None)])

    for sop in graph.sops:
        matrix = None
        if isinstance(sop, (rasp.Aggregate, rasp.SelectorWidth)):
            terms = selector_terms(sop.selector)
            if isinstance(terms, str):  # reported by validation
                positional[sop.label] = [None] * max_len
                continue
            matrix, first = _may_select(terms, at, max_len, cache)
            if first is not None:
                out.append((sop, first))
        positional[sop.label] = [_positional(sop, i, at, matrix, max_len) for i in range(max_len)]
    return out


def _may_select(
    terms: Sequence[Any], at: Any, max_len: int, cache: dict
) -> tuple[list[list[bool]], tuple[int, int, Any, Any] | None]:
    """[q][k]: some values at q and k satisfy every term; and the first (q, k > q) example."""
    matrix = [[True] * max_len for _ in range(max_len)]
    example = None
    for q in range(max_len):
        for k in range(max_len):
            pair = None
            for _n, t in enumerate(terms):
                qs, ks = at(t.queries, q), at(t.keys, k)
                if qs is None or ks is None:
                    pair = pair or ("?", "?")
                    continue
                key = (id(t), qs, ks)
                if key not in cache:
                    cache[key] = next(
                        (
                            (_value(qv), _value(kv))
                            for qv in qs
                            for kv in ks
                            if _holds(t, _value(kv), _value(qv))
                        ),
                        None,
                    )
                if cache[key] is None:
                    matrix[q][k] = False
                    break
                pair = pair or cache[key]
            if matrix[q][k] and k > q and example is None:
                example = (q, k, *(pair or ("?", "?")))
    return matrix, example


def _holds(term: Any, key: Any, query: Any) -> bool:
    try:
        return bool(term.predicate(key, query))
    except Exception:
        return True


def _positional(
    sop: rasp.SOp, i: int, at: Any, matrix: list[list[bool]] | None, max_len: int
) -> frozenset | None:
    """The values ``sop`` can hold at position ``i`` (keys of :func:`_key`), or None (unknown:
    its global value set stands in)."""
    try:
        if isinstance(sop, rasp.TokensType):
            return None  # the vocabulary: the global value set
        if isinstance(sop, rasp.IndicesType):
            return frozenset([_key(i)])
        if isinstance(sop, rasp.Full):
            return frozenset([_key(sop.value)])
        if sop.is_numerical:
            return None
        if isinstance(sop, rasp.Map):
            xs = at(sop.inner, i)
            return (
                None
                if xs is None
                else frozenset(_key(None if _value(x) is None else sop.f(_value(x))) for x in xs)
            )
        if isinstance(sop, rasp.SequenceMap):
            xs, ys = at(sop.left, i), at(sop.right, i)
            if xs is None or ys is None or len(xs) * len(ys) > MAX_PAIRS:
                return None
            return frozenset(
                _key(
                    None if _value(x) is None or _value(y) is None else sop.f(_value(x), _value(y))
                )
                for x in xs
                for y in ys
            )
        if isinstance(sop, rasp.SelectorWidth) and matrix is not None:
            return frozenset(_key(w) for w in range(sum(matrix[i][: i + 1]) + 1))
        if isinstance(sop, rasp.Aggregate) and matrix is not None:
            out = {_key(sop.empty_value)}
            for k in range(i + 1):  # a causal model reads keys up to the query only
                if matrix[i][k]:
                    vs = at(sop.sop, k)
                    if vs is None:
                        return None
                    out |= vs
            return frozenset(out)
    except Exception:
        return None
    return None


def _key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _keys(values: Sequence[Any]) -> list[tuple[str, Any]]:
    return [_key(v) for v in values]


def _value(key: tuple[str, Any]) -> Any:
    return key[1]


def _leaves(sel: rasp.Selector) -> list[rasp.Select]:
    if isinstance(sel, rasp.Select):
        return [sel]
    return [leaf for child in sel.children for leaf in _leaves(child)]  # type: ignore[arg-type]


def _witnesses(
    graph: ProgramGraph, readers: Sequence[Reader], domain: InputDomain
) -> dict[str, tuple[list[Any], int, int]]:
    """For each reader, the first input of ``domain`` on which its selector selects a later
    key, with (query, key) positions. The first forward select on an input is a true witness
    (everything before it computes as in a causal model); later ones are still listed, since the
    program is rejected either way."""
    needed = {id(e) for r in readers for e in rasp.walk(r)}
    nodes = [e for e in graph.nodes if id(e) in needed]
    wanted: dict[int, list[Reader]] = {}
    for r in readers:
        wanted.setdefault(id(r.selector), []).append(r)
    found: dict[str, tuple[list[Any], int, int]] = {}
    for xs in domain.inputs():
        values: dict[int, Any] = {}
        for expr in nodes:
            try:
                values[id(expr)] = rasp.eval_node(expr, xs, lambda c: values[id(c)])  # noqa: B023 (called before the loop moves on)
            except Exception:
                break
            todo = [r for r in wanted.get(id(expr), ()) if r.label not in found]
            if not todo:
                continue
            hit = next(
                (
                    (q, k)
                    for q, row in enumerate(values[id(expr)])
                    for k in range(q + 1, len(row))
                    if row[k]
                ),
                None,
            )
            if hit is not None:
                for r in todo:
                    found[r.label] = (list(xs), *hit)
        if len(found) == len(readers):
            break
    return found


def is_causal(program: rasp.SOp, vocab: Sequence[Any], max_len: int, valid: Any = None) -> bool:
    """Whether ``program`` compiles causally on this vocabulary and length (no select can look
    forward on a valid input)."""
    from interplab.compile.graph import program_to_graph
    from interplab.compile.residual_basis import graph_to_value_sets

    graph = program_to_graph(program)
    sets = graph_to_value_sets(graph, list(vocab), max_len)
    return not forward_selects(graph, sets, InputDomain(tuple(vocab), max_len, valid))


__all__ = ["check_causal", "forward_selects", "is_causal", "unproved_selectors"]
