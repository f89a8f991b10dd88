"""Operator shorthand on s-ops, constructor checks, and Aggregate defaults."""

from __future__ import annotations

import pytest

from interplab.compile import compile_program, derive_circuit, measure_circuit, rasp
from interplab.compile.rasp import (
    Aggregate,
    Comparison,
    LinearSequenceMap,
    Map,
    ProgramError,
    Select,
    SelectorWidth,
    SequenceMap,
    indices,
    numerical,
    tokens,
)

XS = ["a", "x", "b", "x"]


@pytest.mark.parametrize(
    "short,long",
    [
        (lambda: tokens == "x", lambda: Map(lambda t: t == "x", tokens)),
        (lambda: tokens != "x", lambda: Map(lambda t: t != "x", tokens)),
        (lambda: indices < 2, lambda: Map(lambda i: i < 2, indices)),
        (lambda: 2 <= indices, lambda: Map(lambda i: i >= 2, indices)),
        (lambda: indices * 2, lambda: Map(lambda i: i * 2, indices)),
        (lambda: 10 - indices, lambda: Map(lambda i: 10 - i, indices)),
        (lambda: indices % 2, lambda: Map(lambda i: i % 2, indices)),
        (lambda: -indices, lambda: Map(lambda i: -i, indices)),
        (lambda: indices + indices, lambda: SequenceMap(lambda a, b: a + b, indices, indices)),
        (
            lambda: (tokens == "x") & (indices > 1),
            lambda: SequenceMap(
                lambda a, b: a and b, Map(lambda t: t == "x", tokens), Map(lambda i: i > 1, indices)
            ),
        ),
        (lambda: ~(tokens == "x"), lambda: Map(lambda v: not v, Map(lambda t: t == "x", tokens))),
    ],
)
def test_shorthand_builds_the_long_form(short, long):
    s, lf = short(), long()
    assert type(s) is type(lf) and s.encoding is lf.encoding
    assert rasp.evaluate(s, XS) == rasp.evaluate(lf, XS)


def test_length_minus_indices_minus_one_compiles_like_the_long_form():
    length = SelectorWidth(Select(tokens, tokens, Comparison.TRUE, name="all"), name="n")
    opp = length - indices - 1
    program = Aggregate(Select(indices, opp, Comparison.EQ, name="flip"), tokens, name="rev")
    model = compile_program(program, ["a", "b", "c"], 4, measure_circuit=False)
    assert model(list("abca")) == list("acba")
    assert isinstance(opp, Map) and isinstance(opp.inner, SequenceMap)


def test_numerical_plus_and_minus_are_linear():
    a = numerical(Map(lambda t: 1 if t == "x" else 0, tokens, name="ax"))
    b = numerical(Map(lambda i: i, indices, name="bi"))
    assert isinstance(a - b, LinearSequenceMap) and (a - b).is_numerical
    assert rasp.evaluate(a - b, XS) == [0, 0, -2, -2]


def test_an_sop_has_no_truth_value():
    with pytest.raises(ProgramError, match="no truth value"):
        if tokens == "x":
            pass


@pytest.mark.parametrize(
    "build,match",
    [
        (
            lambda: Map(lambda t: t, 3),
            r"cannot build Map: inner must be an SOp .* got int 3 \(for a constant, use Full\(3\)\)",
        ),
        (lambda: Map(lambda t: t, "tokens"), r"inner must be an SOp .* got str 'tokens'"),
        (lambda: Map(tokens, tokens), r"f must be a function"),
        (
            lambda: Aggregate(tokens, tokens),
            r"selector must be a Selector .* got TokensType 'tokens'",
        ),
        (
            lambda: SelectorWidth(tokens == "x"),
            r"selector must be a Selector .* got Map \"tokens == 'x'",
        ),
        (lambda: Select(tokens, tokens, "EQ"), r"use Comparison.EQ"),
        (
            lambda: Select(tokens, tokens, Comparison.EQ) & (tokens == "x"),
            r"right must be a Selector",
        ),
        (
            lambda: (tokens == "x") & Select(tokens, tokens, Comparison.EQ, name="s"),
            r"'s' is a Selector",
        ),
        (
            lambda: numerical(
                Aggregate(Select(indices, indices, Comparison.LEQ), tokens, default="z")
            ),
            r"default must be a number",
        ),
        (
            lambda: Aggregate(Select(indices, indices, Comparison.LEQ), tokens, default=[1]),
            r"default must be a hashable value",
        ),
    ],
)
def test_constructors_say_what_they_expected(build, match):
    with pytest.raises(ProgramError, match=match):
        build()


def _shift_with_default():
    prev = Select(indices, indices, lambda k, q: q == k + 1, name="prev_sel")
    return Aggregate(prev, tokens, default="start", name="prev_or_start")


def test_categorical_default_compiles_and_is_read_where_nothing_is_selected():
    program = _shift_with_default()
    assert program(list("ab")) == ["start", "a"]
    model = compile_program(program, ["a", "b"], 4)
    assert model(list("abba")) == ["start", "a", "b", "b"]


def test_numerical_default_compiles():
    later = Select(indices, indices, lambda k, q: k == q + 1, name="next_sel")
    ones = numerical(Map(lambda t: 1 if t == "a" else 0, tokens, name="a_as_1"))
    program = numerical(Aggregate(later, ones, default=0.5, name="next_is_a"))
    model = compile_program(program, ["a", "b"], 3)
    assert model(list("aba")) == pytest.approx([0.0, 1.0, 0.5])


def test_default_truth_agrees_with_the_weights():
    """The BOS read that carries the default matters under zero ablation (a query selects
    nothing at position 0): derived in RASP, measured in the weights, on the same pairs."""
    from interplab.compile.compiler import random_pairs

    for causal in (False, True):
        model = compile_program(_shift_with_default(), ["a", "b"], 4, causal=causal)
        pairs = random_pairs(["a", "b"], 4, 48, seed=3)
        derived, measured = derive_circuit(model, pairs), measure_circuit(model, pairs)
        assert derived.edge_ablations == measured.edge_ablations
        assert any("zero" in f for f in derived.edge_ablations.values())


def test_numerical_aggregate_of_any_bounded_value_set():
    """Not only 0/1 (Tracr's restriction): the mean of values 0, 2 and 5 so far."""
    value = numerical(Map(lambda t: {"a": 0, "b": 2, "c": 5}[t], tokens, name="weight"))
    so_far = Select(indices, indices, Comparison.LEQ, name="so_far_sel")
    program = numerical(Aggregate(so_far, value, default=0, name="mean_so_far"))
    for causal in (False, True):
        model = compile_program(program, ["a", "b", "c"], 4, causal=causal, measure_circuit=False)
        assert model(list("cbac")) == pytest.approx([5.0, 3.5, 7 / 3, 3.0], abs=1e-4)
