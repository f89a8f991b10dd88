"""Which designed edges matter under each ablation, decided in the RASP evaluator.

Pass:
    reads_to_circuit(program, designed, reads, pairs, machinery=machinery_for(...)) -> Circuit

The *designed* circuit (:func:`interplab.compile.circuit_truth.structural_edges`) lists every
edge whose receiver's weights read something its sender writes. Each edge carries *reads*
(:class:`Read`): which expression the receiving block computes (``reader``), which variable it
reads from that sender (``variable``) and in which role (``q``/``k``/``v`` of a head, ``in`` of an
MLP or of the logits).

Whether an edge matters under an ablation is decided here from the program's semantics, without
the compiled weights and without any circuit-discovery code: the program is re-evaluated on a
clean input with the values that one edge carries replaced, and the edge matters when the
program's output changes on some pair. The replacement per ablation:

* ``zero``: every value the edge carries is absent (a categorical variable ``None``, the zero
  vector of a compiled model; a numerical one 0), the compiler's constant signals ``one`` and
  ``bos`` included;
* ``mean``: the per-position mean over the clean inputs of the same length: a numerical variable
  reads the mean; a categorical one the *mixture* of its values there, each with its share;
* ``resample``: the variable's value on the paired corrupted input.

A compiled model (``machinery``, :func:`machinery_for`) is evaluated as the compiler builds it
(:func:`compiled_run`): with a BOS slot before the input, where every variable is absent unless a
head writes there; heads that score keys by the selector terms they satisfy plus a BOS term fed by
``one`` (query) and ``bos`` (key), attending to the best-scoring keys; a selector width read back
from the attention on BOS (a zeroed BOS weight reads as ``max_len``, which is the true width only
on inputs of full length); MLPs gated off at BOS by ``bos``. So what zeroing the BOS machinery
does is decided on the pairs, like any other read; nothing is assumed to matter. The check in the
weights (:mod:`interplab.compile.truth_check`) refuses a truth where this model and the weights
disagree. Without ``machinery`` (a model trained to an alignment, which has no BOS machinery) the
program is evaluated as plain RASP.

For a causal model (``causal=True``) every selector is masked to keys at or before the query, as
the compiled attention is; this matters for ablated values, which can make a select reach forward.

Callers pass ``pairs`` disjoint from the pairs a method is scored on (the bench does), at the
lengths it scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from interplab.compile import rasp
from interplab.compile.compiled_run import (  # noqa: F401 (re-exported: the public path)
    Machinery,
    compiled_flags,
    compiled_run,
    machinery_for,
)
from interplab.compile.reads import (
    CONSTANTS,
    LOGITS,
    SCRATCH,
    Mixture,
    Read,
    same,
)
from interplab.core.circuit import ABLATIONS, Circuit, Edge

Pairs = Sequence[tuple[Sequence[Any], Sequence[Any]]]


def reads_to_circuit(
    program: rasp.SOp,
    designed: Iterable[Edge],
    reads: Mapping[Edge, Sequence[Read]],
    pairs: Pairs,
    name: str | None = None,
    causal: bool = False,
    machinery: Machinery | None = None,
) -> Circuit:
    """The designed edges that matter on ``pairs`` (clean, corrupted inputs of equal length),
    each flagged with the ablations under which it matters (``causal``: for a decoder).

    ``machinery`` (:func:`machinery_for`): the edges belong to a compiled model, and the
    evaluator models the compiler's BOS machinery (:func:`compiled_run`); needed whenever an
    edge carries ``one`` or ``bos``. Without it the program is evaluated as plain RASP (a model
    trained to an alignment, which has no such machinery)."""
    from interplab.errors import ConfigError

    rows = [(list(c), list(x)) for c, x in pairs if len(c) == len(x) and len(c) > 0]
    edges = sorted(designed)
    if machinery is not None:
        flags = (
            compiled_flags(program, edges, reads, rows, machinery, causal)
            if rows
            else {e: frozenset() for e in edges}
        )
    elif any(r.variable in CONSTANTS for e in edges for r in reads.get(e, ())):
        raise ConfigError(
            f"{program.label}: these edges carry the compiler's one/bos signals; "
            "pass machinery=machinery_for(program, vocab, max_len) so the evaluator "
            "models what the compiled model does with them"
        )
    else:
        flags = {e: edge_ablations(program, reads.get(e, ()), rows, causal) for e in edges}
    kept = [e for e, f in flags.items() if f]
    return Circuit.from_edges(
        kept,
        name=name or f"{program.label} (dataflow truth on {len(rows)} pairs)",
        edge_ablations={e: flags[e] for e in kept},
    )


def edge_ablations(
    program: rasp.SOp,
    reads: Sequence[Read],
    rows: Sequence[tuple[list, list]],
    causal: bool = False,
) -> frozenset[str]:
    """Plain RASP semantics (no compiler machinery): the ablations under which replacing
    ``reads`` changes the program's output on some row."""
    sops = {e.label: e for e in rasp.walk(program)}
    carried = [r for r in reads if r.variable not in CONSTANTS]
    if not rows or not carried:
        return frozenset()
    clean_values = [rasp.evaluate_all(program, c) for c, _ in rows]
    corrupt_values = [rasp.evaluate_all(program, x) for _, x in rows]
    means = _means(carried, sops, rows, clean_values)
    found = set()
    for ablation in ABLATIONS:
        for (clean, _), cv, xv in zip(rows, clean_values, corrupt_values):
            replaced = {
                r: _replacement(ablation, r, sops, cv, xv, means, len(clean)) for r in carried
            }
            if _changes_output(program, clean, cv, replaced, causal):
                found.add(ablation)
                break
    return frozenset(found)


