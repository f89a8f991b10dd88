from __future__ import annotations

import pytest

from interplab.compile import compile_program, rasp
from interplab.compile.rasp import Aggregate, Comparison, Map, Select, SequenceMap, numerical
from interplab.errors import CompileError


def test_unsupported_program_lists_every_offender():
    t = rasp.tokens
    num = numerical(Map(lambda x: x, rasp.indices, name="num_index"))
    # 1. numerical mean Aggregate over a selector that is not one attention pattern (Or of
    #    selects on different SOps)
    bad_sel = Select(t, t, Comparison.EQ, name="sel_tok") | Select(
        rasp.indices, rasp.indices, Comparison.LT, name="sel_idx"
    )
    mean_bad = numerical(Aggregate(bad_sel, num, name="bad_mean"))
    # 2. numerical Aggregate of a categorical SOp
    cat_mean = numerical(Aggregate(Select(t, t, Comparison.EQ, name="s2"), t, name="mean_of_cat"))
    # 3. unbounded value set: a categorical SOp with too many values
    huge = SequenceMap(
        lambda a, b: a * 1000 + b,
        Map(lambda i: i, rasp.indices, name="i1"),
        Map(lambda i: i * 7, rasp.indices, name="i2"),
        name="huge",
    )
    wide = SequenceMap(lambda a, b: (a, b), huge, huge, name="unbounded")
    # 4. SequenceMap with a numerical input
    seq_num = SequenceMap(lambda a, b: a, num, t, name="seq_of_numerical")
    # 5. a Map that raises on a reachable value
    raises = Map(lambda x: 1 // (x - 2), rasp.indices, name="divides_by_zero")
    total = SequenceMap(
        lambda *a: 0,
        SequenceMap(
            lambda a, b: 0,
            Map(lambda x: 0, mean_bad, name="m1"),
            Map(lambda x: 0, cat_mean, name="m2"),
            name="p1",
        ),
        SequenceMap(
            lambda a, b: 0, wide, SequenceMap(lambda a, b: 0, seq_num, raises, name="p3"), name="p2"
        ),
        name="everything",
    )
    with pytest.raises(CompileError) as info:
        compile_program(total, ["a", "b"], max_len=40)
    msg = str(info.value)
    for label in ("bad_mean", "mean_of_cat", "unbounded", "seq_of_numerical", "divides_by_zero"):
        assert label in msg, f"{label} missing from:\n{msg}"
    assert "unbounded value set" in msg and "different keys/queries" in msg
    assert msg.count("\n  - ") >= 5


def test_duplicate_labels_and_selector_output_are_reported():
    a = Map(lambda x: x, rasp.tokens, name="same")
    b = Map(lambda x: x, a, name="same")
    with pytest.raises(CompileError, match="share this label"):
        compile_program(b, ["a"], 3)
    with pytest.raises(CompileError, match="must be an SOp"):
        compile_program(Select(rasp.tokens, rasp.tokens, Comparison.EQ), ["a"], 3)  # type: ignore


def test_numerical_linear_map_must_stay_numerical():
    num = numerical(Map(lambda t: 1, rasp.tokens, name="n"))
    lin = rasp.categorical(rasp.LinearSequenceMap(num, num, 1, 1, name="lin"))
    with pytest.raises(CompileError, match="lin .*must stay numerical"):
        compile_program(lin, ["a"], 3)


# ------------------------------------- categorical Aggregates must select one value


def _earlier_token():
    """Selects every earlier key: ambiguous as soon as two earlier tokens differ."""
    return Aggregate(
        Select(rasp.indices, rasp.indices, Comparison.LT, name="earlier"),
        rasp.tokens,
        name="some_earlier",
    )


def test_ambiguous_categorical_aggregate_is_rejected_with_an_example():
    with pytest.raises(CompileError) as info:
        compile_program(_earlier_token(), [0, 1, 2], max_len=4, pairs=[])
    msg = str(info.value)
    assert "some_earlier (aggregate): categorical Aggregate is ambiguous" in msg
    assert "on input [0, 1, 0], query position 2 selects keys [0, 1]" in msg
    assert "valid=" in msg and "numerical(Aggregate" in msg and "enumerating" in msg
    # the example really is one where the evaluator has no answer
    with pytest.raises(rasp.EvaluationError):
        rasp.evaluate(_earlier_token(), [0, 1, 0])


def test_ambiguity_is_sampled_when_the_input_space_is_large():
    with pytest.raises(CompileError, match=r"some_earlier .*seeded random sample.*too many"):
        compile_program(_earlier_token(), list(range(10)), max_len=8, pairs=[])


def test_ambiguity_is_reported_with_every_other_problem():
    two = SequenceMap(
        lambda a, b: (a, b),
        _earlier_token(),
        Aggregate(
            Select(rasp.tokens, rasp.tokens, Comparison.LT, name="smaller"),
            rasp.indices,
            name="some_smaller",
        ),
        name="pair",
    )
    bad = SequenceMap(
        lambda a, b: a, two, Map(lambda t: [t], rasp.tokens, name="listify"), name="everything"
    )
    with pytest.raises(CompileError) as info:
        compile_program(bad, [0, 1, 2], max_len=4, pairs=[])
    msg = str(info.value)
    for label in ("some_earlier (aggregate)", "some_smaller (aggregate)", "listify (map)"):
        assert label in msg, msg


def test_valid_restricts_the_ambiguity_check():
    # Only defined on inputs whose tokens are all equal: then every earlier key agrees.
    model = compile_program(
        _earlier_token(), [0, 1, 2], max_len=4, pairs=[], valid=lambda xs: len(set(xs)) == 1
    )
    assert model.ground_truth.output == "some_earlier"


def test_library_programs_pass_their_validity_rule():
    from interplab.compile.programs import get_program

    spec = get_program("induction")  # ambiguous when a token occurs three times
    with pytest.raises(CompileError, match=r"induction \(aggregate\).*ambiguous"):
        compile_program(spec.program(), spec.vocab, spec.max_len, pairs=[])
    assert spec.compile(pairs=[]).ground_truth.output == "induction"


@pytest.mark.parametrize(
    "builder, vocab, length",
    [
        ("siit_sort_unique", tuple(range(6)), 4),
        ("siit_hist", tuple(range(4)), 5),
        ("siit_sum_prev", tuple(range(3)), 5),
        ("siit_shift_by_1", tuple(range(4)), 5),
        ("siit_shift_by_2", tuple(range(4)), 5),
        ("siit_first_token", tuple(range(4)), 5),
        ("siit_detect_pattern", tuple(range(4)), 5),
    ],
)
def test_siit_programs_compile_without_a_validity_rule(builder, vocab, length):
    from interplab.compile import programs

    compile_program(getattr(programs, builder)(), list(vocab), length, pairs=[])


def test_provably_functional_aggregates_are_accepted_unchecked():
    from interplab.compile.compilability import _provably_functional
    from interplab.compile.graph import program_to_graph
    from interplab.compile.residual_basis import graph_to_value_sets

    same = Aggregate(
        Select(rasp.tokens, rasp.tokens, Comparison.EQ, name="same"), rasp.tokens, name="same_token"
    )
    prev = Aggregate(
        Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1, name="prev_sel"),
        rasp.tokens,
        name="prev",
    )
    earlier = _earlier_token()
    for program, expected in ((same, True), (prev, True), (earlier, False)):
        graph = program_to_graph(program)
        sets = graph_to_value_sets(graph, ["a", "b"], 6)
        assert _provably_functional(program, sets, 6) is expected, program.label
    # a huge input space is no problem for provably functional aggregates
    compile_program(prev, list(range(20)), 12, pairs=[])


@pytest.mark.parametrize(
    "f, kind, fix",
    [
        (lambda t: [t], "list", "a tuple"),
        (lambda t: {t: 1}, "dict", "a tuple of \\(key, value\\) pairs"),
        (lambda t: {t}, "set", "a frozenset"),
    ],
)
def test_unhashable_map_values_are_a_compile_error(f, kind, fix):
    m = Map(f, rasp.tokens, name="boxed")
    reader = Map(lambda x: x, m, name="reader")
    with pytest.raises(
        CompileError, match=rf"boxed \(map\): .*hashable.*a {kind}.*return {fix}"
    ) as info:
        compile_program(reader, ["a", "b"], max_len=3, pairs=[])
    assert "1 unsupported construct" in str(info.value)  # its reader is not blamed again
