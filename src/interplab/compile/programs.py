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
from interplab.compile.program_blocks import (  # re-exported: the blocks' public path
    make_count_less_freq,
    make_detect_pattern,
    make_extreme_so_far,
    make_first_token,
    make_frac_prevs,
    make_hist,
    make_induction_copy,
    make_length,
    make_mod_sum,
    make_nary_sequencemap,
    make_pair_balance,
    make_prev_token,
    make_reverse,
    make_shift_back,
    make_shuffle_dyck,
    make_sort,
    make_sort_unique,
    make_sum_prev,
    shift_by,
)
from interplab.compile.rasp import (
    Aggregate,
    Comparison,
    Map,
    Select,
    SequenceMap,
    indices,
    numerical,
    tokens,
)
from interplab.errors import ConfigError, unknown_name

C = Comparison


# ------------------------------------------------------------------------ SIIT programs
# The programs the SIIT organisms (:mod:`interplab.zoo.siit`) are trained to implement; their
# labels name the variables the organisms' alignments place (e.g. ``prev``, ``smaller``).


def siit_hist() -> rasp.SOp:
    """hist: how many times each position's token occurs in the input."""
    return make_hist("hist", select_name="same_tok")


def siit_sort_unique() -> rasp.SOp:
    """sort_unique: sort distinct tokens (target position = how many tokens are smaller)."""
    return make_sort_unique(tokens, tokens, "sort", labels=("smaller_sel", "smaller", "place"))


def siit_shift_by_1() -> rasp.SOp:
    """shift_by(1): each position holds the previous token (nothing at the first)."""
    return make_prev_token()


def siit_shift_by_2() -> rasp.SOp:
    """shift_by(2): each position holds the token two places back (nothing at the first two)."""
    return make_shift_back(2, "back2", "back2_idx", "select_back2")


def siit_sum_prev(p: int = 3) -> rasp.SOp:
    """(token + previous token) mod p: a shift head feeding a modular-sum MLP."""
    return make_sum_prev(p)


def siit_reverse(length: int) -> rasp.SOp:
    """reverse (fixed length): position i reads the token at length - 1 - i."""
    opp = Map(lambda i: length - 1 - i, indices, name="opp_idx")
    return Aggregate(Select(indices, opp, C.EQ, name="flip"), tokens, name="reverse")


def siit_first_token() -> rasp.SOp:
    """first_token: every position holds the first token — the library ``mod_sum`` program's
    first-token head (:func:`make_mod_sum`), alone."""
    return make_first_token()


def siit_detect_pattern() -> rasp.SOp:
    """detect_pattern('ab' = 0 then 1): 1 where the previous token is 0 and this one is 1."""
    return SequenceMap(
        lambda prev, tok: int(prev == 0 and tok == 1), make_prev_token(), tokens, name="detect"
    )


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
            open_, close = tuple(rng.choice(list(pairs)))
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
