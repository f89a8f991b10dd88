"""The per-ablation truth is checked in the weights at the settings the bench scores, and the check
can fail.

The truth comes from the RASP program (:func:`interplab.compile.derive_circuit`); the check
(:func:`interplab.compile.check_truth`) ablates each designed edge alone in the compiled weights.
Library programs are checked as the circuits track scores them: inputs of full length, truth on
held-out pairs that avoid the scoring pairs' inputs."""

from __future__ import annotations

import functools

import pytest

from interplab.bench.tracks.circuits import COMPILED_PROGRAMS
from interplab.compile import check_truth, derive_circuit, unverified_ablations, verify_truth
from interplab.compile.programs import LIBRARY
from interplab.compile.truth_check import UNVERIFIED
from interplab.core.circuit import ABLATIONS, Circuit
from interplab.errors import VerificationError
from tests.compile.cases import compiled

QUICK = ("reverse", "length")


@functools.cache
def _track_truth(name: str, seed: int = 0) -> tuple[list, dict[str, Circuit]]:
    """The circuits track's truth pairs (full length, avoiding the scoring pairs' inputs) and the
    per-ablation truth derived on them."""
    from interplab.zoo.circuit_organisms import N_PAIRS, N_TRUTH_PAIRS, held_out_pairs

    spec = LIBRARY[name]
    scoring = spec.task_pairs(N_PAIRS, seed=seed, length=spec.max_len)
    held = held_out_pairs(spec, scoring, N_TRUTH_PAIRS, seed)
    derived = derive_circuit(compiled(name), held)
    return held, {a: derived.for_ablation(a) for a in ABLATIONS}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[] if n in QUICK else [pytest.mark.slow], id=n)
        for n in COMPILED_PROGRAMS
    ],
)
def test_every_scored_library_truth_verifies_or_is_listed_as_unverified(name):
    held, truth = _track_truth(name)
    assert {len(c) for c, _ in held} == {LIBRARY[name].max_len}  # the only length scored
    problems = check_truth(compiled(name), truth, held)
    failing = {a for a in ABLATIONS if any(f" under {a}:" in p for p in problems)}
    assert failing == set(unverified_ablations(name)), problems


def test_unverified_list_names_only_scored_programs_and_real_ablations():
    for program, reasons in UNVERIFIED.items():
        assert program in COMPILED_PROGRAMS and set(reasons) <= set(ABLATIONS)
        assert all(reasons.values())  # each says why
    assert unverified_ablations("compiled-reverse") == unverified_ablations("reverse")


@pytest.mark.parametrize("name", QUICK)
def test_zero_truth_agrees_with_the_weights_at_the_length_scored(name):
    """At full length a selector width whose BOS weight is zeroed reads max_len, which is the
    true width: the BOS reads of ``length`` and ``reverse``'s width change nothing there."""
    held, truth = _track_truth(name)
    measured = check_truth(compiled(name), {"zero": truth["zero"]}, held)
    assert measured == []
    assert not any(
        e.sender.kind == "tok_embed"
        and e.channel == "v"
        and e.receiver.kind == "head"
        and any(r.variable == "bos" for r in compiled(name).ground_truth.edge_reads[e])
        for e in truth["zero"].edges
    )


def test_bos_reads_of_a_width_matter_below_full_length_and_the_weights_agree():
    """The same edges decided on shorter inputs: there a zeroed BOS weight reads max_len, not the
    length, so the BOS value read matters; the derivation finds it by evaluating the pairs."""
    model = compiled("length")
    spec = LIBRARY["length"]
    short = spec.task_pairs(32, seed=3, length=spec.max_len - 1)
    truth = {a: derive_circuit(model, short).for_ablation(a) for a in ABLATIONS}
    bos_v = [e for e in model.ground_truth.designed.edges if str(e) == "tokens->L0.H0[v]"]
    assert bos_v and bos_v[0] in truth["zero"].edges
    assert check_truth(model, truth, short) == []


def _mutated(truth: Circuit, add=(), drop=()) -> Circuit:
    edges = (set(truth.edges) | set(add)) - set(drop)
    return Circuit.from_edges(edges, name=f"{truth.name} (mutated)")


def test_the_check_reports_an_inert_edge_added_and_a_mattering_edge_dropped():
    held, truth = _track_truth("reverse")
    model = compiled("reverse")
    designed = model.ground_truth.designed.edges
    inert = sorted(designed - truth["zero"].edges)[0]
    mattering = sorted(truth["zero"].edges)[0]
    for mutated, edge, says in (
        (_mutated(truth["zero"], add=[inert]), inert, "changes no output"),
        (_mutated(truth["zero"], drop=[mattering]), mattering, "leaves it out"),
    ):
        problems = check_truth(model, {"zero": mutated}, held)
        assert (
            len(problems) == 1
            and problems[0].startswith(f"{edge} under zero:")
            and says in problems[0]
        )
        with pytest.raises(
            VerificationError, match=str(edge).replace("[", r"\[").replace("]", r"\]")
        ):
            verify_truth(model, {**truth, "zero": mutated}, held, name="compiled-reverse")
    record = verify_truth(model, truth, held, name="compiled-reverse")
    assert record["agrees"] == {a: True for a in ABLATIONS} and record["lengths"] == [
        LIBRARY["reverse"].max_len
    ]
