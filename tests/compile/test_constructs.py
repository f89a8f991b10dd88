"""Every construct of the language, compiled alone and checked on every input (a case table)."""

from __future__ import annotations

import itertools

import pytest

from interplab.compile import compile_program
from interplab.compile.agreement import check_agreement
from interplab.compile.rasp import (
    Aggregate,
    Full,
    LinearSequenceMap,
    Map,
    Select,
    SelectorWidth,
    SequenceMap,
    categorical,
    indices,
    numerical,
    tokens,
)
from interplab.compile.rasp import (
    Comparison as C,
)

VOCAB = (0, 1, 2)


def _frac_ones():
    ones = numerical(Map(lambda t: 1 if t == 1 else 0, tokens, name="is_one"))
    return numerical(Aggregate(Select(indices, indices, C.LEQ, name="prev"), ones, name="frac"))


CONSTRUCTS = {
    "identity": lambda: tokens,
    "indices": lambda: indices,
    "constant": lambda: Full(7, name="seven"),
    "numerical_constant": lambda: numerical(Full(0.5, name="half")),
    "categorical_map": lambda: Map(lambda t: t * 2, tokens, name="double"),
    "map_to_numerical": lambda: numerical(Map(lambda t: t / 2, tokens, name="halve")),
    "sequence_map_same_input": lambda: SequenceMap(lambda a, b: a * b, tokens, tokens, name="sq"),
    "categorical_linear_sequence_map": lambda: categorical(
        LinearSequenceMap(tokens, indices, 2, -1, name="lin")
    ),
    "numerical_linear_sequence_map": lambda: LinearSequenceMap(
        _frac_ones(), numerical(Map(lambda t: t, tokens, name="tnum")), 0.5, 2.0, name="nlin"
    ),
    "numerical_to_categorical_map": lambda: Map(lambda x: x > 0.5, _frac_ones(), name="majority"),
    "numerical_to_numerical_map": lambda: numerical(
        Map(lambda x: x * x, _frac_ones(), name="sq_frac")
    ),
    "numerical_selector_width": lambda: numerical(
        SelectorWidth(Select(tokens, tokens, C.LT, name="smaller"), name="n_smaller")
    ),
    **{
        f"select_{cmp.value}": (
            lambda cmp=cmp: SelectorWidth(Select(tokens, tokens, cmp, name="s"), name="width")
        )
        for cmp in C
    },
    "selector_or_same_sops": lambda: SelectorWidth(
        Select(tokens, tokens, C.LT, name="lt") | Select(tokens, tokens, C.EQ, name="eq"), name="w"
    ),
    "selector_not": lambda: SelectorWidth(~Select(tokens, tokens, C.EQ, name="eq"), name="w"),
    "selector_and_different_sops": lambda: SelectorWidth(
        Select(tokens, tokens, C.EQ, name="eq") & Select(indices, indices, C.LT, name="before"),
        name="earlier_same",
    ),
    "aggregate_default_none": lambda: Aggregate(
        Select(indices, indices, lambda k, q: k == q + 1, name="next"), tokens, name="next_token"
    ),
    "numerical_aggregate_empty_is_zero": lambda: numerical(
        Aggregate(
            Select(tokens, tokens, lambda k, q: k > q, name="bigger"),
            numerical(Map(lambda t: t + 1, tokens, name="t1")),
            name="mean_bigger",
        )
    ),
    "aggregate_then_map_of_none": lambda: Map(
        lambda t: t + 10,
        Aggregate(
            Select(indices, indices, lambda k, q: k == q - 1, name="prev1"), tokens, name="prev_tok"
        ),
        name="shifted_plus",
    ),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_construct_compiles_exactly(name):
    program = CONSTRUCTS[name]()
    model = compile_program(program, VOCAB, max_len=4, pairs=[])
    inputs = [list(x) for n in range(1, 5) for x in itertools.product(VOCAB, repeat=n)]
    report = check_agreement(model, program, inputs)
    assert report.agreement == 1.0, report.mismatches
