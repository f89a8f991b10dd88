"""Program -> graph -> allocation: which expression is computed where.

Passes:
    program_to_graph(program)      ProgramGraph: every expression, children first, by label
    graph_to_allocation(graph)     Allocation: each SOp's component (embedding, head, MLP) and layer

Placement rule (as early as possible): the embeddings hold ``tokens``, ``indices`` and constants;
an Aggregate is an attention head in the first layer whose attention sublayer comes after all it
reads; a Map/SequenceMap is an MLP in the first MLP sublayer after its inputs; a SelectorWidth is a
head plus an MLP in the same layer. Sublayer slots: attention of layer l is 2l, its MLP is 2l + 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from interplab.compile import rasp
from interplab.errors import CompileError


@dataclass(frozen=True)
class Problem:
    """One reason a program cannot be compiled: the expression's label, its kind, and why."""

    label: str
    kind: str
    why: str

    def __str__(self) -> str:
        return f"{self.label} ({self.kind}): {self.why}"


def raise_problems(graph: ProgramGraph, problems: list[Problem], what: str, advice: str) -> None:
    """Raise CompileError ``cannot compile program <output>{what}: <n> ...`` with one line per
    problem, then ``advice``; None when there are no problems."""
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CompileError(
            f"cannot compile program {graph.output.label!r}{what.format(n=len(problems))}:\n"
            f"{lines}\n{advice}"
        )


@dataclass(frozen=True)
class Term:
    """One bilinear piece of an attention score: ``predicate(keys[k], queries[q])``."""

    keys: rasp.SOp
    queries: rasp.SOp
    predicate: Callable[[Any, Any], bool]


@dataclass(frozen=True)
class ProgramGraph:
    """The program as a DAG. ``nodes`` lists every expression children-first."""

    output: rasp.SOp
    nodes: tuple[rasp.Expr, ...]
    by_label: Mapping[str, rasp.Expr]
    problems: tuple[Problem, ...] = ()

    @property
    def sops(self) -> tuple[rasp.SOp, ...]:
        return tuple(n for n in self.nodes if isinstance(n, rasp.SOp))


def program_to_graph(program: rasp.Expr) -> ProgramGraph:
    """Collect the expressions of ``program``; duplicate labels become problems (not errors)."""
    nodes = tuple(rasp.walk(program))
    by_label: dict[str, rasp.Expr] = {}
    problems = []
    for node in nodes:
        if node.label in by_label:
            problems.append(
                Problem(
                    node.label,
                    node.kind,
                    "two different expressions share this "
                    "label; give each a unique name with .named(...)",
                )
            )
        by_label[node.label] = node
    if not isinstance(program, rasp.SOp):
        problems.append(
            Problem(
                program.label,
                program.kind,
                "a program's output must be an SOp "
                "(one value per position), not a selector; wrap it in an Aggregate"
                " or a SelectorWidth",
            )
        )
    return ProgramGraph(program, nodes, by_label, tuple(problems))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ selectors


def selector_terms(selector: rasp.Selector) -> tuple[Term, ...] | str:
    """The selector as a conjunction of bilinear terms, or the reason it has no such form.

    ``And`` adds scores (a key is selected when every term holds); ``Or`` and ``Not`` compile
    only when their parts read the same keys and queries, so one truth table covers them."""
    if isinstance(selector, rasp.Select):
        return (Term(selector.keys, selector.queries, selector.holds),)
    if isinstance(selector, rasp.SelectorAnd):
        left, right = selector_terms(selector.left), selector_terms(selector.right)
        if isinstance(left, str) or isinstance(right, str):
            return left if isinstance(left, str) else right
        return _merge(left + right)
    parts = [selector_terms(c) for c in selector.children]  # type: ignore[arg-type]
    for part in parts:
        if isinstance(part, str):
            return part
    single = [_merge(p) for p in parts]  # type: ignore[arg-type]
    if (
        any(len(s) != 1 for s in single)
        or len({(id(s[0].keys), id(s[0].queries)) for s in single}) != 1
    ):
        return (
            f"{selector.kind} combines selectors that read different keys/queries; only And "
            "can combine those. Rewrite it so every part selects on the same two SOps (build a "
            "SequenceMap that pairs them), or use And"
        )
    terms = [s[0] for s in single]
    if isinstance(selector, rasp.SelectorNot):
        p = terms[0].predicate
        return (Term(terms[0].keys, terms[0].queries, lambda k, q: not p(k, q)),)
    preds = [t.predicate for t in terms]
    return (Term(terms[0].keys, terms[0].queries, lambda k, q: any(f(k, q) for f in preds)),)


