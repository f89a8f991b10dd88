"""Drawing seeded random RASP programs from a small grammar (the first step of
:mod:`interplab.compile.generate`, which verifies and accepts them).

The grammar covers the constructs the compiler supports: ``Map`` (categorical and to numerical),
``SequenceMap``, ``LinearSequenceMap``, ``Select`` with every
:class:`~interplab.compile.rasp.Comparison`, categorical and numerical ``Aggregate``,
``SelectorWidth`` and selector ``&``/``|``. Depth (the longest chain of operations from the input
to the output) and the number of operations are bounded by :class:`Grammar`. Candidate ``j`` of
``seed`` (:func:`draw`) depends on nothing but ``(seed, j)`` and :data:`DRAW_VERSION`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interplab.compile import rasp
from interplab.errors import ConfigError

#: bump when the drawing changes (grammar, random streams): every candidate program depends on it
DRAW_VERSION = 1

_CAT_MAPS: tuple[tuple[str, Callable[[int, int], Callable[[Any], Any]]], ...] = (
    ("(x+{k})%{m}", lambda k, m: lambda x: (x + k) % m),
    ("(x*{k})%{m}", lambda k, m: lambda x: (x * k) % m),
    ("x<{k}", lambda k, m: lambda x: 1 if x < k else 0),
    ("x=={k}", lambda k, m: lambda x: 1 if x == k else 0),
    ("min(x,{k})", lambda k, m: lambda x: min(x, k)),
    ("x%2", lambda k, m: lambda x: x % 2),
)
_SEQ_MAPS: tuple[tuple[str, Callable[[int], Callable[[Any, Any], Any]]], ...] = (
    ("(a+b)%{m}", lambda m: lambda a, b: (a + b) % m),
    ("(a-b)%{m}", lambda m: lambda a, b: (a - b) % m),
    ("a==b", lambda m: lambda a, b: 1 if a == b else 0),
    ("a<b", lambda m: lambda a, b: 1 if a < b else 0),
    ("max(a,b)", lambda m: lambda a, b: max(a, b)),
    ("min(a,b)", lambda m: lambda a, b: min(a, b)),
)
_SELECT_PREDICATES = (
    rasp.Comparison.EQ,
    rasp.Comparison.LT,
    rasp.Comparison.LEQ,
    rasp.Comparison.GT,
    rasp.Comparison.GEQ,
    rasp.Comparison.NEQ,
    rasp.Comparison.TRUE,
)
#: the operations the grammar draws from (the constructs a program is tagged with)
CONSTRUCTS = (
    "map",
    "numerical_map",
    "sequence_map",
    "linear_sequence_map",
    "aggregate",
    "numerical_aggregate",
    "selector_width",
    "selector_and",
    "selector_or",
)


@dataclass(frozen=True)
class Grammar:
    """Bounds on the drawn programs. ``max_depth``: longest chain of operations from the input;
    ``min_ops``/``max_ops``: how many operations are drawn (the program is what the last one
    reads, so it may use fewer); vocabularies are ``0..v-1`` for ``v`` in ``vocab_sizes``."""

    max_depth: int = 4
    min_ops: int = 2
    max_ops: int = 6
    vocab_sizes: tuple[int, ...] = (3, 4)
    max_lens: tuple[int, ...] = (3, 4, 5)

    def __post_init__(self) -> None:
        problems = []
        if self.max_depth < 1:
            problems.append(f"max_depth must be >= 1, got {self.max_depth}")
        if not 1 <= self.min_ops <= self.max_ops:
            problems.append(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if not self.vocab_sizes or min(self.vocab_sizes) < 2:
            problems.append(f"vocab_sizes must be >= 2, got {self.vocab_sizes}")
        if not self.max_lens or min(self.max_lens) < 2:
            problems.append(f"max_lens must be >= 2, got {self.max_lens}")
        if problems:
            raise ConfigError("invalid program grammar: " + "; ".join(problems))


@dataclass(frozen=True)
class Candidate:
    """One drawn program with its shape: ``depth`` (longest chain of operations), ``width``
    (most operations at one depth), ``n_ops`` and the ``constructs`` it uses (selects tagged
    with their comparison, e.g. ``select_LT``)."""

    seed: int
    index: int
    program: rasp.SOp = field(repr=False)
    vocab: tuple[int, ...]
    max_len: int
    depth: int
    width: int
    n_ops: int
    constructs: tuple[str, ...]


# ----------------------------------------------------------------------------- drawing


class _Drawer:
    """Draws one program; every expression is named ``v<k>`` (stable across processes)."""

    def __init__(self, rng: random.Random, grammar: Grammar, vocab_size: int, max_len: int):
        self.rng, self.g, self.v, self.n = rng, grammar, vocab_size, max_len
        self.depth: dict[int, int] = {id(rasp.tokens): 0, id(rasp.indices): 0}
        self.reads_tokens: set[int] = {id(rasp.tokens)}
        self.k = 0
        self.cat: list[rasp.SOp] = [rasp.tokens, rasp.indices]
        self.num: list[rasp.SOp] = []

    def _name(self, suffix: str = "") -> str:
        self.k += 1
        return f"v{self.k}{suffix}"

    def _pick(self, pool: list[rasp.SOp], limit: int) -> rasp.SOp | None:
        ok = [s for s in pool if self.depth[id(s)] < limit]
        if not ok:
            return None
        # recent expressions are likelier: programs grow deeper instead of wider only
        weights = [1 + i for i in range(len(ok))]
        return self.rng.choices(ok, weights)[0]

    def _add(self, sop: rasp.SOp, *parents: Any) -> rasp.SOp:
        self.depth[id(sop)] = 1 + max(self.depth.get(id(p), 0) for p in parents)
        if any(id(p) in self.reads_tokens for p in parents):
            self.reads_tokens.add(id(sop))
        (self.num if sop.is_numerical else self.cat).append(sop)
        return sop

    def _select(
        self, limit: int, predicate: rasp.Comparison | None = None
    ) -> tuple[rasp.Selector, list]:
        keys, queries = self._pick(self.cat, limit), self._pick(self.cat, limit)
        assert keys is not None and queries is not None  # tokens/indices have depth 0
        pred = predicate or self.rng.choice(_SELECT_PREDICATES)
        return rasp.Select(keys, queries, pred, name=self._name("_select")), [keys, queries]

    def _combined(self, limit: int, kind: str) -> tuple[rasp.Selector, list]:
        """``a & b`` (any two selects) or ``a | b`` (the same keys and queries: one pattern)."""
        first, parents = self._select(limit)
        if kind == "selector_and":
            second, more = self._select(limit)
            return rasp.SelectorAnd(first, second, name=self._name("_selector")), parents + more
        assert isinstance(first, rasp.Select)
        pred = self.rng.choice([p for p in _SELECT_PREDICATES if p is not first.predicate])
        second = rasp.Select(first.keys, first.queries, pred, name=self._name("_select"))
        return rasp.SelectorOr(first, second, name=self._name("_selector")), parents

    def step(self) -> rasp.SOp | None:
        limit = self.g.max_depth
        kind = self.rng.choice(CONSTRUCTS)
        if kind == "map":
            x = self._pick(self.cat, limit)
            _, make = self.rng.choice(_CAT_MAPS)
            k, m = self.rng.randint(1, self.v - 1), self.v
            return (
                self._add(rasp.Map(make(k, m), x, name=self._name()), x) if x is not None else None
            )
        if kind == "numerical_map":
            x = self._pick(self.cat, limit)
            k = self.rng.randint(0, self.v - 1)
            if x is None:
                return None

            def one_hot(t: Any, k: int = k) -> int:
                return 1 if t == k else 0

            return self._add(rasp.numerical(rasp.Map(one_hot, x, name=self._name())), x)
        if kind == "sequence_map":
            a, b = self._pick(self.cat, limit), self._pick(self.cat, limit)
            if a is None or b is None or a is b:
                return None
            _, make_pair = self.rng.choice(_SEQ_MAPS)
            return self._add(rasp.SequenceMap(make_pair(self.v), a, b, name=self._name()), a, b)
        if kind == "linear_sequence_map":
            a, b = self._pick(self.num, limit), self._pick(self.num, limit)
            if a is None or b is None or a is b:
                return None
            ca, cb = self.rng.choice((1.0, -1.0, 0.5)), self.rng.choice((1.0, -1.0, 0.5))
            return self._add(rasp.LinearSequenceMap(a, b, ca, cb, name=self._name()), a, b)
        if kind == "aggregate":  # categorical: one key per query (keys are the indices)
            x, q = self._pick(self.cat, limit), self._pick(self.cat, limit)
            if x is None or q is None:
                return None
            sel: rasp.Selector = rasp.Select(
                rasp.indices, q, rasp.Comparison.EQ, name=self._name("_select")
            )
            return self._add(rasp.Aggregate(sel, x, name=self._name()), x, q)
        if kind == "numerical_aggregate":
            x = self._pick(self.num, limit)
            if x is None:
                return None
            sel, parents = (
                self._select(limit)
                if self.rng.random() < 0.8
                else self._combined(limit, self.rng.choice(("selector_and", "selector_or")))
            )
            return self._add(
                rasp.numerical(rasp.Aggregate(sel, x, default=0, name=self._name())), x, *parents
            )
        if kind in ("selector_and", "selector_or"):
            sel, parents = self._combined(limit, kind)
        else:
            sel, parents = self._select(limit)
        return self._add(rasp.SelectorWidth(sel, name=self._name()), *parents)


def draw(seed: int, index: int, grammar: Grammar = Grammar()) -> Candidate:
    """Candidate ``index`` of ``seed``: a function of ``(seed, index, grammar)`` only."""
    rng = random.Random(f"interplab-generate-v{DRAW_VERSION}-{seed}-{index}")
    vocab_size, max_len = rng.choice(grammar.vocab_sizes), rng.choice(grammar.max_lens)
    drawer = _Drawer(rng, grammar, vocab_size, max_len)
    n_ops = rng.randint(grammar.min_ops, grammar.max_ops)
    last: rasp.SOp = rasp.tokens
    made = 0
    for _ in range(20 * n_ops):
        sop = drawer.step()
        if sop is not None:
            made += 1
            if id(sop) in drawer.reads_tokens:  # the output is the last op that reads the input
                last = sop
            if made >= n_ops:
                break
    depth, width, ops, constructs = shape(last)
    return Candidate(
        seed, index, last, tuple(range(vocab_size)), max_len, depth, width, ops, constructs
    )


def shape(program: rasp.SOp) -> tuple[int, int, int, tuple[str, ...]]:
    """(depth, width, number of SOp operations, constructs) of ``program``'s DAG."""
    depth: dict[int, int] = {}
    constructs: set[str] = set()
    levels: dict[int, int] = {}
    for expr in rasp.walk(program):
        below = max((depth[id(c)] for c in expr.children), default=0)
        is_op = isinstance(expr, rasp.SOp) and not isinstance(
            expr, (rasp.TokensType, rasp.IndicesType)
        )
        depth[id(expr)] = below + (1 if is_op else 0)
        if is_op:
            levels[depth[id(expr)]] = levels.get(depth[id(expr)], 0) + 1
            constructs.add(_construct(expr))
        elif isinstance(expr, rasp.Select):
            pred = expr.predicate
            constructs.add(f"select_{pred.value if isinstance(pred, rasp.Comparison) else 'fn'}")
        elif isinstance(expr, (rasp.SelectorAnd, rasp.SelectorOr)):
            constructs.add(expr.kind)
    return (
        depth[id(program)],
        max(levels.values(), default=0),
        sum(levels.values()),
        tuple(sorted(constructs)),
    )


def _construct(expr: rasp.Expr) -> str:
    if isinstance(expr, rasp.Map):
        return "numerical_map" if expr.is_numerical else "map"
    if isinstance(expr, rasp.Aggregate):
        return "numerical_aggregate" if expr.is_numerical else "aggregate"
    return expr.kind
