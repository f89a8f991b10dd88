"""SIIT organisms: verified IIA, and replacement parts that do the component's job."""

from __future__ import annotations

import dataclasses

import pytest

from interplab.eval.counterfactuals import score_hypothesis
from interplab.eval.replacement import replacement_fidelity
from interplab.methods.causal import misaligned
from interplab.zoo import siit

VERIFIED = siit.verified_names()


def test_specs_are_consistent():
    spec = siit.SPECS["siit-sum_prev"]
    assert spec.output_values() == (0, 1, 2, None)
    circuit = siit.true_circuit(spec, spec.config(0))
    assert {str(n) for n in circuit.nodes} >= {"L0.H0", "L0.MLP", "tokens", "logits"}
    assert set(VERIFIED) <= set(siit.SPECS)
    assert len(VERIFIED) >= 5  # issue 6: at least five verified SIIT organisms


def test_library_program_is_used_as_is():
    from interplab.compile.programs import get_program

    spec, lib = siit.SPECS["siit-mod_sum"], get_program("mod_sum")
    assert spec.vocab == lib.vocab and spec.length == lib.max_len
    assert spec.program().label == lib.build().label == "mod_sum"
    assert set(spec.alignment) == {"first_token", "mod_sum"}


def test_fingerprint_tracks_the_spec():
    spec = siit.SPECS["siit-hist"]
    assert siit.fingerprint(spec) == siit.fingerprint(dataclasses.replace(spec))
    assert siit.fingerprint(spec) != siit.fingerprint(dataclasses.replace(spec, n_layers=2))
    assert siit.fingerprint(spec) != siit.fingerprint(dataclasses.replace(spec, steps=10))


@pytest.mark.slow
@pytest.mark.parametrize("name", VERIFIED)
def test_organism_verifies_predicts_and_replaces(name):
    org = siit.load_or_train(name)  # raises VerificationError below IIA 0.95
    assert min(org.verification["iia"].values()) >= 0.95
    assert org.verification["n_heldout_pairs"] == 1024
    assert org.verification["train_cpu_seconds"] <= 180  # ≤ 3 minutes of CPU training
    hyp = org.hypothesis()
    truth = score_hypothesis(org.model, hyp, org.inputs, n_pairs=200, loss=False)
    assert truth.iia.n == 200 and truth.iia.value >= 0.95
    wrong = score_hypothesis(org.model, misaligned(hyp), org.inputs, n_pairs=200, loss=False)
    assert wrong.iia.value < truth.iia.value - 0.3
    # at least one aligned component (set) swapped for its part keeps ≥ 0.9 of task accuracy,
    # while mean-ablating the same component keeps markedly less
    reps = [replacement_fidelity(org.model, hyp, var, org.inputs) for var in sorted(hyp.alignment)]
    best = max(reps, key=lambda r: r.fidelity - r.mean_fidelity)
    assert best.n_eval >= 100 and best.accuracy_original >= 0.95
    assert best.fidelity >= 0.9, reps
    assert best.mean_fidelity < 0.5 and best.mean_fidelity <= best.fidelity - 0.4, best
