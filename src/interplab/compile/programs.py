"""The program library: classic RASP programs (after the Tracr paper's list) and a few of ours.

Each :class:`ProgramSpec` declares its vocabulary, maximum length, a description, the inputs on
which it is defined (``valid``), and generates task data: every valid input (or a seeded sample),
and (clean, corrupted) pairs of equal length whose outputs differ, as circuit discovery needs.
Every expression is named, so labels are stable across processes.

Options: ``spec.compile(vocab=..., max_len=..., causal=True)`` (or ``spec.with_options(...)``)
compiles the program for another vocabulary or length, or as a decoder. A program that needs a
property of its vocabulary (a token it looks for, numbers it adds) declares it in ``needs``, and
a vocabulary without it is a :class:`~interplab.errors.ConfigError` naming what is missing.

``causal-<name>`` entries are the causal (decoder) variants of the programs whose selects never
look forward (:data:`CAUSAL_PROGRAMS`): one name per model.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from interplab.compile import rasp
from interplab.compile.rasp import (
    Aggregate,
    Comparison,
    Full,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    indices,
    numerical,
    tokens,
)
from interplab.errors import ConfigError, unknown_name

C = Comparison


# ------------------------------------------------------------------------ building blocks


def make_length(name: str = "length") -> rasp.SOp:
    """Number of input positions, at every position."""
    return SelectorWidth(Select(tokens, tokens, C.TRUE, name=f"{name}_select_all"), name=name)


def make_reverse(sop: rasp.SOp = tokens) -> rasp.SOp:
    length = make_length()
    opp = SequenceMap(lambda n, i: n - i - 1, length, indices, name="opp_index")
    return Aggregate(Select(indices, opp, C.EQ, name="reverse_select"), sop, name="reverse")


def make_hist(name: str = "hist") -> rasp.SOp:
    """How many times the token at each position occurs in the input."""
    return SelectorWidth(Select(tokens, tokens, C.EQ, name=f"{name}_select_same"), name=name)


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp, name: str = "sort") -> rasp.SOp:
    """``vals`` ordered by ``keys`` (keys must be distinct)."""
    smaller = Select(keys, keys, C.LT, name=f"{name}_smaller")
    target = SelectorWidth(smaller, name=f"{name}_target_pos")
    return Aggregate(Select(target, indices, C.EQ, name=f"{name}_select_target"), vals, name=name)


def make_sort(
    vals: rasp.SOp, keys: rasp.SOp, max_len: int, min_key: float, name: str = "sort"
) -> rasp.SOp:
    """Stable sort: keys made distinct by adding ``min_key * index / max_len``."""
    unique = SequenceMap(lambda k, i: k + min_key * i / max_len, keys, indices, name=f"{name}_keys")
    return make_sort_unique(vals, unique, name=name)


def make_frac_prevs(bools: rasp.SOp, name: str = "frac_prevs") -> rasp.SOp:
    """Fraction of positions up to and including this one where ``bools`` is 1 (numerical)."""
    prevs = Select(indices, indices, C.LEQ, name=f"{name}_select_prevs")
    return numerical(Aggregate(prevs, bools, name=name))


def make_pair_balance(sop: rasp.SOp, open_: str, close: str, tag: str) -> rasp.SOp:
    """Fraction of opens minus fraction of closes so far (numerical)."""
    opens = numerical(Map(lambda t: 1 if t == open_ else 0, sop, name=f"is_open{tag}"))
    closes = numerical(Map(lambda t: 1 if t == close else 0, sop, name=f"is_close{tag}"))
    frac_open = make_frac_prevs(opens, name=f"frac_open{tag}")
    frac_close = make_frac_prevs(closes, name=f"frac_close{tag}")
    return LinearSequenceMap(frac_open, frac_close, 1.0, -1.0, name=f"balance{tag}")


def make_shuffle_dyck(pairs: Sequence[str]) -> rasp.SOp:
    """1 where the whole input is balanced in every bracket pair (shuffle-Dyck), else 0."""
    balances = [make_pair_balance(tokens, p[0], p[1], tag=f"_{i}") for i, p in enumerate(pairs)]
    negative = [Map(lambda b: b < -1e-9, b, name=f"negative_{i}") for i, b in enumerate(balances)]
    zero = [Map(lambda b: abs(b) < 1e-9, b, name=f"zero_{i}") for i, b in enumerate(balances)]
    any_negative, all_zero = negative[0], zero[0]
    for i in range(1, len(pairs)):
        any_negative = SequenceMap(
            lambda a, b: a or b, any_negative, negative[i], name=f"any_negative_{i}"
        )
        all_zero = SequenceMap(lambda a, b: a and b, all_zero, zero[i], name=f"all_zero_{i}")
    neg_num = numerical(Map(lambda x: 1 if x else 0, any_negative, name="negative_as_number"))
    select_all = Select(indices, indices, C.TRUE, name="select_all")
    has_neg = numerical(Aggregate(select_all, neg_num, name="frac_negative"))
    length = make_length()
    last_index = Map(lambda n: n - 1, length, name="last_index")
    last_zero = Aggregate(
        Select(indices, last_index, C.EQ, name="select_last"), all_zero, name="last_balanced"
    )
    never_negative = Map(lambda x: x < 1e-9, has_neg, name="never_negative")
    return SequenceMap(
        lambda a, b: 1 if (a and b) else 0, last_zero, never_negative, name="shuffle_dyck"
    )


def shift_by(offset: int, sop: rasp.SOp, name: str = "shift") -> rasp.SOp:
    """``sop`` shifted right by ``offset`` (None in the first ``offset`` positions)."""
    select = Select(indices, indices, lambda k, q: q == k + offset, name=f"{name}_select")
    return Aggregate(select, sop, name=name)


def make_detect_pattern(sop: rasp.SOp, pattern: Sequence[Any]) -> rasp.SOp:
    """1 where ``pattern`` ends at this position, 0 elsewhere (None before it can fit)."""
    n = len(pattern)
    matches = []
    for i, value in enumerate(pattern):
        shifted = sop if i == n - 1 else shift_by(n - 1 - i, sop, name=f"shift_{n - 1 - i}")
        matches.append(Map(lambda x, v=value: x == v, shifted, name=f"match_{i}"))
    result = matches[0]
    for i, m in enumerate(matches[1:], start=1):
        result = SequenceMap(lambda a, b: a and b, result, m, name=f"match_upto_{i}")
    return Map(lambda x: 1 if x else 0, result, name="detect_pattern")


def make_sum_prev(p: int) -> rasp.SOp:
    """(token + previous token) mod p (None at the first position): a previous-token head
    feeding a modular-sum MLP. Labels ``prev_idx``, ``select_prev``, ``prev``, ``sum_prev``."""
    prev_idx = Map(lambda i: i - 1, indices, name="prev_idx")
    prev = Aggregate(Select(indices, prev_idx, C.EQ, name="select_prev"), tokens, name="prev")
    return SequenceMap(lambda a, b: (a + b) % p, tokens, prev, name="sum_prev")


def make_count_less_freq(n: int) -> rasp.SOp:
    """How many positions hold a token that occurs fewer than ``n`` times."""
    hist = make_hist()
    rare = Select(hist, hist, lambda k, q: k < n, name="select_rare")
    return SelectorWidth(rare, name="count_less_freq")


def make_nary_sequencemap(f: Callable[..., Any], *sops: rasp.SOp, name: str = "nary") -> rasp.SOp:
    """``f`` of several SOps, by pairing them into tuples one SequenceMap at a time."""
    packed = Map(lambda x: (x,), sops[0], name=f"{name}_pack_0")
    for i, sop in enumerate(sops[1:], start=1):
        packed = SequenceMap(lambda t, x: t + (x,), packed, sop, name=f"{name}_pack_{i}")
    return Map(lambda t: f(*t), packed, name=name)


def make_induction_copy() -> rasp.SOp:
    """The token that followed the previous occurrence of the current token (None if none)."""
    prev = shift_by(1, tokens, name="previous_token")
    match = Select(prev, tokens, C.EQ, name="prev_matches_current")
    earlier = Select(indices, indices, C.LT, name="earlier")
    return Aggregate((match & earlier).named("earlier_match"), tokens, name="induction")


def make_mod_sum(p: int) -> rasp.SOp:
    """(first token + current token) mod p."""
    zero = Full(0, name="zero")
    first = Aggregate(Select(indices, zero, C.EQ, name="select_first"), tokens, name="first_token")
    return SequenceMap(lambda a, b: (a + b) % p, first, tokens, name="mod_sum")


def make_extreme_so_far(vocab: Sequence[int], largest: bool) -> rasp.SOp:
    """Max (or min) of the tokens up to and including this position."""
    tag = "max" if largest else "min"
    one = numerical(Full(1, name="one_number"))
    so_far = Select(indices, indices, C.LEQ, name="select_so_far")
    order = sorted(vocab, reverse=not largest)
    current: rasp.SOp | None = None
    for n, v in enumerate(order):  # later values win: ascending for max, descending for min
        is_v = Select(tokens, tokens, lambda k, q, v=v: k == v, name=f"select_token_{v}")
        seen = numerical(
            Aggregate((is_v & so_far).named(f"token_{v}_so_far"), one, name=f"seen_{v}")
        )
        seen_cat = Map(lambda x: x > 0.5, seen, name=f"seen_{v}_flag")
        name = f"{tag}_so_far" if n == len(order) - 1 else f"{tag}_upto_{v}"
        if current is None:  # "none" marks "no token seen yet" (never the final answer)
            current = Map(lambda s, v=v: v if s else "none", seen_cat, name=name)
        else:
            current = SequenceMap(lambda c, s, v=v: v if s else c, current, seen_cat, name=name)
    return current  # type: ignore[return-value]


# ---------------------------------------------------------------------------- the library


@dataclass(frozen=True)
class ProgramSpec:
    """A library program: how to build it, on which inputs it is defined, and its task data."""

    name: str
    description: str
    vocab: tuple[Any, ...]
    max_len: int
    build: Callable[[], rasp.SOp] = field(repr=False)
    valid: Callable[[Sequence[Any]], bool] = field(default=lambda xs: True, repr=False)
    min_len: int = 1
    #: optional task-input generator ``(rng, length) -> input`` that makes the interesting
    #: cases common (e.g. balanced brackets); inputs it returns must satisfy ``valid``
    sampler: Callable[[random.Random, int], list[Any]] | None = field(default=None, repr=False)
    #: lengths task pairs are drawn from (default: all of min_len..max_len)
    task_lengths: tuple[int, ...] | None = None
    #: what the program needs of its vocabulary: (what, test(vocab) -> bool) pairs
    needs: tuple[tuple[str, Callable[[tuple[Any, ...]], bool]], ...] = field(default=(), repr=False)
    #: builds the program for another vocabulary and maximum length (programs whose expressions
    #: depend on them); default: ``build``
    build_for: Callable[[tuple[Any, ...], int], rasp.SOp] | None = field(default=None, repr=False)
    #: compile as a decoder (attention masked to earlier positions)
    causal: bool = False

    def program(self) -> rasp.SOp:
        return self.build()

    def compile(
        self,
        *,
        vocab: Sequence[Any] | None = None,
        max_len: int | None = None,
        causal: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """The compiled model (see :func:`interplab.compile.compile_program`), for the spec's
        vocabulary and maximum length unless ``vocab`` / ``max_len`` are given; ``causal=True``
        builds the decoder variant (``causal-<name>``)."""
        from interplab.compile.compiler import compile_program

        if (
            vocab is not None
            or max_len is not None
            or (causal is not None and causal != self.causal)
        ):
            return self.with_options(vocab=vocab, max_len=max_len, causal=causal).compile(**kwargs)
        if "pairs" not in kwargs:
            kwargs["pairs"] = self.task_pairs(64, seed=0)
        kwargs.setdefault("valid", lambda xs: len(xs) >= self.min_len and self.valid(xs))
        return compile_program(
            self.program(), self.vocab, self.max_len, name=self.name, causal=self.causal, **kwargs
        )

    def with_options(
        self,
        *,
        vocab: Sequence[Any] | None = None,
        max_len: int | None = None,
        causal: bool | None = None,
    ) -> ProgramSpec:
        """This program for another vocabulary / maximum length / attention (a new spec).

        Raises ConfigError when the vocabulary lacks what the program needs (``needs``), is empty
        or repeats a token, or when ``max_len`` is not an int of at least ``min_len``."""
        import dataclasses

        new_vocab = self.vocab if vocab is None else tuple(vocab)
        new_len = self.max_len if max_len is None else max_len
        problems = []
        if vocab is not None:
            if not new_vocab:
                problems.append("the vocabulary is empty")
            elif len({repr(v) for v in new_vocab}) != len(new_vocab):
                problems.append(f"the vocabulary repeats a token: {list(new_vocab)}")
            for what, test in self.needs:
                try:
                    ok = bool(test(new_vocab))
                except Exception:
                    ok = False
                if not ok:
                    problems.append(f"it needs a vocabulary {what}")
        if not isinstance(new_len, int) or isinstance(new_len, bool) or new_len < self.min_len:
            problems.append(f"max_len must be an int >= {self.min_len}, got {new_len!r}")
        if problems:
            raise ConfigError(
                f"cannot compile program {self.name!r} with vocab "
                f"{list(new_vocab)} and max_len {new_len!r}: " + "; ".join(problems)
            )
        changed = new_vocab != self.vocab or new_len != self.max_len
        spec = self
        if changed:
            build_for = self.build_for
            build = (
                self.build
                if build_for is None
                else (lambda b=build_for, v=new_vocab, n=new_len: b(v, n))
            )
            lengths = tuple(n for n in self.task_lengths or () if n <= new_len) or None
            spec = dataclasses.replace(
                self,
                vocab=new_vocab,
                max_len=new_len,
                build=build,
                sampler=self.sampler if new_vocab == self.vocab else None,
                task_lengths=lengths,
            )
        if causal is not None and causal != self.causal:
            base = self.name.removeprefix("causal-")
            note = " (causal: attention masked to earlier positions)"
            spec = dataclasses.replace(
                spec,
                causal=causal,
                name=f"causal-{base}" if causal else base,
                description=spec.description.removesuffix(note) + (note if causal else ""),
            )
        return spec

    def n_inputs(self) -> int:
        """Number of sequences over the vocabulary with a length in [min_len, max_len]."""
        return sum(len(self.vocab) ** n for n in range(self.min_len, self.max_len + 1))

    def inputs(self, limit: int = 10_000, seed: int = 0) -> list[list[Any]]:
        """Every valid input when there are at most ``limit`` sequences, else a seeded sample
        of ``limit`` valid inputs (lengths drawn uniformly)."""
        if self.n_inputs() <= limit:
            return [
                list(x)
                for n in range(self.min_len, self.max_len + 1)
                for x in itertools.product(self.vocab, repeat=n)
                if self.valid(x)
            ]
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(limit)]

    def sample(self, rng: random.Random, length: int | None = None) -> list[Any]:
        """One valid input (of ``length`` when given): from ``sampler`` when the spec has one,
        else uniform over the vocabulary with rejection of invalid inputs."""
        for _ in range(10_000):
            n = length if length is not None else rng.randint(self.min_len, self.max_len)
            xs = (
                self.sampler(rng, n)
                if self.sampler is not None
                else [rng.choice(self.vocab) for _ in range(n)]
            )
            if self.valid(xs):
                return xs
        raise RuntimeError(f"{self.name}: no valid input of length {length} found")

    def task_pairs(
        self, n: int, seed: int = 0, length: int | None = None
    ) -> list[tuple[list, list]]:
        """``n`` (clean, corrupted) pairs of equal length (``length``, else drawn from
        ``task_lengths``), the corrupted input chosen (when possible within 20 draws) so that
        the program's output differs."""
        rng = random.Random(seed)
        program = self.program()
        pairs = []
        for _ in range(n):
            n_tokens = (
                length
                if length is not None
                else (rng.choice(self.task_lengths) if self.task_lengths else None)
            )
            clean = self.sample(rng, n_tokens)
            want = rasp.evaluate(program, clean)
            corrupt = self.sample(rng, len(clean))
            for _ in range(20):
                if rasp.evaluate(program, corrupt) != want:
                    break
                corrupt = self.sample(rng, len(clean))
            pairs.append((clean, corrupt))
        return pairs


