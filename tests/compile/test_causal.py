"""Causal compilation: decoders for the programs whose selects never look forward."""

from __future__ import annotations

import pytest

from interplab.compile import compile_program, rasp
from interplab.compile.causality import is_causal
from interplab.compile.programs import CAUSAL_PROGRAMS, LIBRARY
from interplab.compile.rasp import Aggregate, Comparison, Map, Select, SequenceMap, indices, tokens
from interplab.errors import CompileError
from tests.compile.cases import compiled

BASE = [n for n in LIBRARY if not n.startswith("causal-")]


@pytest.mark.parametrize("name", BASE)
def test_exactly_the_listed_programs_are_causal(name):
    """The value-set proof and the search over inputs decide it; the library list must match."""
    spec = LIBRARY[name]
    assert is_causal(spec.program(), spec.vocab, spec.max_len, spec.valid) == (
        name in CAUSAL_PROGRAMS
    )


@pytest.mark.parametrize("name", CAUSAL_PROGRAMS)
def test_causal_variants_are_decoders_with_their_own_name(name):
    spec = LIBRARY[f"causal-{name}"]
    assert spec.causal and spec.name == f"causal-{name}" and spec.vocab == LIBRARY[name].vocab


def test_causal_model_masks_later_positions_and_keeps_the_truth():
    model = compiled("causal-shift_by")
    assert model.cfg.attention == "causal" and model.ground_truth.notes["attention"] == "causal"
    assert model.name == "causal-shift_by"
    assert model(list("abcab")) == [None, None, "a", "b", "c"]
    # a causal model's outputs at a position never depend on later tokens
    a, b = model(list("abcab")), model(list("abccc"))
    assert a[:3] == b[:3]
    assert model.ground_truth.designed.edges == compiled("shift_by").ground_truth.designed.edges


def test_forward_looking_select_is_rejected_naming_it_and_a_witness():
    later = Select(indices, indices, lambda k, q: k == q + 1, name="look_ahead")
    program = Aggregate(later, tokens, name="next_token_ish")
    with pytest.raises(CompileError) as info:
        compile_program(program, ["a", "b"], 4, causal=True, measure_circuit=False)
    msg = str(info.value)
    assert "next_token_ish (aggregate)" in msg and "'look_ahead'" in msg
    assert "query position 0 selects key position 1" in msg and "causally" in msg
    # the same program compiles as an encoder
    assert compile_program(program, ["a", "b"], 4, measure_circuit=False)(["a", "b"]) == ["b", None]


def test_every_forward_select_is_listed_at_once():
    hist = rasp.SelectorWidth(Select(tokens, tokens, Comparison.EQ, name="same"), name="hist_all")
    ahead = Aggregate(
        Select(indices, indices, lambda k, q: k == q + 1, name="ahead_sel"), tokens, name="ahead"
    )
    program = SequenceMap(lambda h, t: (h, t), hist, ahead, name="both")
    with pytest.raises(CompileError, match=r"2 select\(s\) can look forward") as info:
        compile_program(program, ["a", "b"], 3, causal=True, measure_circuit=False)
    assert "hist_all" in str(info.value) and "ahead" in str(info.value)


def _unprovable_but_causal():
    """Keys equal the index on every input, but only correlation shows it: value sets alone
    allow key 0 at a later position."""
    same = SequenceMap(lambda a, b: a == b, tokens, tokens, name="always_true")
    keys = SequenceMap(lambda s, i: i if s else 0, same, indices, name="index_again")
    return Aggregate(
        Select(keys, indices, Comparison.LEQ, name="upto"),
        rasp.numerical(Map(lambda t: 1 if t == "a" else 0, tokens, name="is_a")),
        name="frac_a",
    ).named("frac_a")


def test_a_select_the_value_sets_cannot_prove_is_accepted_after_checking_every_input():
    program = rasp.numerical(_unprovable_but_causal())
    model = compile_program(program, ["a", "b"], 4, causal=True, measure_circuit=False)
    assert model(list("abab")) == pytest.approx([1.0, 0.5, 2 / 3, 0.5])


def test_on_too_many_inputs_an_unproved_select_is_rejected_with_the_reason(monkeypatch):
    from interplab.compile import compilability

    monkeypatch.setattr(compilability, "MAX_ENUMERATED_INPUTS", 10)
    program = rasp.numerical(_unprovable_but_causal())
    with pytest.raises(CompileError, match="may look forward: query position 0 .* too many"):
        compile_program(program, ["a", "b"], 4, causal=True, measure_circuit=False)


def test_cli_compiles_causal_and_rejects_forward_programs():
    from typer.testing import CliRunner

    from interplab.cli.main import app

    ok = CliRunner().invoke(app, ["compile", "frac_prevs", "--causal", "--check", "--json", "-"])
    assert ok.exit_code == 0, ok.output
    assert '"program": "causal-frac_prevs"' in ok.stdout and '"agreement": 1.0' in ok.stdout
    bad = CliRunner().invoke(app, ["compile", "hist", "--causal"])
    assert bad.exit_code != 0 and "hist_select_same" in bad.stderr and "Traceback" not in bad.stderr


def test_zoo_and_circuits_track_name_the_causal_organisms_once():
    from interplab.bench.tracks import circuits
    from interplab.zoo.registry import entry

    for name in CAUSAL_PROGRAMS:
        assert entry(f"compiled-causal-{name}").kind == "compiled"
    causal = [o for o in circuits.ORGANISMS if o.startswith("compiled-causal-")]
    assert causal and len(set(circuits.ORGANISMS)) == len(circuits.ORGANISMS)
    assert set(causal) <= set(circuits.SUITES["full"]["organisms"])
