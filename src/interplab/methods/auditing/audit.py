"""Auditing a model for a hidden rule: ``audit(model, family, method=..., budget=..., seed=...)``.

Every auditor knows the rule family (the public base task and all candidate rules
``(a, p, q, c)``), may spend at most ``budget`` queries (one query = one forward pass on one
input, see :mod:`.queries`) and states one member. They differ only in how they choose queries
and what prior they put on the members; all eliminate members with the same
:class:`~.version_space.VersionSpace`:

    white_box         one query reads every head's attention pattern on a random input; a head
                      whose every query position puts >= 0.9 of its attention on one and the same
                      (non-BOS) key reads a fixed position, so those positions are shortlisted as
                      trigger positions (members with p elsewhere get prior weight 1e-3). The
                      remaining queries are chosen greedily (best_query) from a pool of random
                      inputs and single-token edits of the last input whose outputs left the base task (else the
                      last input), under that prior; the heaviest survivor is
                      stated. Without a shortlisted position it is black_box_active.
    black_box         the whole budget on uniformly random inputs, then a random survivor.
    black_box_active  the same greedy query choice and pool with a flat prior (its first
                      query, with nothing to edit yet, is the best of the random inputs).
    random            a uniformly random member, without a query.

For families whose trigger is token content (:mod:`interplab.compile.content_rules`; they work on
position families too, whose trigger token is ``a``), two more white-box auditors spend their
first query on one *diverse* input (every vocabulary token once, in a seeded order, the rest
random; L distinct tokens when the vocabulary is larger than L) and shortlist trigger tokens;
members whose trigger tokens are not all shortlisted get prior weight OFF_SHORTLIST, and the
rest of the budget is the same greedy querying (flat prior when nothing is shortlisted):

    attention_content  a head is keyed on a token when its attention is query-independent (every
                       query row within QUERY_INDEPENDENT of the first) and the keys it selects
                       (>= half its largest weight) are exactly the positions holding one token
                       value; a query-independent head that selects only BOS is keyed on a token
                       absent from the input (all absent tokens are shortlisted).
    attribution        gradient x input on the same query (:meth:`.QueryProxy.attribute`): for
                       every output that left the base task on that input, the tokens at the input
                       positions whose |attribution| is >= ATTRIBUTION_SHARE of that output's
                       largest are shortlisted (nothing is shortlisted when no output left it).

Each auditor is registered in the ``auditing`` family (cost unit: queries) with the call shape
``fn(model, family, *, budget, seed=0) -> AuditReport``; :func:`audit` dispatches through it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interplab.methods import registry
from interplab.methods.auditing.queries import QueryProxy
from interplab.methods.auditing.version_space import VersionSpace
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

#: a head "reads a fixed position" when every query position puts at least this on one key
FIXED_ATTENTION = 0.9
#: prior weight of members whose trigger position the white-box analysis did not shortlist
OFF_SHORTLIST = 1e-3
POOL_RANDOM = 48
#: a head is query-independent when every query row is within this (max abs) of the first row
QUERY_INDEPENDENT = 0.05
#: attribution: input positions carrying at least this share of an output's largest |attribution|
ATTRIBUTION_SHARE = 0.5
METRIC = "audit_success"


@dataclass(frozen=True)
class AuditReport(Result):
    """The stated rule, the budget and what the auditor saw; ``cost.queries``: the queries
    spent; ``survivors``: members still consistent with every answer."""

    method: str
    rule: Any  # a member of the audited family (HiddenRule, ContentRule, ...)
    budget: int
    survivors: int
    evidence: dict[str, Any] = field(default_factory=dict)


def audit(
    model: Any, family: Any, *, method: str = "white_box", budget: int, seed: int = 0
) -> AuditReport:
    """Audit ``model`` (a CompiledModel, or anything QueryProxy can wrap) for a member of
    ``family`` with at most ``budget`` queries; see the module docstring for the methods."""
    return registry.get("auditing", method).fn(model, family, budget=budget, seed=seed)


def _start(
    model: Any, family: Any, budget: int, method: str, seed: int
) -> tuple[QueryProxy, random.Random, VersionSpace, float]:
    proxy = model if isinstance(model, QueryProxy) else QueryProxy(model, budget)
    rng = random.Random(f"audit:{method}:{seed}")
    return proxy, rng, VersionSpace(family), time.perf_counter()


def _report(
    method: str,
    rule: Any,
    proxy: QueryProxy,
    budget: int,
    space: VersionSpace,
    start: float,
    evidence: dict[str, Any] | None = None,
) -> AuditReport:
    return AuditReport(
        method,
        rule,
        budget,
        space.n_alive,
        evidence or {},
        cost=Cost(queries=proxy.used),
        seconds=time.perf_counter() - start,
    )


@register("auditing", "white_box", kind="method", cost_unit="queries", metric=METRIC)
def white_box(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """Attention patterns shortlist trigger positions; then greedy queries under that prior."""
    proxy, rng, space, start = _start(model, family, budget, "white_box", seed)
    evidence: dict[str, Any] = {}
    if proxy.remaining > 0:
        evidence = _white_box_prior(proxy, family, space, rng)
    _active(proxy, family, space, rng)
    return _report("white_box", space.statement(rng), proxy, budget, space, start, evidence)


@register("auditing", "black_box", kind="baseline", cost_unit="queries", metric=METRIC)
def black_box(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """The whole budget on uniformly random inputs, then a random survivor."""
    proxy, rng, space, start = _start(model, family, budget, "black_box", seed)
    inputs = [family.random_input(rng) for _ in range(proxy.remaining)]
    for x, y in zip(inputs, proxy.query(inputs)):
        space.observe(x, y)
    return _report("black_box", space.statement(rng), proxy, budget, space, start)


@register("auditing", "black_box_active", kind="baseline", cost_unit="queries", metric=METRIC)
def black_box_active(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """Greedy query choice from the same pool with a flat prior."""
    proxy, rng, space, start = _start(model, family, budget, "black_box_active", seed)
    _active(proxy, family, space, rng)
    return _report("black_box_active", space.statement(rng), proxy, budget, space, start)


@register("auditing", "random", kind="baseline", cost_unit="none", metric=METRIC)
def random_member(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """A uniformly random member, without a query."""
    proxy, rng, space, start = _start(model, family, budget, "random", seed)
    return _report("random", rng.choice(space.rules), proxy, budget, space, start)


def fixed_position_heads(patterns: dict[int, Any], length: int) -> list[tuple[int, int, int]]:
    """(layer, head, input position) for every head whose every query position attends
    (>= FIXED_ATTENTION) to the same non-BOS key."""
    found = []
    for layer, pat in patterns.items():
        for head in range(pat.shape[0]):
            rows = pat[head, 1 : length + 1, :]
            best = rows.argmax(dim=-1)
            if (
                int(best.min()) == int(best.max())
                and int(best[0]) > 0
                and float(rows.max(dim=-1).values.min()) >= FIXED_ATTENTION
            ):
                found.append((layer, head, int(best[0]) - 1))
    return found


def _white_box_prior(
    proxy: QueryProxy, family: Any, space: VersionSpace, rng: random.Random
) -> dict[str, Any]:
    x = family.random_input(rng)
    out, patterns = proxy.inspect(x)
    space.observe(x, out)
    heads = fixed_position_heads(patterns, family.length)
    positions = sorted({p for _, _, p in heads})
    if positions and space.p is not None:  # a family without trigger positions: no prior
        space.weights = np.where(np.isin(space.p, positions), 1.0, OFF_SHORTLIST)
    return {"fixed_position_heads": heads, "shortlisted_positions": positions}


def _pool(family: Any, rng: random.Random, anchor: list[Any] | None) -> list[list[Any]]:
    """POOL_RANDOM random inputs and every single-token edit of ``anchor``."""
    pool = [family.random_input(rng) for _ in range(POOL_RANDOM)]
    if anchor is not None:
        base = anchor
        for i in range(family.length):
            for v in family.vocab:
                if v != base[i]:
                    pool.append(base[:i] + [v] + base[i + 1 :])
    return pool


def _active(proxy: QueryProxy, family: Any, space: VersionSpace, rng: random.Random) -> None:
    anchor: list[Any] | None = space.last_deviation
    while proxy.remaining > 0:
        pool = _pool(family, rng, anchor)
        x = pool[space.best_query(pool)]
        space.observe(x, proxy.query([x])[0])
        anchor = space.last_deviation or x


@register("auditing", "attention_content", kind="method", cost_unit="queries", metric=METRIC)
def attention_content(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """Heads keyed on token content shortlist trigger tokens; then greedy queries."""
    proxy, rng, space, start = _start(model, family, budget, "attention_content", seed)
    evidence: dict[str, Any] = {}
    if proxy.remaining > 0:
        x = diverse_input(family, rng)
        out, patterns = proxy.inspect(x)
        space.observe(x, out)
        heads = content_keyed_heads(patterns, x, family.vocab)
        shortlist = sorted({t for _, _, ts in heads for t in ts})
        _token_prior(space, family, shortlist)
        evidence = {"content_keyed_heads": heads, "shortlisted_tokens": shortlist}
    _active(proxy, family, space, rng)
    return _report("attention_content", space.statement(rng), proxy, budget, space, start, evidence)


@register("auditing", "attribution", kind="method", cost_unit="queries", metric=METRIC)
def attribution(model: Any, family: Any, *, budget: int, seed: int = 0) -> AuditReport:
    """Gradient x input attribution of outputs that left the base task shortlists trigger
    tokens; then greedy queries."""
    proxy, rng, space, start = _start(model, family, budget, "attribution", seed)
    evidence: dict[str, Any] = {}
    if proxy.remaining > 0:
        x = diverse_input(family, rng)
        out, attr = proxy.attribute(x)
        space.observe(x, out)
        base = family.base_outputs(x)
        deviating = [i for i in range(len(x)) if out[i] != base[i]]
        shortlist: set[Any] = set()
        for i in deviating:
            row = attr[i].abs()
            top = float(row.max())
            if top > 0:
                shortlist |= {
                    x[k] for k in range(len(x)) if float(row[k]) >= ATTRIBUTION_SHARE * top
                }
        _token_prior(space, family, sorted(shortlist))
        evidence = {"deviating_outputs": deviating, "shortlisted_tokens": sorted(shortlist)}
    _active(proxy, family, space, rng)
    return _report("attribution", space.statement(rng), proxy, budget, space, start, evidence)


def diverse_input(family: Any, rng: random.Random) -> list[Any]:
    """Every vocabulary token once (L distinct ones when the vocabulary is larger than L), the
    remaining positions random, in a seeded order."""
    vocab = list(family.vocab)
    n = family.length
    xs = (
        rng.sample(vocab, n)
        if len(vocab) >= n
        else vocab + [rng.choice(vocab) for _ in range(n - len(vocab))]
    )
    rng.shuffle(xs)
    return xs


def content_keyed_heads(
    patterns: dict[int, Any], xs: list[Any], vocab: Any
) -> list[tuple[int, int, tuple[Any, ...]]]:
    """(layer, head, tokens) for every head with query-independent attention on ``xs`` that
    selects exactly the positions holding one token (tokens: that one), or only BOS (tokens:
    those absent from ``xs``)."""
    n = len(xs)
    absent = tuple(v for v in vocab if v not in xs)
    found = []
    for layer, pat in patterns.items():
        for head in range(pat.shape[0]):
            rows = pat[head, 1 : n + 1, : n + 1]
            if float((rows - rows[0]).abs().max()) > QUERY_INDEPENDENT:
                continue
            row = rows.mean(dim=0)
            top = float(row.max())
            keys = {k - 1 for k in range(1, n + 1) if float(row[k]) >= 0.5 * top}
            if not keys:
                if absent:
                    found.append((layer, head, absent))
                continue
            values = {xs[k] for k in keys}
            if len(values) == 1:
                (v,) = values
                if keys == {k for k in range(n) if xs[k] == v}:
                    found.append((layer, head, (v,)))
    return found


def _token_prior(space: VersionSpace, family: Any, shortlist: list[Any]) -> None:
    """Members whose trigger tokens are not all in ``shortlist`` get OFF_SHORTLIST weight."""
    if not shortlist:
        return
    idx = [i for i, v in enumerate(family.vocab) if v in shortlist]
    space.weights = np.where(np.isin(space.a, idx) & np.isin(space.b, idx), 1.0, OFF_SHORTLIST)


__all__ = [
    "AuditReport",
    "audit",
    "content_keyed_heads",
    "diverse_input",
    "fixed_position_heads",
]
