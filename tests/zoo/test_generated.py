"""Generated organisms: rebuilt identically by name, saved with their truth, and the truth the
zoo track scores against agrees with single-edge ablations measured in the weights under every
ablation, on the pairs it is derived on (every organism of the zoo suite in the slow run); a
program whose truth fails is dropped by the generator and counted."""

from __future__ import annotations

import json

import pytest

from interplab.compile import check_truth, derive_circuit, load_compiled, measure_circuit, rasp
from interplab.errors import UnknownNameError
from interplab.zoo.generated import accepted_candidates, load_generated, parse_name, write_generated

QUICK = [0, 1, 2]
#: the zoo suite's organisms (bench/tracks/zoo.py ORGANISMS: the first 210 of seed 0)
ZOO_COUNT = 210


def _zoo_truth(name: str):
    """The truth the zoo track scores against, on the pairs it derives it on (the generator's
    truth pairs: one function builds both)."""
    from interplab.compile.generate import scoring_and_truth_pairs
    from interplab.core.circuit import ABLATIONS

    org = load_generated(name)
    _, held = scoring_and_truth_pairs(org.spec, 0)
    derived = derive_circuit(org.model, held)  # from the RASP program, no weights
    return org, held, {a: derived.for_ablation(a) for a in ABLATIONS}


@pytest.mark.parametrize(
    "i", QUICK + [pytest.param(i, marks=pytest.mark.slow) for i in range(len(QUICK), ZOO_COUNT)]
)
def test_zoo_truth_agrees_with_single_edge_ablation_in_the_weights_under_every_ablation(i):
    if i >= len(QUICK):
        accepted_candidates(0, ZOO_COUNT)  # the suite's list, generated once (cached)
    org, held, truth = _zoo_truth(f"generated-0-{i}")
    assert {len(c) for c, _ in held} == {org.spec.max_len}  # the length the zoo track scores
    assert check_truth(org.model, truth, held) == []


def test_the_truth_also_agrees_on_pairs_of_other_lengths():
    """Pairs the truth was not derived on, of every length (zero ablation included)."""
    for i in QUICK:
        org = load_generated(f"generated-0-{i}")
        pairs = org.spec.task_pairs(64, seed=7)
        derived = derive_circuit(org.model, pairs)
        measured = measure_circuit(org.model, pairs)
        for edge in org.model.ground_truth.designed.edges:
            assert derived.edge_ablations.get(edge, frozenset()) == measured.edge_ablations.get(
                edge, frozenset()
            ), edge


def test_a_program_whose_truth_fails_is_dropped_and_counted(monkeypatch):
    """The generator's truth check refuses a truth with a mattering edge dropped, and generate()
    drops that program (the next candidate takes its name) and counts it under ``truth``."""
    import interplab.compile.dataflow_truth as dataflow_truth
    import interplab.compile.generate as generate_mod
    from interplab.core.circuit import Circuit

    org = load_generated("generated-0-0")
    real = dataflow_truth.derive_circuit

    def without_an_edge(model, pairs, name=None):
        truth = real(model, pairs, name)
        kept = sorted(truth.edges)[1:]
        return Circuit.from_edges(
            kept, name="mutated", edge_ablations={e: truth.edge_ablations[e] for e in kept}
        )

    monkeypatch.setattr(dataflow_truth, "derive_circuit", without_an_edge)
    why = generate_mod.check_generated_truth(org.spec, org.model)
    assert isinstance(why, str) and why.startswith("truth: ") and "leaves it out" in why
    monkeypatch.undo()

    first = org.spec.candidate.index
    calls = []

    def fail_first(spec, model, seed=0):
        calls.append(spec.candidate.index)
        return "truth: refused for this test" if spec.candidate.index == first else {"agrees": True}

    monkeypatch.setattr(generate_mod, "check_generated_truth", fail_first)
    rejections = generate_mod.Rejections()
    ((spec, _),) = list(generate_mod.generate(1, 0, rejections=rejections))
    assert rejections.truth == 1 and rejections.to_json()["truth"] == 1
    assert spec.candidate.index != first and spec.name == "generated-0-0"
    assert any("refused for this test" in e for e in rejections.examples)


def test_names_rebuild_the_same_program():
    a = load_generated("generated-0-1")
    load_generated.cache_clear()
    b = load_generated("generated-0-1")
    assert a is not b and a.spec.candidate.index == b.spec.candidate.index
    assert a.spec.behaviour == b.spec.behaviour
    assert accepted_candidates(0, 2) == accepted_candidates(0, 2)[:2]
    with pytest.raises(UnknownNameError, match="generated-<seed>-<index>"):
        parse_name("generated-x")


def test_written_organisms_load_with_their_ground_truth(tmp_path):
    index = write_generated(tmp_path, 3, seed=0)
    assert index["count"] == 3 and (tmp_path / "index.json").is_file()
    listed = json.loads((tmp_path / "index.json").read_text())["organisms"]
    assert [o["name"] for o in listed] == ["generated-0-0", "generated-0-1", "generated-0-2"]
    assert "truth" in index["rejected"]  # the generation index counts dropped truths
    for row in listed:
        assert row["agreement"] == 1.0 and row["inputs_checked"] >= 1
        assert row["truth_check"]["agrees"] is True
        model = load_compiled(tmp_path / row["name"])
        assert (tmp_path / row["name"] / "model.safetensors").is_file()
        org = load_generated(row["name"])
        assert model.ground_truth.designed.edges == org.model.ground_truth.designed.edges
        xs = org.spec.task_pairs(8, seed=0, length=org.spec.max_len)
        for x, _ in xs:  # the saved weights compute the program
            got = model([x])[0]
            want = rasp.evaluate(org.spec.program(), x)
            assert [round(v, 4) if isinstance(v, float) else v for v in got] == [
                round(v, 4) if isinstance(v, float) else v for v in want
            ]
