"""SIIT organisms: verified IIA, and replacement parts that do the component's job."""

from __future__ import annotations

import dataclasses

import pytest

from interplab.errors import VerificationError
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


#: SIIT organisms whose per-ablation truth (RASP dataflow over the alignment) fails the
#: single-edge check in the weights today (issue 21; numbers in the report). Mostly the
#: non-aligned MLP (and, for hist / mod_sum / sum_prev, non-aligned heads and direct paths)
#: matter alone beyond 5 % of the whole model's effect; the rule is not loosened for them.
EDGE_CHECK_FAILS = {
    "siit-shift_by": "zero: L0.MLP->logits; mean: L0.H0->L0.MLP matter outside the truth",
    "siit-shift_by_1": "zero / resample: L0.MLP->logits; mean / resample: L0.H0->L0.MLP",
    "siit-shift_by_2": "L0.H1->L0.MLP, L0.MLP->logits (zero also positions->L0.H0[q])",
    "siit-first_token": "zero: tokens->L0.H0[q] matters outside the truth",
    "siit-hist": "tokens->L0.H0[v], tokens->L0.MLP, L0.H0->logits (+ more under zero)",
    "siit-mod_sum": "L0.H0->logits, tokens->logits (+ 10 more under zero)",
    "siit-sum_prev": "tokens->logits, L0.H0->logits (+ 13 more under zero)",
}


def _scoring_inputs(org, seed: int = 0) -> list:
    """The inputs the circuits track scores on (its N_PAIRS clean + corrupted draws)."""
    import random

    rng = random.Random(seed)
    return [rng.choice(org.inputs) for _ in range(64)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.xfail(
                n in EDGE_CHECK_FAILS,
                raises=VerificationError,
                strict=True,
                reason=EDGE_CHECK_FAILS.get(n, ""),
            ),
        )
        for n in VERIFIED
    ],
)
def test_per_ablation_truth_agrees_with_single_edge_ablation(name):
    """On the truth's own held-out pairs, under zero, mean and resample ablation: every truth edge
    matters alone and every edge that matters is in the truth (interplab.zoo.verify's rule)."""
    from interplab.zoo.siit_truth import verified_siit_truth

    org = siit.load_or_train(name)
    exclude = _scoring_inputs(org)
    truth, check = verified_siit_truth(name, 0, exclude=exclude)  # raises VerificationError
    assert check.ok and check.n_pairs == truth.n_pairs
    assert not {tuple(x) for x in exclude} & {x for pair in truth.pairs for x in pair}
    for ablation, circuit in truth.per_ablation.items():
        assert check.ablations[ablation].n_truth == len(circuit)
