from __future__ import annotations

import pytest

from interplab.compile import rasp
from interplab.compile.programs import make_frac_prevs, make_hist, make_length, make_reverse
from interplab.compile.rasp import Aggregate, Comparison, Map, Select, SelectorNot, numerical


def test_reverse_and_length_evaluate():
    assert rasp.evaluate(make_reverse(), list("abc")) == list("cba")
    assert rasp.evaluate(make_length(), list("abcd")) == [4] * 4
    assert rasp.evaluate(make_hist(), list("abca")) == [2, 1, 1, 2]


def test_frac_prevs_is_numerical_mean():
    prog = make_frac_prevs(numerical(Map(lambda t: 1 if t == "x" else 0, rasp.tokens, name="is_x")))
    assert prog.is_numerical
    assert rasp.evaluate(prog, list("xax")) == [1.0, 0.5, pytest.approx(2 / 3)]


def test_every_expression_has_a_readable_label():
    m = Map(lambda x: x, rasp.tokens)
    assert m.label.startswith("map_")
    assert m.named("double").label == "double"
    assert rasp.tokens.label == "tokens" and rasp.indices.label == "indices"
    labels = {e.label for e in rasp.walk(make_reverse())}
    assert {"length", "opp_index", "reverse_select", "reverse", "tokens", "indices"} <= labels


@pytest.mark.parametrize(
    "cmp,key,query,expected",
    [
        (Comparison.EQ, 1, 1, True),
        (Comparison.LT, 1, 2, True),
        (Comparison.LEQ, 2, 2, True),
        (Comparison.GT, 1, 2, False),
        (Comparison.GEQ, 3, 2, True),
        (Comparison.NEQ, 1, 1, False),
        (Comparison.TRUE, 0, 5, True),
        (Comparison.FALSE, 0, 0, False),
        (Comparison.TRUE, None, 1, False),
    ],
)
def test_comparisons_read_key_then_query(cmp, key, query, expected):
    assert cmp(key, query) is expected


def test_missing_values_propagate():
    shifted = Aggregate(Select(rasp.indices, rasp.indices, lambda k, q: q == k + 1), rasp.tokens)
    assert rasp.evaluate(shifted, list("ab")) == [None, "a"]
    assert rasp.evaluate(Map(lambda t: t.upper(), shifted), list("ab")) == [None, "A"]
    # Not never selects a missing key, as in a compiled model
    not_sel = SelectorNot(Select(shifted, rasp.tokens, Comparison.EQ))
    assert rasp.evaluate_all(rasp.SelectorWidth(not_sel, name="w"), list("ab"))["w"] == [0, 1]


def test_ambiguous_categorical_aggregate_is_an_error():
    agg = Aggregate(Select(rasp.tokens, rasp.tokens, Comparison.TRUE), rasp.tokens, name="mix")
    with pytest.raises(rasp.EvaluationError, match="mix"):
        rasp.evaluate(agg, list("ab"))


def test_library_labels_are_all_given_names():
    from interplab.compile.programs import LIBRARY

    for name, spec in LIBRARY.items():
        unnamed = [
            e.label
            for e in rasp.walk(spec.program())
            if e.name is None and not isinstance(e, (rasp.TokensType, rasp.IndicesType))
        ]
        assert not unnamed, (name, unnamed)


_EQ_SEL = lambda: Select(rasp.tokens, rasp.tokens, Comparison.EQ)  # noqa: E731


@pytest.mark.parametrize(
    "build, fragments",
    [
        (lambda: Map(lambda x: x, 3), ["Map", "inner must be an SOp", "got int 3", "Full(3)"]),
        (lambda: Aggregate(_EQ_SEL(), "x"), ["Aggregate", "sop must be an SOp", "got str 'x'"]),
        (
            lambda: Select(rasp.tokens, 5, Comparison.EQ),
            ["Select", "queries must be an SOp", "got int 5"],
        ),
        (
            lambda: Select(rasp.tokens, rasp.tokens, "EQ"),
            ["predicate must be a Comparison", "use Comparison.EQ"],
        ),
        (
            lambda: Aggregate(rasp.tokens, rasp.tokens),
            ["selector must be a Selector", "got TokensType 'tokens'"],
        ),
        (
            lambda: Aggregate(_EQ_SEL(), _EQ_SEL()),
            ["sop must be an SOp", "Aggregate or SelectorWidth"],
        ),
        (lambda: Map(rasp.tokens, lambda x: x), ["f must be a function", "inner must be an SOp"]),
        (lambda: rasp.SequenceMap(lambda a, b: a, rasp.tokens, [1, 2]), ["right must be an SOp"]),
        (lambda: rasp.SelectorWidth(rasp.tokens), ["SelectorWidth", "selector must be a Selector"]),
        (lambda: _EQ_SEL() & rasp.indices, ["SelectorAnd", "right must be a Selector"]),
        (lambda: rasp.LinearSequenceMap(rasp.tokens, rasp.indices, "2", 1), ["a must be a number"]),
    ],
)
def test_constructors_reject_wrong_arguments(build, fragments):
    with pytest.raises(rasp.ProgramError) as info:
        build()
    assert isinstance(info.value, TypeError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_named_copies_and_encodings_still_construct():
    m = Map(lambda x: x, rasp.tokens).named("m")
    assert numerical(m).is_numerical and rasp.categorical(numerical(m)).label == "m"
