"""Programs written for Tracr compile here with only the import line changed.

The six functions below are written in Tracr's style (its ``lib`` names and argument orders,
``rasp.numerical`` / ``rasp.categorical``, ``default=`` on Aggregate, operator shorthand on
s-ops, ``.named``, sets as vocabularies, ``compiling.compile_rasp_to_model``). Each compiled
model must agree with the RASP evaluator on every input of its vocabulary and lengths.
"""

from __future__ import annotations

import itertools

import pytest

from interplab.compile import compiling, rasp  # Tracr: from tracr.compiler import compiling

#                                                       from tracr.rasp import rasp


# ---------------------------------------------------------------- ported programs (Tracr style)


def make_length():
    all_true_selector = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named(
        "all_true_selector"
    )
    return rasp.SelectorWidth(all_true_selector).named("length")


def make_reverse(sop):
    length = make_length()
    opp_idx = (length - rasp.indices).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    reverse_selector = rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ).named(
        "reverse_selector"
    )
    return rasp.Aggregate(reverse_selector, sop).named("reverse")


def make_frac_prevs(bools):
    bools = rasp.numerical(bools)
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    return rasp.numerical(rasp.Aggregate(prevs, bools, default=0)).named("frac_prevs")


def make_pair_balance(sop, open_token, close_token):
    bools_open = rasp.numerical(sop == open_token).named("bools_open")
    opens = rasp.numerical(make_frac_prevs(bools_open)).named("opens")
    bools_close = rasp.numerical(sop == close_token).named("bools_close")
    closes = rasp.numerical(make_frac_prevs(bools_close)).named("closes")
    pair_balance = rasp.numerical(rasp.LinearSequenceMap(opens, closes, 1, -1))
    return pair_balance.named("pair_balance")


def make_hist():
    same_tok = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same_tok).named("hist")


def make_sort_unique(vals, keys):
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    target_pos = rasp.SelectorWidth(smaller).named("target_pos")
    sel_new = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ)
    return rasp.Aggregate(sel_new, vals).named("sort")


def make_shifted_is_open():
    """Shorthand beyond Tracr's lib: the previous token is '(' (categorical, default False)."""
    is_open = rasp.categorical(rasp.tokens == "(")
    prev = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + 1)
    return rasp.Aggregate(prev, is_open, default=False).named("prev_is_open")


# ------------------------------------------------------------------------------------- checks


def _distinct(xs):
    return len(set(xs)) == len(xs)


PORTS = {
    # name: (build, vocab as Tracr takes it, max_seq_len, valid inputs, causal variant possible)
    "length": (make_length, {"a", "b", "c"}, 5, None, False),
    "reverse": (lambda: make_reverse(rasp.tokens), {"a", "b", "c"}, 5, None, False),
    "frac_prevs": (
        lambda: make_frac_prevs(rasp.tokens == "l"),
        {"h", "e", "l", "o"},
        5,
        None,
        True,
    ),
    "pair_balance": (
        lambda: make_pair_balance(rasp.tokens, "(", ")"),
        {"(", ")", "a"},
        5,
        None,
        True,
    ),
    "hist": (make_hist, {"a", "b", "c"}, 5, None, False),
    "sort_unique": (
        lambda: make_sort_unique(rasp.tokens, rasp.tokens),
        {1, 2, 3, 4, 5},
        4,
        _distinct,
        False,
    ),
    "prev_is_open": (make_shifted_is_open, {"(", ")"}, 5, None, True),
}


def _inputs(vocab, max_len, valid):
    return [
        list(x)
        for n in range(1, max_len + 1)
        for x in itertools.product(sorted(vocab), repeat=n)
        if valid is None or valid(x)
    ]


@pytest.mark.parametrize("name", list(PORTS))
def test_ported_program_compiles_and_agrees_on_every_input(name):
    build, vocab, max_len, valid, _ = PORTS[name]
    program = build()
    extra = {} if valid is None else {"valid": valid}
    model = compiling.compile_rasp_to_model(
        program,
        vocab=vocab,
        max_seq_len=max_len,
        compiler_bos="BOS",
        measure_circuit=False,
        **extra,
    )
    inputs = _inputs(vocab, max_len, valid)
    outputs = model(inputs)
    bad = [(x, program(x), got) for x, got in zip(inputs, outputs) if not _close(program(x), got)]
    assert not bad, bad[:3]
    assert model.vocab == tuple(sorted(vocab))  # a set becomes a sorted, reproducible vocabulary


@pytest.mark.parametrize("name", [n for n, p in PORTS.items() if p[4]])
def test_ported_causal_programs_compile_as_decoders(name):
    build, vocab, max_len, valid, _ = PORTS[name]
    program = build()
    model = compiling.compile_rasp_to_model(
        program, vocab=vocab, max_seq_len=max_len, causal=True, measure_circuit=False
    )
    assert model.cfg.attention == "causal"
    inputs = _inputs(vocab, max_len, valid)
    assert all(_close(program(x), got) for x, got in zip(inputs, model(inputs)))


def test_tracr_style_outputs_match_tracrs_documented_examples():
    """The examples in Tracr's lib docstrings, evaluated here."""
    assert make_length()("abcdefg") == [7] * 7
    assert make_hist()("abac") == [2, 1, 2, 1]
    assert make_reverse(rasp.tokens)("Hello") == list("olleH")
    assert make_frac_prevs(rasp.tokens == "l")("hello") == pytest.approx(
        [0, 0, 1 / 3, 1 / 2, 2 / 5]
    )
    assert make_pair_balance(rasp.tokens, "(", ")")("a()b(c))") == pytest.approx(
        [0, 1 / 2, 0, 0, 1 / 5, 1 / 6, 0, -1 / 8]
    )
    assert make_sort_unique(rasp.tokens, rasp.tokens)([2, 4, 3, 1]) == [1, 2, 3, 4]


def test_shorthand_labels_are_readable():
    n = make_length().named("n_for_the_label_test")
    gap = n - rasp.indices
    assert gap.label == "n_for_the_label_test - indices"
    assert (gap - 1).label == "(n_for_the_label_test - indices) - 1"
    again = n - rasp.indices  # same text, another expression: labels stay unique
    assert again.label == "n_for_the_label_test - indices #2"


def _close(want, got, tol=1e-4):
    if len(want) != len(got):
        return False
    for a, b in zip(want, got):
        if isinstance(a, float) or isinstance(b, float):
            if a is None or b is None or abs(float(a) - float(b)) > tol:
                return False
        elif a != b:
            return False
    return True
