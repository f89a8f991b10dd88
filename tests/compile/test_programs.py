from __future__ import annotations

import pytest

from interplab.compile import LIBRARY, get_program, rasp
from interplab.errors import UnknownNameError
from tests.compile.cases import IDS


@pytest.mark.parametrize("name", IDS)
def test_task_pairs_share_length_are_valid_and_mostly_differ(name):
    spec = LIBRARY[name]
    pairs = spec.task_pairs(32, seed=1)
    assert len(pairs) == 32
    program = spec.program()
    differ = 0
    for clean, corrupt in pairs:
        assert len(clean) == len(corrupt) and spec.valid(clean) and spec.valid(corrupt)
        assert set(clean) | set(corrupt) <= set(spec.vocab)
        differ += rasp.evaluate(program, clean) != rasp.evaluate(program, corrupt)
    if name != "length":  # length's output cannot differ between inputs of one length
        assert differ >= 16, f"only {differ}/32 corrupted inputs change the output"
    assert spec.task_pairs(32, seed=1) == pairs  # seeded


def test_inputs_enumerate_or_sample_deterministically():
    spec = get_program("reverse")
    assert len(spec.inputs()) == 3 + 9 + 27 + 81 + 243
    shuffle = get_program("shuffle_dyck2")
    assert len(shuffle.inputs(limit=100)) == 100 and shuffle.inputs(limit=100) == shuffle.inputs(
        limit=100
    )
    assert all(len(set(x)) == len(x) for x in get_program("sort_unique").inputs())


def test_unknown_program_lists_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'sort'"):
        get_program("sortt")


def test_library_covers_the_issue_list():
    wanted = {
        "length",
        "reverse",
        "hist",
        "sort_unique",
        "sort",
        "sort_freq",
        "frac_prevs",
        "pair_balance",
        "shuffle_dyck",
        "shuffle_dyck2",
        "shift_by",
        "detect_pattern",
        "count_less_freq",
        "nary_arith",
        "induction",
        "mod_sum",
        "max_so_far",
        "min_so_far",
    }
    assert wanted <= set(LIBRARY)
    for spec in LIBRARY.values():
        assert spec.description and spec.vocab and spec.max_len >= 1


def test_sum_prev_adds_the_previous_token_mod_3():
    spec = get_program("sum_prev")
    assert spec.vocab == (0, 1, 2) and spec.max_len == 5
    program = spec.program()
    # (1+0, 2+1, 2+2, 1+2) mod 3; nothing before the first token
    assert rasp.evaluate(program, [0, 1, 2, 2, 1]) == [None, 1, 0, 1, 0]
    labels = {e.label for e in rasp.walk(program)}
    assert {"prev", "sum_prev"} <= labels  # the SIIT twin aligns these labels
