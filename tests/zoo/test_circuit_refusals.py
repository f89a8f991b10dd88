"""Circuit truths are released per ablation only when they agree with the weights; the bench's list
of refused (organism, ablation) cells is what the checks measure, not an assumption."""

from __future__ import annotations

import pytest
import torch

from interplab.bench.spec import parse_spec
from interplab.bench.tracks import circuits
from interplab.core.circuit import Circuit, Edge, Node
from interplab.errors import VerificationError
from interplab.zoo import circuit_organisms as co

QUICK = ["compiled-reverse", "trained-prevtoken"]


def _measured(name: str) -> set[str]:
    try:
        org = co.circuit_organism(name, 0)
    except VerificationError as exc:  # every ablation refused, or the SIIT alignment itself
        assert "every ablation" in str(exc) or "IIA" in str(exc)
        return {"zero", "mean", "resample"}
    return set(org.truth.checks.get("refused", {}))


def _listed(name: str) -> set[str]:
    return {a for a in ("zero", "mean", "resample") if co.refused_truth(name, a)}


@pytest.mark.parametrize(
    "name",
    QUICK + [pytest.param(n, marks=pytest.mark.slow) for n in circuits.ORGANISMS if n not in QUICK],
)
def test_the_refused_list_is_what_the_checks_refuse(name):
    assert _measured(name) == _listed(name)


def test_release_keeps_the_verified_ablations_and_says_why_the_others_go():
    e = Circuit.from_edges([Edge(Node.tok_embed(), Node.logits())])
    kept, record = co.release(
        "x", {"zero": e, "mean": e}, {"zero": ["an inert edge"], "mean": []}, {}
    )
    assert set(kept) == {"mean"} and record["refused"] == {"zero": "an inert edge"}
    with pytest.raises(VerificationError, match="every ablation"):
        co.release("x", {"zero": e}, {"zero": ["an inert edge"]}, {})


def test_refused_cells_are_left_out_of_the_bench_with_the_reason():
    """trained-induction is refused under every ablation and left out; siit-shift_by's zero and
    mean truths are refused too, but a SIIT organism is then scored against its designed truth
    (its alignment, verified by interchange), so its jobs stay."""
    spec = parse_spec(
        '[circuits]\norganisms = ["siit-shift_by", "trained-induction"]\n'
        'methods = ["random"]\nablations = ["zero", "mean", "resample"]\n'
    )
    assert [(j.organism, j.ablation) for j in spec.all_jobs()] == [
        ("siit-shift_by", a) for a in ("zero", "mean", "resample")
    ]
    left = {(j.organism, j.ablation): why for j, why in spec.left_out()}
    assert len(left) == 3 and all("refused by its check in the weights" in w for w in left.values())
    assert co.refused_truth("siit-shift_by", "zero") and not co.refused_truth(
        "siit-shift_by", "resample"
    )


def test_a_job_on_a_refused_truth_fails_with_the_reason(monkeypatch):
    """Mutation: add an inert edge to compiled-reverse's zero truth before its check runs."""
    from interplab.compile import dataflow_truth

    real = dataflow_truth.reads_to_circuit

    def with_inert_edge(*args, **kwargs):
        c = real(*args, **kwargs)
        inert = next(e for e in sorted(c.edges | set(args[1])) if e not in c.edges)
        return Circuit.from_edges(
            set(c.edges) | {inert}, c.name, {**c.edge_ablations, inert: ("zero",)}
        )

    monkeypatch.setattr(dataflow_truth, "reads_to_circuit", with_inert_edge)
    co.compiled_organism.cache_clear()
    try:
        org = co.compiled_organism("reverse", 0)
        assert "zero" not in org.truth.per_ablation and "zero" in org.truth.checks["refused"]
        from interplab.bench.tracks import Job

        with pytest.raises(VerificationError, match="zero truth was refused"):
            circuits.score_job(Job("circuits", "compiled-reverse", "random", "zero", 0), org)
    finally:
        co.compiled_organism.cache_clear()
    assert torch.is_tensor(org.tasks["score"].clean)
