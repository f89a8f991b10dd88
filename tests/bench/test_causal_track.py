"""Causal track: method settings come from the method, never the truth; the quick suite scores a
hypothesis-producing method (DAS) beside the controls."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interplab.bench.tracks import causal
from interplab.methods.causal import hypotheses


def _rows(out) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in out.rows}


def _suite(name: str):
    """The causal track's part of a built-in suite, expanded as the bench expands it (other
    tracks are not imported)."""
    from interplab.bench.spec import BenchSpec, TrackSpec

    return BenchSpec(
        name,
        tuple(
            TrackSpec(
                "causal",
                tuple(b["organisms"]),
                tuple(b["methods"]),
                tuple(b.get("ablations", (None,))),
            )
            for b in causal.SUITES[name]
        ),
    )


def test_circuit_eap_size_does_not_read_the_truth(monkeypatch):
    """k comes from EAP's own recovery rule: cutting the true circuit to 1 edge (in the
    compiled model and in the truth hypothesis the track builds from it) leaves it unchanged.
    (The old rule, k = |true circuit|, gives 9 and then 1.)"""
    from interplab.core.circuit import Circuit

    first = causal.job_output("compiled-sum_prev", "circuit_eap").artifacts["eap_circuit"]
    assert first["recovered_at_k"] >= hypotheses.EAP_RECOVERY and 0 < first["k"] < first["n_edges"]
    model, _ = causal._compiled("compiled-sum_prev")
    true = model.ground_truth.circuit
    before = causal.load("compiled-sum_prev")[1].circuit
    smaller = Circuit.from_edges(sorted(true.edges)[:1])
    monkeypatch.setattr(
        model, "ground_truth", dataclasses.replace(model.ground_truth, circuit=smaller)
    )
    assert causal.load("compiled-sum_prev")[1].circuit != before  # the track sees the new truth
    second = causal.job_output("compiled-sum_prev", "circuit_eap").artifacts["eap_circuit"]
    assert (second["k"], second["nodes"]) == (first["k"], first["nodes"])


@pytest.mark.slow
def test_smallest_recovering_k_is_the_smallest():
    """Keeping the top k edges recovers ≥ the threshold, keeping k - 1 does not; a ranking
    that puts the same edges last needs more."""
    import random

    from interplab.methods.circuits import find_circuit
    from interplab.methods.circuits.engine import EdgePatcher
    from interplab.tasks import Task

    model, truth, inputs = causal.load("compiled-sum_prev")
    rng = random.Random(0)
    task = Task(
        truth.encode([rng.choice(inputs) for _ in range(32)]),
        truth.encode([rng.choice(inputs) for _ in range(32)]),
        metric="kl",
    )
    ranked = find_circuit("eap", model, task, ablation="resample").ranked()
    k, recovered = hypotheses.smallest_recovering_k(model, task, ranked)
    patcher = EdgePatcher(model, task, ablation="resample", metric="kl")
    none = patcher.score_keep(torch.zeros(patcher.n_edges))

    def recovery(edges):
        keep = torch.zeros(patcher.n_edges)
        for e in edges:
            keep[patcher.index.edge_id[e]] = 1.0
        return 1 - patcher.score_keep(keep) / none

    assert recovery(ranked[:k]) == pytest.approx(recovered) and recovered >= hypotheses.EAP_RECOVERY
    assert k >= 1 and recovery(ranked[: k - 1]) < hypotheses.EAP_RECOVERY
    k_reversed, _ = hypotheses.smallest_recovering_k(model, task, ranked[::-1])
    assert k_reversed > k


def test_quick_suite_scores_a_hypothesis_method_beside_the_controls():
    jobs = _suite("quick").jobs()
    methods = {j.method for j in jobs}
    found = {m for m in methods & set(causal.HYPOTHESES) if causal.TRACK.kind(m) == "method"}
    assert "das" in found  # a method that locates variables: it gets an interchange score
    assert {"ground_truth", "misaligned", "shuffled", "random"} <= methods
    quick = {(o, m) for b in causal.SUITES["quick"] for o in b["organisms"] for m in b["methods"]}
    assert quick == {(j.organism, j.method) for j in jobs}  # the one list: SUITES["quick"]
    assert not hasattr(causal, "QUICK")
    assert all(causal.applies(o, m) for o, m in quick)


def test_das_rows_exist_and_separate_from_the_random_alignment():
    from interplab.methods.causal import run_program

    das = causal.job_output("compiled-hist", "das")
    rnd = causal.job_output("compiled-hist", "random")
    d, r = _rows(das), _rows(rnd)
    assert d["n_interchange"] == r["n_interchange"] == causal.N_PAIRS
    assert not any(m.startswith(causal.SELFCHECK) for m in d)
    # the bar for a headline: the method beats random by at least 0.2
    key = "counterfactual_accuracy_interchange"
    assert d[key] >= r[key] + 0.2
    est = das.artifacts["estimates"]["counterfactual_accuracy_interchange"]
    assert est["n"] == causal.N_PAIRS and est["low"] <= est["value"] <= est["high"]
    _, truth, inputs = causal.load("compiled-hist")
    values = {v for xs in inputs for v in run_program(truth.program, xs)["hist"]}
    choice = das.artifacts["alignment"]["hist"]
    assert choice["k"] == len(values) - 1  # the program's rule, not the truth's dimensions
    assert choice["heldout_iia"][choice["site"]] == max(choice["heldout_iia"].values())


def test_das_never_trains_on_the_scoring_pairs(monkeypatch):
    """DAS's own pairs skip the interchange pairs the hypothesis is scored on. With 20,000
    scoring pairs (a third of all 59,049) a search that ignored them would draw ~85 of them."""
    from interplab.methods.causal import das_training as das_module

    seen: list[tuple] = []

    def fake(model, site, base, source, labels, *, k, **kwargs):
        seen.extend(zip(map(tuple, base.tolist()), map(tuple, source.tolist())))
        basis, _ = torch.linalg.qr(torch.randn(model.cfg.d_model, k))
        return das_module.DASResult(site, basis, 0.5, 0.5, 1, 1)

    monkeypatch.setattr(das_module, "das", fake)
    monkeypatch.setattr(causal, "N_PAIRS", 20_000)
    model, truth, inputs = causal.load("compiled-sum_prev")
    hyp, artifacts = causal._das_hypothesis("compiled-sum_prev", model, truth, inputs, 0)
    assert seen and set(hyp.alignment) == set(artifacts["alignment"]) == {"prev", "sum_prev"}
    scored = {
        (tuple(truth.encode([b])[0].tolist()), tuple(truth.encode([s])[0].tolist()))
        for b, s in causal._scoring_pairs(inputs, 0)
    }
    assert len(scored) > 10_000 and not scored & set(seen)


def test_search_pairs_skip_what_they_are_told_to():
    from interplab.methods.causal.das_training import _search_pairs

    free = _search_pairs(3, 20, 0, set())
    banned = set(free[:3])
    assert banned & set(free)  # the stream would draw them
    assert not banned & set(_search_pairs(3, 20, 0, banned))


@pytest.mark.slow
def test_das_alignment_does_not_read_the_truth_alignment(monkeypatch):
    """The DAS hypothesis is the same when the truth the track holds is misaligned: DAS reads
    the high-level program and the model only."""
    from interplab.methods.causal import misaligned

    first = causal.job_output("compiled-sum_prev", "das").artifacts["alignment"]
    real = causal.load

    def wrong_truth(organism, seed=0):
        model, truth, inputs = real(organism, seed)
        return model, misaligned(truth, seed=5), inputs

    monkeypatch.setattr(causal, "load", wrong_truth)
    assert causal.job_output("compiled-sum_prev", "das").artifacts["alignment"] == first


def test_jobs_that_cannot_apply_are_not_expanded():
    assert causal.why_not("siit-shift_by", "shuffled")  # one located variable
    assert causal.applies("siit-sum_prev", "shuffled")
    assert causal.why_not("compiled-hist", "replacement")
    assert causal.why_not("siit-shift_by", "dictionary_replacement")
    full = {(j.organism, j.method) for j in _suite("full").all_jobs()}
    assert ("siit-shift_by", "shuffled") not in full and ("siit-sum_prev", "shuffled") in full