def _balanced_or_random(pairs: Sequence[str]) -> Callable[[random.Random, int], list[Any]]:
    """Half the time (even lengths) a balanced shuffle-Dyck word, built by inserting matched
    pairs at random places; otherwise uniform random brackets."""
    vocab = [c for p in pairs for c in p]

    def sample(rng: random.Random, n: int) -> list[Any]:
        if n % 2 or rng.random() < 0.5:
            return [rng.choice(vocab) for _ in range(n)]
        word: list[str] = []
        for _ in range(n // 2):
            open_, close = rng.choice(list(pairs))
            i = rng.randint(0, len(word))
            word.insert(i, open_)
            word.insert(rng.randint(i + 1, len(word)), close)
        return word

    return sample


def _with_pattern(
    vocab: Sequence[Any], pattern: Sequence[Any]
) -> Callable[[random.Random, int], list[Any]]:
    """Uniform random inputs, with ``pattern`` planted at a random place half the time."""

    def sample(rng: random.Random, n: int) -> list[Any]:
        xs = [rng.choice(vocab) for _ in range(n)]
        if n >= len(pattern) and rng.random() < 0.5:
            i = rng.randint(0, n - len(pattern))
            xs[i : i + len(pattern)] = list(pattern)
        return xs

    return sample


def _distinct(xs: Sequence[Any]) -> bool:
    return len(set(xs)) == len(xs)


def _at_most_twice(xs: Sequence[Any]) -> bool:
    return all(xs.count(v) <= 2 for v in set(xs))


def _contains(*tokens: Any) -> tuple[str, Callable[[tuple[Any, ...]], bool]]:
    return (
        f"that contains {', '.join(map(repr, tokens))}",
        lambda vocab: all(t in vocab for t in tokens),
    )


def _numbers(what: str = "of numbers") -> tuple[str, Callable[[tuple[Any, ...]], bool]]:
    return (
        what,
        lambda vocab: all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vocab),
    )


