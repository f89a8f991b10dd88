"""Programs with a content-triggered hidden rule: the auditing game without a fixed trigger place.

Like :mod:`interplab.compile.hidden_rules`, an organism computes a public base program (reverse,
sort, hist) on inputs of one fixed length ``L``, except that one secret rule of a stated finite
family overrides one output. Here the trigger is the input's *content*, wherever it sits:

    any    (a, q, c)      token ``a`` appears anywhere            -> output ``q`` becomes ``c``
    pair   (a, b, q, c)   tokens ``a`` and ``b`` (a < b) both appear -> output ``q`` becomes ``c``
    count  (a, m, q, c)   token ``a`` appears at least ``m`` times  -> output ``q`` becomes ``c``

The rule is written into the RASP program, so the compiler puts it in the weights, with no head
reading a fixed position::

    cr_count_a = SelectorWidth(Select(tokens, Full(a), EQ))     a head keyed on token content
    cr_has_a   = Map(n >= m, cr_count_a)                         an MLP (m = 1 unless count)
    cr_cond    = SequenceMap(and, cr_has_a, cr_has_b)             (pair only; b as a, m = 1)
    cr_flag    = SequenceMap(cond and i == q, cond, indices)      an MLP
    cr_out     = SequenceMap(c if flag else base, base, cr_flag)  an MLP: the override

A compiled SelectorWidth head always keeps ``1 / (width + 1)`` of its attention on BOS, so on no
input does it put more than 1/2 on one non-BOS key: it never "reads a fixed position" in the
sense of :func:`interplab.methods.auditing.fixed_position_heads` (checked when the organism is
built, :mod:`interplab.zoo.content_rules`). That is compile style ``"keyed"`` (the default): the
trigger token still sits in the heads' query-key weights, so a head's attention names it.

Compile style ``"pooled"`` moves the trigger token out of attention into MLP weights::

    cr_is_a    = numerical(Map(1 if t == a else 0, tokens))               an MLP: token detector
    cr_share_a = numerical(Aggregate(Select(indices, indices, TRUE), cr_is_a))   a uniform head
    cr_cond    = Map(share * L >= m, cr_share_a)   (pair: both shares > 0, via two Maps)

Its heads attend uniformly (1/L to every input position, whatever the input), so the attention
pattern carries nothing about which token triggers; both styles compute the same function.

:class:`ContentRuleFamily` is what every auditor is told (base, vocabulary, length, the count
thresholds and so every member). Members are also given as arrays (:meth:`member_arrays`) with a
vectorised :meth:`fires` so a version space over all of them stays fast. Rules that never change
an output on triggered inputs are members but are never drawn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interplab.compile import rasp
from interplab.compile.hidden_rules import BASES
from interplab.compile.rasp import (
    Aggregate,
    Comparison,
    Full,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    indices,
    numerical,
    tokens,
)
from interplab.errors import ConfigError, unknown_name

KINDS = ("any", "pair", "count")
STYLES = ("keyed", "pooled")


@dataclass(frozen=True)
class ContentRule:
    """One member: ``kind`` in KINDS; ``b`` only for pair (else None); ``m`` the count threshold
    (1 for any and pair)."""

    kind: str
    a: int
    b: int | None
    m: int
    q: int
    c: Any

    @property
    def trigger_tokens(self) -> tuple[int, ...]:
        return (self.a,) if self.b is None else (self.a, self.b)

    def triggered(self, xs: Sequence[Any]) -> bool:
        """Whether the rule fires on ``xs``."""
        xs = list(xs)
        if self.kind == "pair":
            return self.a in xs and self.b in xs
        return xs.count(self.a) >= self.m

    def describe(self) -> str:
        then = f"output {self.q} becomes {self.c!r}"
        if self.kind == "any":
            return f"when token {self.a!r} appears anywhere, {then}"
        if self.kind == "pair":
            return f"when tokens {self.a!r} and {self.b!r} both appear, {then}"
        return f"when token {self.a!r} appears at least {self.m} times, {then}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b, "m": self.m, "q": self.q, "c": self.c}


@dataclass(frozen=True)
class ContentRuleFamily:
    """The stated family: base task, integer vocabulary, input length, count thresholds."""

    base: str
    vocab: tuple[int, ...]
    length: int
    counts: tuple[int, ...] = (2, 3)

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise unknown_name("content-rule base program", self.base, list(BASES))
        if (
            len(self.vocab) < 2
            or len(set(self.vocab)) != len(self.vocab)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in self.vocab)
        ):
            raise ConfigError(
                f"a rule family needs >= 2 distinct integer tokens, got {self.vocab!r}"
            )
        if not isinstance(self.length, int) or self.length < 2:
            raise ConfigError(f"a rule family needs an input length >= 2, got {self.length!r}")
        if not self.counts or not all(
            isinstance(m, int) and 2 <= m <= self.length for m in self.counts
        ):
            raise ConfigError(
                f"count thresholds must be ints in 2..{self.length}, got {self.counts!r}"
            )

    @property
    def outputs(self) -> tuple[Any, ...]:
        return BASES[self.base][2](self.vocab, self.length)

    @property
    def rules(self) -> list[ContentRule]:
        """Every member: any, then pair, then count rules (the order of :meth:`member_arrays`)."""
        out: list[ContentRule] = []
        qc = [(q, c) for q in range(self.length) for c in self.outputs]
        v = self.vocab
        out += [ContentRule("any", a, None, 1, q, c) for a in v for q, c in qc]
        out += [
            ContentRule("pair", a, b, 1, q, c)
            for i, a in enumerate(v)
            for b in v[i + 1 :]
            for q, c in qc
        ]
        out += [
            ContentRule("count", a, None, m, q, c) for a in v for m in self.counts for q, c in qc
        ]
        return out

    def member_arrays(self) -> dict[str, np.ndarray]:
        """Per member (``rules`` order): ``a``/``b`` token indices (``b`` = ``a`` unless pair),
        count threshold ``m`` on ``a``, ``q`` and the output index ``c``."""
        tok = {t: i for i, t in enumerate(self.vocab)}
        out = {t: i for i, t in enumerate(self.outputs)}
        rules = self.rules
        return {
            "a": np.array([tok[r.a] for r in rules]),
            "b": np.array([tok[r.b if r.b is not None else r.a] for r in rules]),
            "m": np.array([r.m for r in rules]),
            "q": np.array([r.q for r in rules]),
            "c": np.array([out[r.c] for r in rules]),
        }

    def fires(self, x_codes: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Per member of ``arrays``: whether its trigger holds on the input with token indices
        ``x_codes`` (vectorised :meth:`ContentRule.triggered`)."""
        n = np.bincount(np.asarray(x_codes), minlength=len(self.vocab))
        return (n[arrays["a"]] >= arrays["m"]) & (n[arrays["b"]] >= 1)

    def base_outputs(self, xs: Sequence[Any]) -> list[Any]:
        return BASES[self.base][1](xs)

    def predict(self, xs: Sequence[Any], rule: ContentRule | None) -> list[Any]:
        """What a model following ``rule`` outputs on ``xs`` (``None``: the base task alone)."""
        out = self.base_outputs(xs)
        if rule is not None and rule.triggered(xs):
            out[rule.q] = rule.c
        return out

    def random_input(self, rng: random.Random) -> list[int]:
        return [rng.choice(self.vocab) for _ in range(self.length)]

    def triggered_input(self, rng: random.Random, rule: ContentRule) -> list[int]:
        """A random input with the trigger planted at random distinct positions."""
        xs = self.random_input(rng)
        planted = [rule.a] * rule.m if rule.b is None else [rule.a, rule.b]
        for pos, t in zip(rng.sample(range(self.length), len(planted)), planted):
            xs[pos] = t
        return xs

    def changes_output(self, rule: ContentRule, n: int = 200, seed: int = 0) -> bool:
        """Whether the rule changes some output on ``n`` seeded triggered inputs."""
        rng = random.Random(seed)
        return any(
            self.base_outputs(x)[rule.q] != rule.c
            for x in (self.triggered_input(rng, rule) for _ in range(n))
        )

    def draw(self, seed: int) -> ContentRule:
        """A seeded member that changes some output: the kind uniformly, then a member of that
        kind (degenerate rules redrawn). Stream keyed ``"content-rule-draw:<seed>"``."""
        rng = random.Random(f"content-rule-draw:{seed}")
        by_kind: dict[str, list[ContentRule]] = {}
        for r in self.rules:
            by_kind.setdefault(r.kind, []).append(r)
        while True:
            rule = rng.choice(by_kind[rng.choice(KINDS)])
            if self.changes_output(rule):
                return rule

    def describe(self) -> str:
        return (
            f"{self.base} over tokens {list(self.vocab)} at length {self.length}; rules: token a "
            f"appears / tokens a<b both appear / token a appears >= m times (m in "
            f"{list(self.counts)}) -> output q in 0..{self.length - 1} becomes c in "
            f"{list(self.outputs)} ({len(self.rules)} members)"
        )