def _merge(terms: tuple[Term, ...]) -> tuple[Term, ...]:
    """Merge terms reading the same keys and queries into one (their predicates and-ed)."""
    groups: dict[tuple[int, int], list[Term]] = {}
    for t in terms:
        groups.setdefault((id(t.keys), id(t.queries)), []).append(t)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
        else:
            preds = [t.predicate for t in group]
            out.append(
                Term(
                    group[0].keys,
                    group[0].queries,
                    lambda k, q, preds=preds: all(f(k, q) for f in preds),  # type: ignore[misc]  # mypy: lambda with a default
                )
            )
    return tuple(out)


def sop_inputs(sop: rasp.SOp) -> tuple[rasp.SOp, ...]:
    """The SOps ``sop`` reads directly (through its selector for attention)."""
    if isinstance(sop, (rasp.Aggregate, rasp.SelectorWidth)):
        terms = selector_terms(sop.selector)
        reads = [] if isinstance(terms, str) else [s for t in terms for s in (t.keys, t.queries)]
        if isinstance(sop, rasp.Aggregate):
            reads.append(sop.sop)
        return tuple(dict.fromkeys(reads))
    return tuple(c for c in sop.children if isinstance(c, rasp.SOp))


# ----------------------------------------------------------------------------- allocation


@dataclass(frozen=True)
class Placement:
    """Where one SOp is computed. kind: "tok_embed", "pos_embed", "head", "mlp" or "head+mlp"
    (SelectorWidth: head ``head`` of ``layer`` then the MLP of ``layer``)."""

    label: str
    kind: str
    layer: int | None = None
    head: int | None = None

    @property
    def slot(self) -> int:
        """Sublayer after which the value is in the residual stream (-1 = embeddings)."""
        if self.layer is None:
            return -1
        return 2 * self.layer + (0 if self.kind == "head" else 1)


@dataclass(frozen=True)
class Allocation:
    placements: Mapping[str, Placement]
    n_layers: int
    n_heads: int

    def heads_in(self, layer: int) -> list[Placement]:
        return sorted(
            (p for p in self.placements.values() if p.head is not None and p.layer == layer),
            key=lambda p: cast(int, p.head),  # heads only (head is not None)
        )


def _kind(sop: rasp.SOp) -> str:
    if isinstance(sop, rasp.IndicesType):
        return "pos_embed"
    if isinstance(sop, (rasp.TokensType, rasp.Full)):
        return "tok_embed"
    if isinstance(sop, rasp.Aggregate):
        return "head"
    if isinstance(sop, rasp.SelectorWidth):
        return "head+mlp"
    return "mlp"


def graph_to_allocation(graph: ProgramGraph) -> Allocation:
    """Place every SOp in the earliest sublayer after all it reads."""
    slots: dict[int, int] = {}
    placements: dict[str, Placement] = {}
    heads_per_layer: dict[int, int] = {}
    for sop in graph.sops:
        kind = _kind(sop)
        after = max((slots[id(s)] for s in sop_inputs(sop)), default=-1)
        if kind in ("tok_embed", "pos_embed"):
            placements[sop.label], slots[id(sop)] = Placement(sop.label, kind), -1
            continue
        want_even = kind != "mlp"
        slot = after + 1
        if (slot % 2 == 0) != want_even:
            slot += 1
        layer = slot // 2
        head = None
        if kind != "mlp":
            head = heads_per_layer.get(layer, 0)
            heads_per_layer[layer] = head + 1
        placement = Placement(sop.label, kind, layer, head)
        placements[sop.label], slots[id(sop)] = placement, placement.slot
    n_layers = max((p.layer + 1 for p in placements.values() if p.layer is not None), default=1)
    return Allocation(placements, n_layers, max(heads_per_layer.values(), default=1))
