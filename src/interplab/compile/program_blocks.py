"""Building blocks of RASP programs: small named expressions (length, histogram, sort, shifts,
previous-token and first-token heads, ...) that the program library
(:mod:`interplab.compile.programs`) and the hidden rules compose. Every expression is named, so
labels are stable across processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

C = Comparison


def make_length(name: str = "length") -> rasp.SOp:
    """Number of input positions, at every position."""
    return SelectorWidth(Select(tokens, tokens, C.TRUE, name=f"{name}_select_all"), name=name)


def make_reverse(sop: rasp.SOp = tokens) -> rasp.SOp:
    length = make_length()
    opp = SequenceMap(lambda n, i: n - i - 1, length, indices, name="opp_index")
    return Aggregate(Select(indices, opp, C.EQ, name="reverse_select"), sop, name="reverse")


def make_hist(name: str = "hist", select_name: str | None = None) -> rasp.SOp:
    """How many times the token at each position occurs in the input (its select is labelled
    ``select_name``, default ``<name>_select_same``)."""
    same = Select(tokens, tokens, C.EQ, name=select_name or f"{name}_select_same")
    return SelectorWidth(same, name=name)


def make_sort_unique(
    vals: rasp.SOp,
    keys: rasp.SOp,
    name: str = "sort",
    labels: tuple[str, str, str] | None = None,
) -> rasp.SOp:
    """``vals`` ordered by ``keys`` (keys must be distinct). ``labels``: the names of the
    smaller-than select, the target position and the target select (default
    ``<name>_smaller``, ``<name>_target_pos``, ``<name>_select_target``)."""
    lt, pos, place = labels or (f"{name}_smaller", f"{name}_target_pos", f"{name}_select_target")
    target = SelectorWidth(Select(keys, keys, C.LT, name=lt), name=pos)
    return Aggregate(Select(target, indices, C.EQ, name=place), vals, name=name)


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
    any_negative: rasp.SOp = negative[0]
    all_zero: rasp.SOp = zero[0]
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
    matches: list[rasp.SOp] = []
    for i, value in enumerate(pattern):
        shifted = sop if i == n - 1 else shift_by(n - 1 - i, sop, name=f"shift_{n - 1 - i}")
        matches.append(Map(lambda x, v=value: x == v, shifted, name=f"match_{i}"))  # type: ignore[misc]  # mypy: lambda with a default
    result = matches[0]
    for i, m in enumerate(matches[1:], start=1):
        result = SequenceMap(lambda a, b: a and b, result, m, name=f"match_upto_{i}")
    return Map(lambda x: 1 if x else 0, result, name="detect_pattern")


def make_sum_prev(p: int) -> rasp.SOp:
    """(token + previous token) mod p (None at the first position): a previous-token head
    feeding a modular-sum MLP. Labels ``prev_idx``, ``select_prev``, ``prev``, ``sum_prev``."""
    return SequenceMap(lambda a, b: (a + b) % p, tokens, make_prev_token(), name="sum_prev")


def make_count_less_freq(n: int) -> rasp.SOp:
    """How many positions hold a token that occurs fewer than ``n`` times."""
    hist = make_hist()
    rare = Select(hist, hist, lambda k, q: k < n, name="select_rare")
    return SelectorWidth(rare, name="count_less_freq")


def make_nary_sequencemap(f: Callable[..., Any], *sops: rasp.SOp, name: str = "nary") -> rasp.SOp:
    """``f`` of several SOps, by pairing them into tuples one SequenceMap at a time."""
    packed: rasp.SOp = Map(lambda x: (x,), sops[0], name=f"{name}_pack_0")
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
    return SequenceMap(lambda a, b: (a + b) % p, make_first_token(), tokens, name="mod_sum")


def make_extreme_so_far(vocab: Sequence[int], largest: bool) -> rasp.SOp:
    """Max (or min) of the tokens up to and including this position."""
    tag = "max" if largest else "min"
    one = numerical(Full(1, name="one_number"))
    so_far = Select(indices, indices, C.LEQ, name="select_so_far")
    order = sorted(vocab, reverse=not largest)
    current: rasp.SOp | None = None
    for n, v in enumerate(order):  # later values win: ascending for max, descending for min
        is_v = Select(tokens, tokens, lambda k, q, v=v: k == v, name=f"select_token_{v}")  # type: ignore[misc]  # mypy: lambda with a default
        seen = numerical(
            Aggregate((is_v & so_far).named(f"token_{v}_so_far"), one, name=f"seen_{v}")
        )
        seen_cat = Map(lambda x: x > 0.5, seen, name=f"seen_{v}_flag")
        name = f"{tag}_so_far" if n == len(order) - 1 else f"{tag}_upto_{v}"
        if current is None:  # "none" marks "no token seen yet" (never the final answer)
            current = Map(lambda s, v=v: v if s else "none", seen_cat, name=name)  # type: ignore[misc]  # mypy: lambda with a default
        else:
            current = SequenceMap(lambda c, s, v=v: v if s else c, current, seen_cat, name=name)  # type: ignore[misc]  # mypy: lambda with a default
    return current  # type: ignore[return-value]


def make_shift_back(offset: int, name: str, index_name: str, select_name: str) -> rasp.SOp:
    """The token ``offset`` places back (None in the first ``offset`` positions), by an index
    Map (``index_name``: i - offset) feeding an EQ select (``select_name``): an MLP then a head,
    unlike :func:`shift_by` (one head with a shifted predicate)."""
    back = Map(lambda i: i - offset, indices, name=index_name)
    return Aggregate(Select(indices, back, C.EQ, name=select_name), tokens, name=name)


def make_prev_token() -> rasp.SOp:
    """The previous token: labels ``prev_idx``, ``select_prev``, ``prev``."""
    return make_shift_back(1, "prev", "prev_idx", "select_prev")


def make_first_token() -> rasp.SOp:
    """The first token at every position: labels ``zero``, ``select_first``, ``first_token``."""
    zero = Full(0, name="zero")
    return Aggregate(Select(indices, zero, C.EQ, name="select_first"), tokens, name="first_token")
