"""The compiled machinery, modelled without weights: a program evaluated as the compiler builds
it (a BOS slot before the input, heads that score keys by the selector terms they satisfy plus a
BOS term, selector widths read back from the attention on BOS, MLPs gated off at BOS), so that
ablating the BOS machinery is decided on the pairs like any other read. Used by
:mod:`interplab.compile.dataflow_truth`, which re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interplab.compile import rasp
from interplab.compile.reads import CONSTANTS, LOGITS, SCRATCH, Mixture, Read, same
from interplab.compile.residual_basis import BOS, ONE
from interplab.core.circuit import ABLATIONS, Edge


@dataclass(frozen=True)
class Machinery:
    """What the compiler builds around a program that plain RASP semantics leave out
    (:mod:`interplab.compile.blocks`), as values the evaluator can model without weights:
    ``max_len`` (a selector width reads a BOS weight of 0 as ``max_len``) and ``points``, the
    value set of each numerical SOp that a discretising MLP reads (its step points)."""

    max_len: int
    points: Mapping[str, tuple[Any, ...]]


def machinery_for(program: rasp.SOp, vocab: Sequence[Any], max_len: int) -> Machinery:
    """The :class:`Machinery` of ``program`` compiled for ``vocab`` and ``max_len``, from the
    compiler's value-set pass (the program's semantics; no weights)."""
    from interplab.compile.graph import program_to_graph
    from interplab.compile.residual_basis import graph_to_value_sets

    graph = program_to_graph(program)
    sets = graph_to_value_sets(graph, vocab, max_len)
    points = {
        s.label: tuple(sets[s.label].values or (0.0,))
        for s in graph.sops
        if s.is_numerical and sets[s.label].values is not None
    }
    return Machinery(max_len, points)


def compiled_run(
    program: rasp.SOp,
    xs: Sequence[Any],
    machinery: Machinery,
    replaced: Mapping[Read, list] | None = None,
    causal: bool = False,
) -> dict[str, list]:
    """Every variable's value at the BOS slot (index 0) and at each input position (1..n) as the
    compiled model holds it, with each :class:`Read` in ``replaced`` taking the given values
    (n + 1 of them) in that reader and role only.

    The compiled conventions modelled (:mod:`interplab.compile.blocks`): ``one`` is 1 everywhere
    and ``bos`` 1 at the BOS slot only; every variable is absent (``None``, the zero vector) at
    the BOS slot unless a head writes there; a head scores each key by the selector terms it
    satisfies (a term needs both its key and query values present, ``TRUE`` included) plus the
    BOS term (``terms - 1/2`` for an Aggregate, ``terms`` for a SelectorWidth, times ``one`` on
    the query and ``bos`` on the key) and attends evenly to the best-scoring keys (hard
    attention, which the compiler's coldness gives wherever scores differ by 1/2 or more; where
    mixed values make scores closer the model may err, and the check in the weights refuses
    such a truth); the BOS key's value is the
    variable's value at the BOS slot (plus the default where an Aggregate reads ``bos`` on its
    values); a selector width's head writes the attention on BOS (1 / (width + 1)) and its MLP
    reads it back through steps at the midpoints between 1 / (w + 1), w = 0..max_len (so 0
    reads as ``max_len``); MLPs are gated off at the BOS slot by ``bos`` (a numerical Map's
    steps and a width read-out ungated there compute from the BOS slot's value); a mean or
    mixed categorical value carries each value with its share (``Mixture``) and a reader sees
    a value whose share exceeds 1/2 (as the decoder does)."""
    n = len(xs)
    by_reader: dict[str, dict[tuple[str, str], list]] = {}
    for r, v in (replaced or {}).items():
        by_reader.setdefault(r.reader, {})[(r.variable, r.role)] = v
    vals: dict[str, list] = {ONE: [1.0] * (n + 1), BOS: [1.0] + [0.0] * n}
    for expr in rasp.walk(program):
        if isinstance(expr, rasp.Selector):
            continue
        mine = by_reader.get(expr.label, {})

        def get(label: str, role: str, mine: Mapping = mine) -> list:
            return mine.get((label, role), vals[label])

        if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
            vals.update(_compiled_head(expr, get, mine, n, causal, machinery))
        else:
            vals[expr.label] = _compiled_mlp(expr, xs, get, machinery)
    return vals


def _missing(expr: rasp.SOp) -> Any:
    return 0.0 if expr.is_numerical else None


def _compiled_mlp(
    expr: rasp.Expr, xs: Sequence[Any], get: Callable[[str, str], list], machinery: Machinery
) -> list:
    if isinstance(expr, rasp.TokensType):
        return [None] + list(xs)
    if isinstance(expr, rasp.IndicesType):
        return [None] + list(range(len(xs)))
    if isinstance(expr, rasp.Full):
        return [None] + [expr.value] * len(xs)
    assert isinstance(expr, rasp.SOp)
    if isinstance(expr, rasp.Map) and expr.inner.is_numerical:  # discretising MLP, gated by bos
        x, gate = get(expr.inner.label, "in"), get(BOS, "in")
        points = machinery.points.get(expr.inner.label, (0.0,))
        return [
            _missing(expr) if g > 0.5 else expr.f(_step(_number(v), points))
            for v, g in zip(x, gate)
        ]
    if isinstance(expr, rasp.LinearSequenceMap) and expr.left.is_numerical:  # linear, ungated
        return [
            expr.a * _number(a) + expr.b * _number(b)
            for a, b in zip(get(expr.left.label, "in"), get(expr.right.label, "in"))
        ]
    out: list = [_missing(expr)]  # table MLPs: nothing at BOS (gated; every input absent there)
    if isinstance(expr, rasp.Map):
        out += [_map_shares(expr, v) for v in get(expr.inner.label, "in")[1:]]
        return out
    if isinstance(expr, (rasp.SequenceMap, rasp.LinearSequenceMap)):
        f = expr.f if isinstance(expr, rasp.SequenceMap) else (lambda a, b: expr.a * a + expr.b * b)
        for a, b in zip(get(expr.left.label, "in")[1:], get(expr.right.label, "in")[1:]):
            out.append(_pair_shares(expr, f, a, b))
        return out
    raise rasp.EvaluationError(f"cannot model the compiled {type(expr).__name__} {expr.label!r}")


def _compiled_head(
    expr: rasp.Aggregate | rasp.SelectorWidth,
    get: Callable[[str, str], list],
    mine: Mapping[tuple[str, str], list],
    n: int,
    causal: bool,
    machinery: Machinery,
) -> dict[str, list]:
    from interplab.compile.graph import selector_terms

    terms = selector_terms(expr.selector)
    if isinstance(terms, str):  # pragma: no cover - rejected at compile time
        raise rasp.EvaluationError(terms)
    sides = [(get(t.keys.label, "k"), get(t.queries.label, "q"), t.predicate) for t in terms]
    width = isinstance(expr, rasp.SelectorWidth)
    bos_term = len(terms) - (0.0 if width else 0.5)
    one_q, bos_k, bos_v = (
        get(ONE, "q"),
        get(BOS, "k"),
        get(BOS, "v") if isinstance(expr, rasp.SelectorWidth) or expr.has_default else None,
    )
    chosen_by_query = []
    for q in range(n + 1):
        keys = range(q + 1) if causal else range(n + 1)
        score = {
            k: sum(_term_score(p, ks[k], qs[q]) for ks, qs, p in sides)
            + bos_term * one_q[q] * bos_k[k]
            for k in keys
        }
        best = max(score.values())
        chosen_by_query.append([k for k in keys if score[k] >= best - 1e-9])
    if isinstance(expr, rasp.SelectorWidth):  # width
        assert bos_v is not None  # read above for every width
        scratch = [sum(bos_v[k] for k in c) / len(c) for c in chosen_by_query]
        label = expr.label + SCRATCH
        read = mine.get((label, "in"), scratch)  # what the width's MLP reads
        gate = get(BOS, "in")
        widths = [None if g > 0.5 else _width(s, machinery.max_len) for s, g in zip(read, gate)]
        return {label: scratch, expr.label: widths}
    v = get(expr.sop.label, "v")
    out = []
    for chosen in chosen_by_query:
        w = 1.0 / len(chosen)
        if expr.is_numerical:
            out.append(
                sum(
                    w * (_number(v[k]) + (float(expr.default) * bos_v[k] if bos_v else 0.0))
                    for k in chosen
                )
            )
            continue
        shares: dict[str, list] = {}
        for k in chosen:
            for value, p in _shares(v[k]):
                shares.setdefault(repr(value), [value, 0.0])[1] += w * p
            if bos_v is not None and bos_v[k]:
                shares.setdefault(repr(expr.default), [expr.default, 0.0])[1] += w * bos_v[k]
        out.append(_as_value(shares))
    return {expr.label: out}


def _number(v: Any) -> float:
    if isinstance(v, Mixture):  # pragma: no cover - numerical values are averaged, never mixed
        return sum(float(x or 0) * p for x, p in v.shares)
    return float(v or 0)


def _shares(v: Any) -> list[tuple[Any, float]]:
    """A categorical value as (value, share) pairs; absent (None) contributes nothing."""
    if isinstance(v, Mixture):
        return [(x, p) for x, p in v.shares if x is not None and p > 0]
    return [] if v is None else [(v, 1.0)]


def _as_value(shares: Mapping[str, list]) -> Any:
    """One value where it holds (nearly) the whole share, None where nothing does, else a
    Mixture."""
    kept = [(v, p) for v, p in shares.values() if p > 1e-9]
    if not kept:
        return None
    if len(kept) == 1 and kept[0][1] >= 1 - 1e-9:
        return kept[0][0]
    return Mixture(tuple(kept))


def _collapse_one(v: Any) -> Any:
    return v.collapse() if isinstance(v, Mixture) else v


def _map_shares(expr: rasp.Map, v: Any) -> Any:
    """A table MLP on a (possibly mixed) value: each value's row fires with its share."""
    if expr.is_numerical:
        return sum(p * float(expr.f(x) or 0) for x, p in _shares(v))
    out: dict[str, list] = {}
    for x, p in _shares(v):
        y = expr.f(x)
        if y is not None:
            out.setdefault(repr(y), [y, 0.0])[1] += p
    return _as_value(out)


def _pair_shares(expr: rasp.SOp, f: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """A two-input table MLP on (possibly mixed) values: the row of values (x, y) fires with
    share max(0, share(x) + share(y) - 1) (its neuron needs both inputs present)."""
    fired = [(f(x, y), px + py - 1) for x, px in _shares(a) for y, py in _shares(b) if px + py > 1]
    if expr.is_numerical:
        return sum(p * float(v or 0) for v, p in fired)
    out: dict[str, list] = {}
    for v, p in fired:
        if v is not None:
            out.setdefault(repr(v), [v, 0.0])[1] += p
    return _as_value(out)


def _term_score(predicate: Callable[[Any, Any], bool], key: Any, query: Any) -> float:
    """One selector term's score for a key and a query: the shares for which it holds (a term
    needs both values present)."""
    return sum(pk * pq for k, pk in _shares(key) for q, pq in _shares(query) if predicate(k, q))


def _step(x: float, points: Sequence[Any]) -> Any:
    """The point a discretising MLP maps ``x`` to: steps at the midpoints between points."""
    chosen = points[0]
    for lo, hi in zip(points, points[1:]):
        if x > (float(lo) + float(hi)) / 2:
            chosen = hi
    return chosen


def _width(bos_weight: float, max_len: int) -> int:
    """A selector width's MLP: the width w whose 1 / (w + 1) is nearest the BOS weight read."""
    points = sorted(1.0 / (w + 1) for w in range(max_len + 1))
    return round(1.0 / _step(bos_weight, points) - 1.0)


def compiled_flags(
    program: rasp.SOp,
    designed: Iterable[Edge],
    reads: Mapping[Edge, Sequence[Read]],
    rows: Sequence[tuple[list, list]],
    machinery: Machinery,
    causal: bool = False,
) -> dict[Edge, frozenset[str]]:
    """For each designed edge, the ablations under which replacing every value it carries
    (constants included) changes the compiled program's decoded output on some row
    (:func:`compiled_run`; a decision in the RASP evaluator, no weights)."""
    sops = {e.label: e for e in rasp.walk(program)}
    clean = [compiled_run(program, c, machinery, causal=causal) for c, _ in rows]
    corrupt = [compiled_run(program, x, machinery, causal=causal) for _, x in rows]
    wanted = [_decoded(program, run, {}) for run in clean]
    means = _run_means(rows, clean, sops)
    out = {}
    for edge in designed:
        found = set()
        for ablation in ABLATIONS:
            for (xs, _), _run, other, want in zip(rows, clean, corrupt, wanted):
                replaced = {
                    r: v
                    for r in reads.get(edge, ())
                    if (
                        v := _compiled_replacement(
                            ablation, r, sops, other, means[len(xs)], len(xs)
                        )
                    )
                    is not None
                }
                if not replaced:
                    break
                got = _decoded(
                    program, compiled_run(program, xs, machinery, replaced, causal), replaced
                )
                if not same(got, want):
                    found.add(ablation)
                    break
        out[edge] = frozenset(found)
    return out


def _decoded(program: rasp.SOp, run: Mapping[str, list], replaced: Mapping[Read, list]) -> list:
    """The output as the unembedding decodes it (a categorical value needs a share > 1/2)."""
    out = replaced.get(Read(LOGITS, program.label, "in"), run[program.label])[1:]
    return [_number(v) for v in out] if program.is_numerical else [_collapse_one(v) for v in out]


def _is_number(variable: str, sops: Mapping[str, rasp.Expr]) -> bool:
    expr = sops.get(variable)
    return (
        variable in CONSTANTS
        or variable.endswith(SCRATCH)
        or bool(isinstance(expr, rasp.SOp) and expr.is_numerical)
    )


def _compiled_replacement(
    ablation: str,
    read: Read,
    sops: Mapping[str, rasp.Expr],
    corrupt: Mapping[str, list],
    means: Mapping[str, list],
    n: int,
) -> list | None:
    """What ``read`` carries under ``ablation`` (n + 1 values, BOS slot first), or None where the
    ablation leaves it as it is (``one``/``bos`` are the same on every input: only zero
    ablation changes them)."""
    if ablation == "zero":
        return [0.0 if _is_number(read.variable, sops) else None] * (n + 1)
    if read.variable in CONSTANTS:
        return None
    return list(corrupt[read.variable] if ablation == "resample" else means[read.variable])


def _run_means(
    rows: Sequence[tuple[list, list]],
    runs: Sequence[Mapping[str, list]],
    sops: Mapping[str, rasp.Expr],
) -> dict[int, dict[str, list]]:
    """length -> variable -> per-position mean over the clean runs of that length (a numerical
    value's mean; a categorical value's shares)."""
    by_len: dict[int, list[Mapping[str, list]]] = {}
    for (xs, _), run in zip(rows, runs):
        by_len.setdefault(len(xs), []).append(run)
    out: dict[int, dict[str, list]] = {}
    for n, group in by_len.items():
        out[n] = {}
        for var in group[0]:
            if var in CONSTANTS:
                continue
            columns = zip(*(run[var] for run in group))
            if _is_number(var, sops):
                out[n][var] = [sum(_number(v) for v in col) / len(group) for col in columns]
                continue
            means = []
            for col in columns:
                shares: dict[str, list] = {}
                for v in col:
                    for x, p in _shares(v):
                        shares.setdefault(repr(x), [x, 0.0])[1] += p / len(group)
                means.append(_as_value(shares))
            out[n][var] = means
    return out
