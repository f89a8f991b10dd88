"""Generated organisms: rebuilt identically by name, saved with their truth, and the truth the
bench scores against agrees with single-edge ablations measured in the weights."""

from __future__ import annotations

import json

import pytest

from interplab.compile import derive_circuit, load_compiled, measure_circuit, rasp
from interplab.errors import UnknownNameError
from interplab.zoo.generated import (accepted_candidates, load_generated, parse_name,
                                     write_generated)

QUICK = [0, 1, 2]


def _disagreements(name: str, ablations=("mean", "resample")) -> list:
    org = load_generated(name)
    pairs = org.spec.task_pairs(64, seed=7, length=org.spec.max_len)
    derived = derive_circuit(org.model, pairs)    # from the RASP program, no weights
    measured = measure_circuit(org.model, pairs)  # single-edge ablations in the weights
    bad = []
    for edge in org.model.ground_truth.designed.edges:
        for a in ablations:
            if (a in derived.edge_ablations.get(edge, ())) != (a in measured.edge_ablations.get(edge, ())):
                bad.append((str(edge), a))
    return bad


@pytest.mark.parametrize("i", QUICK + [pytest.param(i, marks=pytest.mark.slow) for i in range(3, 12)])
def test_mean_and_resample_truth_agree_with_ablations_in_the_weights(i):
    assert _disagreements(f"generated-0-{i}") == []


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
    for row in listed:
        assert row["agreement"] == 1.0 and row["inputs_checked"] >= 1
        model = load_compiled(tmp_path / row["name"])
        assert (tmp_path / row["name"] / "model.safetensors").is_file()
        org = load_generated(row["name"])
        assert model.ground_truth.designed.edges == org.model.ground_truth.designed.edges
        xs = org.spec.task_pairs(8, seed=0, length=org.spec.max_len)
        for x, _ in xs:  # the saved weights compute the program
            got = model([x])[0]
            want = rasp.evaluate(org.spec.program(), x)
            assert [round(v, 4) if isinstance(v, float) else v for v in got] == \
                [round(v, 4) if isinstance(v, float) else v for v in want]
