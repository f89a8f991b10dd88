"""The program generator: seeded, bounded, every accepted program compiled and checked."""

from __future__ import annotations

import pytest

from interplab.compile import rasp
from interplab.compile.agreement import check_agreement
from interplab.compile.generate import (
    CONSTRUCTS,
    Grammar,
    Rejections,
    checked_inputs,
    draw,
    generate,
    task_pairs,
)
from interplab.errors import ConfigError


@pytest.fixture(scope="module")
def accepted():
    rejections = Rejections()
    return list(generate(4, seed=3, rejections=rejections)), rejections


def test_candidates_depend_only_on_seed_and_index():
    a, b = draw(5, 11), draw(5, 11)
    xs, _ = checked_inputs(a.vocab, a.max_len)
    assert (a.vocab, a.max_len, a.depth, a.constructs) == (
        b.vocab,
        b.max_len,
        b.depth,
        b.constructs,
    )
    assert [rasp.evaluate(a.program, list(x)) for x in xs[:50]] == [
        rasp.evaluate(b.program, list(x)) for x in xs[:50]
    ]
    assert draw(5, 12).program.label == "v" + draw(5, 12).program.label[1:]  # names v<k>


def test_shapes_stay_within_the_grammar_and_cover_every_construct():
    grammar = Grammar(max_depth=3, max_ops=4)
    seen = set()
    for j in range(300):
        c = draw(0, j, grammar)
        assert 0 <= c.depth <= grammar.max_depth and c.n_ops <= grammar.max_ops
        assert c.width <= c.n_ops
        seen |= set(c.constructs)
    comparisons = {f"select_{p}" for p in ("EQ", "LT", "LEQ", "GT", "GEQ", "NEQ", "TRUE")}
    assert comparisons <= seen
    assert {
        "map",
        "numerical_map",
        "sequence_map",
        "aggregate",
        "numerical_aggregate",
        "selector_width",
        "selector_and",
        "selector_or",
    } <= seen
    assert set(CONSTRUCTS) >= {"linear_sequence_map"}


def test_every_accepted_program_agrees_with_the_evaluator_on_every_input(accepted):
    programs, rejections = accepted
    assert [p.name for p, _ in programs] == [f"generated-3-{i}" for i in range(4)]
    for spec, model in programs:
        inputs, exhaustive = checked_inputs(spec.vocab, spec.max_len)
        assert exhaustive and spec.checked == len(inputs)
        result = check_agreement(model, spec.program(), inputs)  # the library's own check
        assert result.agreement == 1.0, (spec.name, result.mismatches)
    assert rejections.disagree == 0


def test_accepted_programs_differ_in_behaviour(accepted):
    programs, _ = accepted
    assert len({p.behaviour for p, _ in programs}) == len(programs)
    # and really: some input tells every two apart (same vocab and length)
    for i, (a, _) in enumerate(programs):
        for b, _ in programs[i + 1 :]:
            if (a.vocab, a.max_len) == (b.vocab, b.max_len):
                xs, _ = checked_inputs(a.vocab, a.max_len)
                assert any(
                    rasp.evaluate(a.program(), list(x)) != rasp.evaluate(b.program(), list(x))
                    for x in xs
                )


def test_task_pairs_have_equal_lengths_and_different_outputs(accepted):
    spec, _ = accepted[0][0]
    pairs = spec.task_pairs(40, seed=1, length=spec.max_len)
    assert len(pairs) == 40
    for clean, corrupt in pairs:
        assert len(clean) == len(corrupt) == spec.max_len
        assert rasp.evaluate(spec.program(), clean) != rasp.evaluate(spec.program(), corrupt)
    assert pairs == spec.task_pairs(40, seed=1, length=spec.max_len)
    assert pairs != spec.task_pairs(40, seed=2, length=spec.max_len)


def test_task_pairs_stay_within_the_allowed_inputs(accepted):
    spec, _ = accepted[0][0]
    xs, _ = checked_inputs(spec.vocab, spec.max_len)
    allowed = {x for x in xs if len(x) == spec.max_len and x[0] == spec.vocab[0]}
    try:
        pairs = spec.task_pairs(20, seed=0, length=spec.max_len, within=allowed)
    except ConfigError:
        pytest.skip("the output does not vary inside this subset")
    assert all(tuple(c) in allowed and tuple(x) in allowed for c, x in pairs)


def test_a_constant_program_has_no_task_pairs():
    program = rasp.Map(lambda t: 1, rasp.tokens, name="one")
    with pytest.raises(ConfigError, match="same on every"):
        task_pairs(program, (0, 1), 3, 4)


def test_bad_grammar_is_a_config_error():
    with pytest.raises(ConfigError, match="max_depth"):
        Grammar(max_depth=0)
    with pytest.raises(ConfigError, match="min_ops"):
        Grammar(min_ops=5, max_ops=2)
