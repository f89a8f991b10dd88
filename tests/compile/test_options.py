"""Library programs with options (vocab, max_len), and how a compiled model is called."""

from __future__ import annotations

import itertools

import pytest
import torch

from interplab.compile import get_program
from interplab.compile.agreement import check_agreement
from interplab.errors import ConfigError, ShapeError
from tests.compile.cases import compiled


@pytest.mark.parametrize(
    "name,vocab,max_len",
    [
        ("reverse", ("p", "q", "r", "s"), 6),
        ("sort", (1, 3, 5, 7), 6),
        ("max_so_far", (2, 4, 6), 4),
        ("frac_prevs", ("x", "y"), 7),
    ],
)
def test_compile_with_another_vocab_and_length_agrees_with_the_evaluator(name, vocab, max_len):
    spec = get_program(name)
    model = spec.compile(vocab=vocab, max_len=max_len, measure_circuit=False)
    assert model.vocab == vocab and model.max_len == max_len and model.cfg.n_ctx == max_len + 1
    inputs = spec.with_options(vocab=vocab, max_len=max_len).inputs(limit=1500, seed=0)
    assert max(map(len, inputs)) == max_len
    report = check_agreement(model, model.program, inputs)
    assert report.agreement == 1.0, report.mismatches


@pytest.mark.parametrize(
    "name,vocab,match",
    [
        ("frac_prevs", ("a", "b"), "needs a vocabulary that contains 'x'"),
        ("pair_balance", ("(", "a"), r"contains '\(', '\)'"),
        ("sort", ("a", "b"), "needs a vocabulary of numbers"),
        ("mod_sum", (0.5, 1.5), "needs a vocabulary of integers"),
        ("max_so_far", (1, "a"), "compare with <"),
        ("reverse", (), "vocabulary is empty"),
        ("reverse", ("a", "a"), "repeats a token"),
    ],
)
def test_a_vocabulary_the_program_cannot_use_is_one_clear_error(name, vocab, match):
    with pytest.raises(ConfigError, match=match) as info:
        get_program(name).compile(vocab=vocab)
    assert f"program {name!r}" in str(info.value)


def test_bad_max_len_is_a_config_error():
    with pytest.raises(ConfigError, match="max_len must be an int"):
        get_program("reverse").compile(max_len=0)


def test_options_keep_one_name_per_model():
    assert (
        get_program("shift_by").compile(causal=True, measure_circuit=False).name
        == "causal-shift_by"
    )
    assert get_program("causal-shift_by").with_options(causal=False).name == "shift_by"


def test_cli_vocab_and_max_len(capsys):
    import json

    from typer.testing import CliRunner

    from interplab.cli.main import app

    ok = CliRunner().invoke(
        app, ["compile", "sort", "--vocab", "2,4,8", "--max-len", "4", "--check", "--json", "-"]
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["agreement"] == 1.0 and data["inputs_checked"] == 3 + 9 + 27 + 81
    bad = CliRunner().invoke(app, ["compile", "frac_prevs", "--vocab", "a,b"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "contains 'x'" in bad.stderr
    empty = CliRunner().invoke(app, ["compile", "reverse", "--vocab", "a,,b"])
    assert empty.exit_code == 2 and "empty token" in empty.stderr


# ------------------------------------------------------------------------------- calls


def test_one_sequence_or_a_batch_of_mixed_lengths():
    model = compiled("reverse")
    assert model(["a", "b"]) == ["b", "a"]
    assert model([["a", "b"], ["c"], ["a", "b", "c"]]) == [["b", "a"], ["c"], ["c", "b", "a"]]
    assert model([("a", "b")]) == [["b", "a"]]
    assert model([]) == []


@pytest.mark.parametrize(
    "bad,match",
    [
        ("ab", r"a str, not a list \(for its characters as tokens pass list\('ab'\)\)"),
        (["BOS", "a"], "interplab adds BOS itself"),
        ([["a", "z"]], "'z' is not in the vocabulary"),
        (["a", ["b"]], "neither a vocabulary value nor a list of them"),
        (["ab", "c"], "a string is one token"),
        (torch.tensor([[1, 2]]), "model.run"),
        (5, "an int, not a list"),
    ],
)
def test_other_call_forms_show_the_accepted_ones(bad, match):
    model = compiled("reverse")
    with pytest.raises(ShapeError, match=match) as info:
        model(bad)
    assert "Accepted: one sequence of vocabulary values" in str(info.value)


def test_small_calls_run_on_one_thread_and_restore_the_setting():
    model = compiled("reverse")
    seen = []
    real_run = type(model).run

    def spy(self, tokens):
        seen.append(torch.get_num_threads())
        return real_run(self, tokens)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        type(model).run = spy
        model(["a", "b"])
        model.threads = 0  # leave torch's setting alone
        model(["a", "b"])
    finally:
        type(model).run = real_run
        model.threads = None
        restored = torch.get_num_threads()
        torch.set_num_threads(before)
    assert seen == [1, 2] and restored == 2


def test_every_input_of_a_length_is_grouped_once():
    model = compiled("hist")
    inputs = [list(x) for n in (1, 2, 3) for x in itertools.product("abc", repeat=n)]
    calls = []
    real = type(model).encode

    def spy(self, batch):
        calls.append(len(batch))
        return real(self, batch)

    type(model).encode = spy
    try:
        out = model(inputs[::-1])
    finally:
        type(model).encode = real
    assert sorted(calls) == [3, 9, 27] and out[::-1] == model(inputs)