def _selects(sel: rasp.Selector) -> list[rasp.Select]:
    if isinstance(sel, rasp.Select):
        return [sel]
    return [leaf for child in sel.children for leaf in _selects(child)]  # type: ignore[arg-type]


# ----------------------------------------------------------------- replacement values
def _base(variable: str) -> str:
    return variable[: -len(SCRATCH)] if variable.endswith(SCRATCH) else variable


def _is_numerical(variable: str, sops: Mapping[str, rasp.Expr]) -> bool:
    expr = sops.get(_base(variable))
    return bool(isinstance(expr, rasp.SOp) and expr.is_numerical and not variable.endswith(SCRATCH))


def _replacement(
    ablation: str,
    read: Read,
    sops: Mapping[str, rasp.Expr],
    clean: Mapping,
    corrupt: Mapping,
    means: Mapping,
    length: int,
) -> list:
    var = _base(read.variable)
    if ablation == "resample":
        return list(corrupt[var])
    if ablation == "zero":
        return [0 if _is_numerical(read.variable, sops) else None] * length
    return list(means[(read.variable, length)])


def _means(
    reads: Sequence[Read],
    sops: Mapping[str, rasp.Expr],
    rows: Sequence[tuple[list, list]],
    clean_values: Sequence[Mapping],
) -> dict[tuple[str, int], list]:
    """(variable, length) -> per-position mean-ablation value over the clean inputs."""
    out: dict[tuple[str, int], list] = {}
    for read in reads:
        numerical = _is_numerical(read.variable, sops)
        by_len: dict[int, list[list]] = {}
        for (clean, _), values in zip(rows, clean_values):
            by_len.setdefault(len(clean), []).append(values[_base(read.variable)])
        for n, seqs in by_len.items():
            column = list(zip(*seqs))
            if numerical:
                out[(read.variable, n)] = [
                    sum(float(v or 0) for v in col) / len(col) for col in column
                ]
            else:
                out[(read.variable, n)] = [_mixture(col) for col in column]
    return out


def _mixture(column: Sequence[Any]) -> Any:
    counts: dict[str, list] = {}
    for v in column:
        counts.setdefault(repr(v), [v, 0])[1] += 1
    if len(counts) == 1:
        return column[0]
    return Mixture(tuple((v, c / len(column)) for v, c in counts.values()))


def _collapse(values: Any) -> Any:
    if isinstance(values, list):
        return [v.collapse() if isinstance(v, Mixture) else v for v in values]
    return values


# ----------------------------------------------------------------- evaluation with reads replaced
def _changes_output(
    program: rasp.SOp, xs: list, clean: Mapping, replaced: Mapping[Read, list], causal: bool = False
) -> bool:
    try:
        out = evaluate_with_reads(program, xs, replaced, causal)
    except rasp.EvaluationError:  # e.g. a categorical aggregate left selecting different values
        return True
    return not same(out, clean[program.label])


