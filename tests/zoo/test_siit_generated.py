"""SIIT twins of generated programs: chosen by a rule on the program, trained to the compiled
sibling's alignment, verified by interchange on held-out pairs, and a truth equal to the
sibling's designed circuit on the same nodes (less the compiler's constant-signal edges)."""

from __future__ import annotations

import dataclasses

import pytest

from interplab.compile.dataflow_truth import CONSTANTS
from interplab.errors import ConfigError, UnknownNameError
from interplab.zoo import siit
from interplab.zoo import siit_generated as sg
from interplab.zoo.generated import load_generated

SMALL = "siit-generated-0-5"


def _compiled_designed_less_constants(name: str) -> set:
    gt = load_generated(sg.sibling(name)).model.ground_truth
    assert set(gt.edge_reads) == set(gt.designed.edges)
    return {
        e for e, reads in gt.edge_reads.items() if any(r.variable not in CONSTANTS for r in reads)
    }


@pytest.mark.slow  # draws and compiles the first 40 generated programs in a fresh cache (~35 s)
def test_twins_are_the_first_programs_the_rule_admits():
    names = sg.siit_generated_names(0, 5)
    last = sg.parse_name(names[-1])[1]
    chosen = {sg.parse_name(n)[1] for n in names}
    for i in range(last + 1):  # every program skipped before the last twin breaks the rule
        why = sg.ineligible(load_generated(f"generated-0-{i}"))
        assert (why is None) == (i in chosen), (i, why)
    with pytest.raises(ConfigError, match="gets no SIIT twin"):
        sg.spec_for("siit-generated-0-0")  # an MLP computing two variables
    with pytest.raises(UnknownNameError):
        sg.parse_name("siit-generated-x")


def test_spec_is_the_sibling_program_with_its_alignment():
    from itertools import islice, product

    from interplab.compile import rasp

    spec, org = sg.spec_for(SMALL), load_generated(sg.sibling(SMALL))
    ours, theirs = spec.program(), org.spec.program()
    assert repr(ours) == repr(theirs)  # the same program (not necessarily the same object)
    for x in islice(product(spec.vocab, repeat=spec.length), 300):
        assert rasp.evaluate(ours, list(x)) == rasp.evaluate(theirs, list(x))
    assert spec.vocab == org.spec.vocab and spec.length == org.spec.max_len
    assert spec.n_layers == org.model.cfg.n_layers and spec.n_heads >= 2
    assert {v: spec.nodes(v) for v in spec.alignment} == sg.compiled_alignment(org.model)


@pytest.mark.parametrize(
    "name",
    [SMALL]
    + [pytest.param(f"siit-generated-0-{i}", marks=pytest.mark.slow) for i in (18, 20, 22, 33)],
)
def test_designed_truth_is_the_compiled_designed_circuit_through_the_alignment(name):
    assert set(siit.true_circuit(sg.spec_for(name)).edges) == _compiled_designed_less_constants(
        name
    )


def test_fingerprint_holds_the_origin_and_library_fingerprints_are_unchanged():
    spec = sg.spec_for(SMALL)
    assert siit.fingerprint(spec) != siit.fingerprint(dataclasses.replace(spec, origin="other"))
    lib = siit.SPECS["siit-hist"]
    assert siit.fingerprint(lib) == siit.fingerprint(dataclasses.replace(lib, origin=""))


def test_the_registry_lists_shipped_twins_and_resolves_others_by_name():
    from interplab.zoo.registry import entry, names
    from interplab.zoo.twin_zoo import shipped_rows

    e = entry(SMALL)
    assert e.family == "interplab.zoo.siit_generated" and "siit" in e.tags
    assert (SMALL in names()) == (SMALL in shipped_rows())  # shipped twins are listed
    other = "siit-generated-3-7"
    assert other not in shipped_rows() and other not in names()
    assert entry(other).family == "interplab.zoo.siit_generated"  # resolved on demand


@pytest.mark.slow
def test_a_twin_trains_verifies_and_its_truth_is_the_siblings_design():
    from interplab.zoo.siit_truth import siit_truth

    org = sg.load_twin(SMALL, retrain=True)  # trained here (VerificationError below 0.95)
    v = org.verification
    assert v["n_heldout_pairs"] == 1024 and "shipped" not in v
    assert min(v["iia"].values()) >= 0.95 and v["task_accuracy"] >= 0.95
    scoring = org.inputs[:40]
    truth = siit_truth(SMALL, 0, exclude=scoring)
    assert min(truth.check["iia"].values()) >= 0.95 and truth.check["task_accuracy"] >= 0.95
    assert not set(map(tuple, scoring)) & truth.truth_inputs
    assert set(truth.designed.edges) == _compiled_designed_less_constants(SMALL)
    assert all(set(c.edges) <= set(truth.designed.edges) for c in truth.per_ablation.values())


@pytest.mark.slow
def test_a_twin_that_does_not_verify_raises_with_its_numbers():
    spec = dataclasses.replace(sg.spec_for(SMALL), steps=3)  # far too short to learn anything
    with pytest.raises(
        siit.VerificationError,
        match=r"reached IIA \{.*\(task accuracy 0\.\d+\); every variable needs IIA ≥ 0\.95",
    ):
        siit.load_spec(spec, 0, min_task_accuracy=0.95)
    # nothing is cached for a failed twin: the real one's cache is untouched
    assert siit.load_spec(sg.spec_for(SMALL)).verification["steps"] == sg.STEPS


def test_a_recorded_failure_is_raised_again_without_retraining():
    import json

    spec = sg.spec_for(SMALL)
    path = siit.organism_dir(SMALL, 7) / sg.FAILED_NAME
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"fingerprint": siit.fingerprint(spec), "reason": "IIA {'v2': 0.1}"})
    )
    with pytest.raises(siit.VerificationError, match=r"IIA \{'v2': 0\.1\} \(recorded in"):
        sg.load_twin(SMALL, 7)