_INTS = (
    "of integers",
    lambda vocab: all(isinstance(v, int) and not isinstance(v, bool) for v in vocab),
)
_ORDERED = (
    "whose tokens compare with < (all numbers, or all strings)",
    lambda vocab: sorted(vocab) is not None,
)


def _min_gap(vocab: Sequence[float]) -> float:
    """The smallest distance between distinct keys: the tie-break a stable sort may add."""
    values = sorted(set(vocab))
    return min((b - a for a, b in zip(values, values[1:])), default=1)


LIBRARY: dict[str, ProgramSpec] = {
    s.name: s
    for s in [
        ProgramSpec(
            "length", "number of input tokens, at every position", ("a", "b", "c"), 5, make_length
        ),
        ProgramSpec("reverse", "the input reversed", ("a", "b", "c"), 5, make_reverse),
        ProgramSpec(
            "hist",
            "how often each position's token occurs in the input",
            ("a", "b", "c"),
            5,
            make_hist,
        ),
        ProgramSpec(
            "sort_unique",
            "sort distinct tokens ascending",
            (0, 1, 2, 3, 4, 5),
            5,
            lambda: make_sort_unique(tokens, tokens),
            valid=_distinct,
            needs=(_ORDERED,),
        ),
        ProgramSpec(
            "sort",
            "stable ascending sort (duplicates allowed)",
            (1, 2, 3, 4),
            5,
            lambda: make_sort(tokens, tokens, max_len=5, min_key=1),
            needs=(_numbers(),),
            build_for=lambda vocab, n: make_sort(
                tokens, tokens, max_len=n, min_key=_min_gap(vocab)
            ),
        ),
        ProgramSpec(
            "sort_freq",
            "tokens sorted by descending frequency",
            ("a", "b", "c"),
            5,
            lambda: make_sort(
                tokens,
                Map(lambda h: -h, make_hist(), name="neg_hist"),
                max_len=5,
                min_key=1,
                name="sort_freq",
            ),
            build_for=lambda vocab, n: make_sort(
                tokens,
                Map(lambda h: -h, make_hist(), name="neg_hist"),
                max_len=n,
                min_key=1,
                name="sort_freq",
            ),
        ),
        ProgramSpec(
            "frac_prevs",
            "fraction of tokens so far equal to 'x' (numerical)",
            ("a", "b", "x"),
            5,
            lambda: make_frac_prevs(
                numerical(Map(lambda t: 1 if t == "x" else 0, tokens, name="is_x"))
            ),
            needs=(_contains("x"),),
        ),
        ProgramSpec(
            "pair_balance",
            "opens minus closes so far, as fractions (numerical)",
            ("(", ")", "a"),
            5,
            lambda: make_pair_balance(tokens, "(", ")", tag=""),
            needs=(_contains("(", ")"),),
        ),
        ProgramSpec(
            "shuffle_dyck",
            "1 if the parentheses are balanced, else 0 (at every position)",
            ("(", ")"),
            6,
            lambda: make_shuffle_dyck(["()"]),
            sampler=_balanced_or_random(["()"]),
            task_lengths=(2, 4, 6),
            needs=(_contains("(", ")"),),
        ),
        ProgramSpec(
            "shuffle_dyck2",
            "1 if both () and {} are balanced (shuffled), else 0",
            ("(", ")", "{", "}"),
            5,
            lambda: make_shuffle_dyck(["()", "{}"]),
            sampler=_balanced_or_random(["()", "{}"]),
            task_lengths=(2, 4),
            needs=(_contains("(", ")", "{", "}"),),
        ),
        ProgramSpec(
            "shift_by",
            "the input shifted right by 2 (None in front)",
            ("a", "b", "c"),
            5,
            lambda: shift_by(2, tokens, name="shift_by_2"),
        ),
        ProgramSpec(
            "detect_pattern",
            "1 where 'abc' ends here, else 0",
            ("a", "b", "c"),
            5,
            lambda: make_detect_pattern(tokens, "abc"),
            sampler=_with_pattern(("a", "b", "c"), "abc"),
            needs=(_contains("a", "b", "c"),),
        ),
        ProgramSpec(
            "count_less_freq",
            "number of positions whose token occurs fewer than 2 times",
            ("a", "b", "c", "d"),
            5,
            lambda: make_count_less_freq(2),
        ),
        ProgramSpec(
            "nary_arith",
            "(token + index * length) mod 5, a 3-ary SequenceMap",
            (0, 1, 2, 3, 4),
            4,
            lambda: make_nary_sequencemap(
                lambda x, i, n: (x + i * n) % 5, tokens, indices, make_length(), name="nary_arith"
            ),
            needs=(_numbers(),),
        ),
        ProgramSpec(
            "induction",
            "copy the token after the previous occurrence of this token",
            ("a", "b", "c", "d"),
            6,
            make_induction_copy,
            valid=_at_most_twice,
        ),
        ProgramSpec(
            "mod_sum",
            "(first token + current token) mod 5",
            (0, 1, 2, 3, 4),
            4,
            lambda: make_mod_sum(5),
            needs=(_INTS,),
        ),
        ProgramSpec(
            "sum_prev",
            "(token + previous token) mod 3",
            (0, 1, 2),
            5,
            lambda: make_sum_prev(3),
            needs=(_INTS,),
        ),
        ProgramSpec(
            "max_so_far",
            "largest token so far",
            (0, 1, 2, 3),
            5,
            lambda: make_extreme_so_far((0, 1, 2, 3), largest=True),
            needs=(_ORDERED,),
            build_for=lambda vocab, n: make_extreme_so_far(vocab, largest=True),
        ),
        ProgramSpec(
            "min_so_far",
            "smallest token so far",
            (0, 1, 2, 3),
            5,
            lambda: make_extreme_so_far((0, 1, 2, 3), largest=False),
            needs=(_ORDERED,),
            build_for=lambda vocab, n: make_extreme_so_far(vocab, largest=False),
        ),
    ]
}

#: the library programs whose selects never look forward: each has a causal (decoder) variant
#: ``causal-<name>`` in :data:`LIBRARY` (tests check that exactly these compile causally)
CAUSAL_PROGRAMS = (
    "frac_prevs",
    "pair_balance",
    "shift_by",
    "detect_pattern",
    "induction",
    "mod_sum",
    "sum_prev",
    "max_so_far",
    "min_so_far",
)
LIBRARY.update({f"causal-{n}": LIBRARY[n].with_options(causal=True) for n in CAUSAL_PROGRAMS})


def get_program(name: str) -> ProgramSpec:
    """The library entry called ``name`` (UnknownNameError lists the valid names)."""
    if name not in LIBRARY:
        raise unknown_name("program", name, list(LIBRARY))
    return LIBRARY[name]