def content_rule_program(
    family: ContentRuleFamily, rule: ContentRule, style: str = "keyed"
) -> rasp.SOp:
    """The base program with ``rule`` built in; ``style`` (STYLES): content-keyed SelectorWidth
    heads ("keyed") or uniform mean-pooling heads over MLP token detectors ("pooled")."""
    ok = (
        rule.kind in KINDS
        and rule.a in family.vocab
        and rule.c in family.outputs
        and 0 <= rule.q < family.length
        and (
            (rule.kind == "pair" and rule.b in family.vocab and rule.a < rule.b and rule.m == 1)
            or (rule.kind == "any" and rule.b is None and rule.m == 1)
            or (rule.kind == "count" and rule.b is None and rule.m in family.counts)
        )
    )
    if not ok:
        raise ConfigError(f"rule {rule} is not a member of the family: {family.describe()}")
    if style not in STYLES:
        raise unknown_name("content-rule compile style", style, list(STYLES))
    base = BASES[family.base][0](family.vocab, family.length)
    n = family.length
    every = Select(indices, indices, Comparison.TRUE, name="cr_every")

    def count_at_least(t: int, m: int, tag: str) -> rasp.SOp:
        """A categorical SOp: whether token ``t`` appears at least ``m`` times."""
        if style == "keyed":
            sel = Select(
                tokens, Full(t, name=f"cr_token_{tag}"), Comparison.EQ, name=f"cr_sel_{tag}"
            )
            count = SelectorWidth(sel, name=f"cr_count_{tag}")
            return Map(lambda k, m=m: k >= m, count, name=f"cr_has_{tag}")  # type: ignore[misc]  # mypy: lambda with a default
        is_t = numerical(Map(lambda x, t=t: 1 if x == t else 0, tokens, name=f"cr_is_{tag}"))  # type: ignore[misc]  # mypy: lambda with a default
        share = numerical(Aggregate(every, is_t, default=0, name=f"cr_share_{tag}"))
        return Map(lambda v, m=m: v * n >= m - 0.5, share, name=f"cr_has_{tag}")  # type: ignore[misc]  # mypy: lambda with a default

    cond = count_at_least(rule.a, rule.m, "a")
    if rule.b is not None:  # pair
        cond = SequenceMap(
            lambda x, y: bool(x) and bool(y), cond, count_at_least(rule.b, 1, "b"), name="cr_cond"
        )
    flag = SequenceMap(
        lambda t, i, q=rule.q: bool(t) and i == q,  # type: ignore[misc]  # mypy: lambda with a default
        cond,
        indices,
        name="cr_flag",
    )
    return SequenceMap(lambda b, f, c=rule.c: c if f else b, base, flag, name="cr_out")  # type: ignore[misc]  # mypy: lambda with a default


def compile_content_rule(family: ContentRuleFamily, rule: ContentRule, style: str = "keyed") -> Any:
    """The compiled organism (a CompiledModel) for inputs of exactly ``family.length`` tokens."""
    from interplab.compile.compiler import compile_program

    n = family.length
    return compile_program(
        content_rule_program(family, rule, style),
        family.vocab,
        n,
        name=f"content-{style}-{family.base}",
        measure_circuit=False,
        valid=lambda xs: len(xs) == n,
    )


__all__ = [
    "KINDS",
    "STYLES",
    "ContentRule",
    "ContentRuleFamily",
    "compile_content_rule",
    "content_rule_program",
]
