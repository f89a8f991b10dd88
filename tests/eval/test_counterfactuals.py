"""Interval helpers and the bookkeeping of score_hypothesis: accuracy per pair kind, the same
pairs for every hypothesis, and kinds that do not apply said so."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError
from interplab.eval.counterfactuals import sample_pairs, score_hypothesis
from interplab.eval.stats import bootstrap_ratio, wilson
from interplab.methods.causal import from_circuit, from_ground_truth, misaligned
from tests.eval.causal_cases import compiled, library


def test_wilson_matches_the_textbook_interval():
    est = wilson(8, 10)
    assert est.value == 0.8 and est.n == 10
    assert est.low == pytest.approx(0.4902, abs=1e-3) and est.high == pytest.approx(
        0.9433, abs=1e-3
    )
    assert wilson(10, 10).high == 1.0 and wilson(0, 10).low == 0.0


def test_bootstrap_ratio_brackets_its_value():
    num, den = torch.full((50,), 0.1), torch.linspace(0.5, 1.5, 50)
    est = bootstrap_ratio(num, den)
    assert est.low <= est.value <= est.high and est.value == pytest.approx(0.9, abs=1e-6)


def test_counts_split_over_variables_and_rows():
    model, inputs = compiled("sort_unique")
    truth = from_ground_truth(model)
    report = score_hypothesis(model, truth, inputs, n_pairs=31, kinds=("interchange",), loss=False)
    per_var = [e.n for k, e in report.by_target.items() if k.startswith("interchange:")]
    assert len(per_var) == len(truth.alignment) >= 2
    assert sum(per_var) == 31 and max(per_var) - min(per_var) <= 1
    assert report.rows() == {"counterfactual_accuracy_interchange": 1.0, "n_interchange": 31.0}
    assert report.iia is report.by_kind["interchange"]


def test_every_hypothesis_gets_the_same_pairs_and_n_per_kind():
    model, inputs = library("sum_prev")
    truth = from_ground_truth(model)
    wrong = misaligned(truth)
    assert set(truth.irrelevant) != set(wrong.irrelevant)  # they ablate different components
    reports = [
        score_hypothesis(model, h, inputs, n_pairs=40, seed=3, loss=False) for h in (truth, wrong)
    ]
    for kind in ("interchange", "ablation", "new_input"):
        assert [r.by_kind[kind].n for r in reports] == [40, 40]
    # the wrong hypothesis's failing pairs are pairs of the hypothesis-independent sample
    pairs = {
        kind: set(zip(*(map(tuple, xs) for xs in sample_pairs(inputs, 40, 3, kind))))
        for kind in ("interchange", "ablation")
    }
    failures = reports[1].failures
    assert failures
    for f in failures:
        if f["kind"] == "interchange":
            assert (tuple(f["base"]), tuple(f["source"])) in pairs["interchange"]
        elif f["kind"] == "ablation":
            assert tuple(f["base"]) in {b for b, _ in pairs["ablation"]}


def test_kinds_are_never_pooled_new_inputs_pass_a_wrong_hypothesis():
    """A misplaced hypothesis with the right program predicts every new input: pooled with
    interchanges, that would be a floor of 1/3 for any control."""
    model, inputs = library("sum_prev")
    report = score_hypothesis(
        model, misaligned(from_ground_truth(model)), inputs, n_pairs=60, loss=False
    )
    assert report.by_kind["new_input"].value == 1.0
    assert report.by_kind["interchange"].value < 0.2
    names = {k for k in report.rows() if k.startswith("counterfactual_accuracy")}
    assert names == {
        "counterfactual_accuracy_interchange",
        "counterfactual_accuracy_ablation",
        "counterfactual_accuracy_new_input",
    }


def test_a_kind_that_does_not_apply_is_omitted_with_its_reason():
    model, inputs = library("hist")
    truth = from_ground_truth(model)
    assert not truth.irrelevant  # hist's true circuit is every head and MLP
    report = score_hypothesis(model, truth, inputs, n_pairs=20, loss=False)
    assert "ablation" not in report.by_kind
    assert "no component irrelevant" in report.omitted["counterfactual_accuracy_ablation"]
    assert "counterfactual_accuracy_ablation" not in report.rows()
    model, inputs = library("sum_prev")
    truth = from_ground_truth(model)
    circuit = from_circuit(
        "true circuit", model.program, truth.circuit, truth.all_nodes, model.encode, model.decode
    )
    report = score_hypothesis(model, circuit, inputs, n_pairs=20, ablation="mean", loss=False)
    assert "locates no variable" in report.omitted["counterfactual_accuracy_interchange"]
    assert report.iia is None
    assert report.by_kind["ablation"].value == 1.0 and report.by_kind["ablation"].n == 20


def test_rejects_mixed_lengths_and_unknown_kinds():
    model, inputs = compiled("hist")
    truth = from_ground_truth(model)
    with pytest.raises(ConfigError, match="one length"):
        score_hypothesis(model, truth, [inputs[0], inputs[0][:3]])
    with pytest.raises(ConfigError, match="kinds"):
        score_hypothesis(model, truth, inputs, kinds=("bogus",))


def test_loss_recovered_is_not_claimed_by_a_hypothesis_that_claims_nothing():
    """A circuit of every head and MLP locates nothing and ablates nothing: scrubbing it would
    run the model unchanged and 'recover' 1.0."""
    model, inputs = library("sum_prev")
    truth = from_ground_truth(model)
    everything = from_circuit(
        "everything", model.program, truth.all_nodes, truth.all_nodes, model.encode, model.decode
    )
    report = score_hypothesis(model, everything, inputs, n_pairs=20)
    assert report.hypothesis_loss_recovered is None
    assert "nothing to scrub" in report.omitted["hypothesis_loss_recovered"]
    assert set(report.rows()) == {"counterfactual_accuracy_new_input", "n_new_input"}
    scored = score_hypothesis(model, truth, inputs, n_pairs=20)
    assert scored.hypothesis_loss_recovered.value > 0.99
    assert "hypothesis_loss_recovered" in scored.rows() and not scored.omitted