def evaluate_with_reads(
    program: rasp.SOp, xs: Sequence[Any], replaced: Mapping[Read, list], causal: bool = False
) -> list:
    """The program's output on ``xs`` where each :class:`Read` in ``replaced`` takes the given
    values instead of the computed ones (only in that reader and role; every other reader of the
    variable sees its computed value). A read of ``<label>:bos_weight`` replaces the selector
    width ``label`` as its MLP reads it; a read by ``<logits>`` replaces the output itself.
    ``causal``: every selector is masked to keys at or before the query."""
    by_reader: dict[str, dict[tuple[str, str], list]] = {}
    for r, v in replaced.items():
        by_reader.setdefault(r.reader, {})[(r.variable, r.role)] = v
    values: dict[int, Any] = {}
    for expr in rasp.walk(program):
        mine = by_reader.get(expr.label, {})
        values[id(expr)] = _eval(expr, xs, values, mine, causal)
    out = values[id(program)]
    for (variable, _), v in by_reader.get(LOGITS, {}).items():
        if variable == program.label:
            out = v
    return out


def _eval(
    expr: rasp.Expr,
    xs: Sequence[Any],
    values: Mapping[int, Any],
    mine: Mapping[tuple[str, str], list],
    causal: bool = False,
) -> Any:
    def get(child: rasp.Expr, role: str) -> Any:
        return mine.get((child.label, role), values[id(child)])

    def matrix(sel: rasp.Selector) -> list[list[bool]]:
        m = _selector(sel, get)
        return (
            [[s and k <= q for k, s in enumerate(row)] for q, row in enumerate(m)] if causal else m
        )

    if isinstance(expr, (rasp.Map, rasp.SequenceMap, rasp.LinearSequenceMap)):
        return rasp.eval_node(expr, xs, lambda c: _collapse(get(c, "in")))
    if isinstance(expr, rasp.Aggregate):
        vals = _collapse(get(expr.sop, "v"))
        return rasp.aggregate_values(expr, matrix(expr.selector), vals)
    if isinstance(expr, rasp.SelectorWidth):
        scratch = mine.get((expr.label + SCRATCH, "in"))
        if scratch is not None:
            return _collapse(list(scratch))
        return [sum(row) for row in matrix(expr.selector)]
    if isinstance(expr, rasp.Selector):
        return None  # every reader recomputes its selector with its own reads (``_selector``)
    return rasp.eval_node(expr, xs, lambda c: values[id(c)])


