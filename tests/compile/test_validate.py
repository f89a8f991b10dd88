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
    bad_sel = Select(t, t, Comparison.EQ, name="sel_tok") | Select(rasp.indices, rasp.indices,
                                                                  Comparison.LT, name="sel_idx")
    mean_bad = numerical(Aggregate(bad_sel, num, name="bad_mean"))
    # 2. numerical Aggregate of a categorical SOp
    cat_mean = numerical(Aggregate(Select(t, t, Comparison.EQ, name="s2"), t, name="mean_of_cat"))
    # 3. unbounded value set: a categorical SOp with too many values
    huge = SequenceMap(lambda a, b: a * 1000 + b, Map(lambda i: i, rasp.indices, name="i1"),
                       Map(lambda i: i * 7, rasp.indices, name="i2"), name="huge")
    wide = SequenceMap(lambda a, b: (a, b), huge, huge, name="unbounded")
    # 4. SequenceMap with a numerical input
    seq_num = SequenceMap(lambda a, b: a, num, t, name="seq_of_numerical")
    # 5. a Map that raises on a reachable value
    raises = Map(lambda x: 1 // (x - 2), rasp.indices, name="divides_by_zero")
    total = SequenceMap(lambda *a: 0, SequenceMap(lambda a, b: 0, Map(lambda x: 0, mean_bad, name="m1"),
                                                   Map(lambda x: 0, cat_mean, name="m2"), name="p1"),
                        SequenceMap(lambda a, b: 0, wide, SequenceMap(lambda a, b: 0, seq_num, raises,
                                                                      name="p3"), name="p2"),
                        name="everything")
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