def _selector(sel: rasp.Selector, get: Callable[[rasp.Expr, str], Any]) -> list[list[bool]]:
    """A selector's matrix with its keys read in role "k" and queries in role "q"."""
    if isinstance(sel, rasp.Select):
        if sel.predicate in (rasp.Comparison.TRUE, rasp.Comparison.FALSE):
            keys, queries = get(sel.keys, "-"), get(sel.queries, "-")  # never replaced
        else:
            keys, queries = get(sel.keys, "k"), get(sel.queries, "q")
        return [[_holds(sel, k, q) for k in keys] for q in queries]
    if isinstance(sel, rasp.SelectorAnd):
        a, b = _selector(sel.left, get), _selector(sel.right, get)
        return [[x and y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    if isinstance(sel, rasp.SelectorOr):
        a, b = _selector(sel.left, get), _selector(sel.right, get)
        return [[x or y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    if isinstance(sel, rasp.SelectorNot):
        leaf = rasp.first_select(sel)
        keys, queries = _collapse(get(leaf.keys, "k")), _collapse(get(leaf.queries, "q"))
        inner = _selector(sel.inner, get)
        return [
            [(not a) and k is not None and q is not None for a, k in zip(row, keys)]
            for row, q in zip(inner, queries)
        ]
    raise rasp.EvaluationError(f"cannot evaluate selector {type(sel).__name__} {sel.label!r}")


def derive_circuit(model: Any, pairs: Pairs, name: str | None = None) -> Circuit:
    """A compiled model's per-ablation truth, derived from its RASP program on ``pairs``.

    ``model`` is a :class:`~interplab.compile.compiled.CompiledModel` (it carries its program,
    its designed circuit and what each designed edge reads). Pass pairs disjoint from the pairs
    a method is scored on."""
    from interplab.errors import ConfigError

    truth = model.ground_truth
    if model.program is None or not truth.edge_reads:
        raise ConfigError(
            f"{model.name}: deriving the truth needs the RASP program and the "
            "designed edges' reads; recompile it with this interplab (a model "
            "loaded from disk carries no program)"
        )
    return reads_to_circuit(
        model.program,
        truth.designed.edges,
        truth.edge_reads,
        pairs,
        name=name or f"{truth.output} (dataflow truth on {len(pairs)} pairs)",
        causal=getattr(model.cfg, "attention", "") == "causal",
        machinery=machinery_for(model.program, truth.vocab, truth.max_len),
    )


def _holds(sel: rasp.Select, key: Any, query: Any) -> bool:
    """The predicate, or for mixtures whether it holds with probability > 1/2."""
    if not isinstance(key, Mixture) and not isinstance(query, Mixture):
        return sel.holds(key, query)
    ks = key.shares if isinstance(key, Mixture) else ((key, 1.0),)
    qs = query.shares if isinstance(query, Mixture) else ((query, 1.0),)
    return sum(pk * pq for k, pk in ks for q, pq in qs if sel.holds(k, q)) > 0.5


def evaluate_with_values(program: rasp.SOp, xs: Sequence[Any], forced: Mapping[str, list]) -> list:
    """The program's output on ``xs`` with each expression labelled in ``forced`` taking the given
    values for every reader (a node-level interchange when the values come from another input).
    Raises :class:`~interplab.compile.rasp.EvaluationError` where the result is undefined."""
    values: dict[int, Any] = {}
    for expr in rasp.walk(program):
        if expr.label in forced:
            values[id(expr)] = list(forced[expr.label])
        else:
            values[id(expr)] = rasp.eval_node(expr, xs, lambda c: values[id(c)])
    return values[id(program)]


def alignment_reads(
    program: rasp.SOp, alignment: Mapping[str, Sequence[Any]]
) -> dict[Edge, tuple[Read, ...]]:
    """The designed edges of a model trained to an *alignment* (variable label -> the heads/MLPs
    computing it, in forward order), with what each edge reads.

    An aligned variable's first component reads the variable's inputs (a head its selector's
    queries on ``q``, keys on ``k``, its aggregated values on ``v``; an MLP everything on
    ``in``) from the component that computes each input: the token or position embedding, the
    last component of an aligned variable, or — for an input no component is aligned to — the
    components its own inputs come from. A variable on several components (a selector width on a
    head and an MLP) passes along that chain; the output variable's last component feeds the
    logits. Constants (``Full``) come from no component."""
    from interplab.core.circuit import Node

    sops = {e.label: e for e in rasp.walk(program)}
    nodes = {v: sorted(ns, key=lambda n: n.order) for v, ns in alignment.items()}
    problems = [v for v in nodes if v not in sops] + [v for v, ns in nodes.items() if not ns]
    if program.label not in nodes:
        problems.append(f"{program.label} (the output) is aligned to no component")
    if problems:
        from interplab.errors import ConfigError

        raise ConfigError(f"alignment cannot be read against {program.label}: {problems}")

    def senders(expr: rasp.Expr) -> set:
        if expr.label in nodes:
            return {nodes[expr.label][-1]}
        if isinstance(expr, rasp.TokensType):
            return {Node.tok_embed()}
        if isinstance(expr, rasp.IndicesType):
            return {Node.pos_embed()}
        return {s for child in expr.children for s in senders(child)}

    out: dict[Edge, set[Read]] = {}
    for var, chain in nodes.items():
        expr = sops[var]
        first = chain[0]
        for child, role in _child_roles(expr):
            channel = role if first.kind == "head" else "in"
            for s in senders(child):
                out.setdefault(Edge(s, first, channel), set()).add(Read(var, child.label, role))
        for a, b in zip(chain, chain[1:]):
            scratch = var + SCRATCH if isinstance(expr, rasp.SelectorWidth) else var
            out.setdefault(Edge(a, b, "in" if b.kind != "head" else "v"), set()).add(
                Read(var, scratch, "in")
            )
    out.setdefault(Edge(nodes[program.label][-1], Node.logits(), "in"), set()).add(
        Read(LOGITS, program.label, "in")
    )
    return {e: tuple(sorted(v)) for e, v in sorted(out.items())}


def _child_roles(expr: rasp.Expr) -> list[tuple[rasp.Expr, str]]:
    """(child, role) for each value an expression reads: selector queries "q", keys "k",
    aggregated values "v"; anything else "in"."""
    if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
        out: list[tuple[rasp.Expr, str]] = []
        for leaf in _selects(expr.selector):
            if leaf.predicate in (rasp.Comparison.TRUE, rasp.Comparison.FALSE):
                continue
            out += [(leaf.queries, "q"), (leaf.keys, "k")]
        if isinstance(expr, rasp.Aggregate):
            out.append((expr.sop, "v"))
        return out
    return [(c, "in") for c in expr.children]
