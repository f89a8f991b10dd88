"""Causal hypotheses on compiled programs: ground truth predicts perfectly, controls do not."""

from __future__ import annotations

import pytest

from interplab.errors import ConfigError
from interplab.eval.counterfactuals import score_hypothesis
from interplab.methods.causal import (
    from_circuit,
    from_ground_truth,
    misaligned,
    run_program,
    shuffled,
)
from tests.eval.causal_cases import compiled


@pytest.mark.parametrize("name", ["hist", "sort_unique", "sum_prev"])
def test_ground_truth_scores_perfectly_and_controls_do_not(name):
    model, inputs = compiled(name)
    truth = from_ground_truth(model)
    report = score_hypothesis(model, truth, inputs, n_pairs=120, loss=False)
    kinds = {"interchange", "new_input"} | ({"ablation"} if truth.irrelevant else set())
    assert set(report.by_kind) == kinds
    assert all(e.n == 120 and e.value == 1.0 for e in report.by_kind.values())
    wrong = score_hypothesis(model, misaligned(truth), inputs, n_pairs=120, loss=False)
    assert wrong.iia.n == 120 and wrong.iia.value < 0.2
    assert wrong.by_kind["new_input"].value == 1.0  # the right program passes new inputs anyway


@pytest.mark.parametrize("name", ["sort_unique", "sum_prev"])
def test_shuffled_control_fails_on_the_swapped_variables(name):
    model, inputs = compiled(name)
    report = score_hypothesis(
        model, shuffled(from_ground_truth(model)), inputs, n_pairs=120, loss=False
    )
    assert report.iia.n == 120 and report.iia.value < 0.6


def test_circuit_hypothesis_predicts_ablations_and_missing_nodes_are_caught():
    model, inputs = compiled("sum_prev")
    truth = from_ground_truth(model)
    full = from_circuit(
        "true circuit", model.program, truth.circuit, truth.all_nodes, model.encode, model.decode
    )
    ok = score_hypothesis(model, full, inputs, n_pairs=60, ablation="mean")
    assert ok.iia is None and all(e.value == 1.0 for e in ok.by_kind.values())
    assert ok.hypothesis_loss_recovered.value > 0.99
    partial = from_circuit(
        "missing a node",
        model.program,
        sorted(truth.circuit)[:1],
        truth.all_nodes,
        model.encode,
        model.decode,
    )
    bad = score_hypothesis(model, partial, inputs, n_pairs=60)
    # L1.MLP writes the output: resampling it breaks the prediction. L0.MLP computes prev_idx,
    # a function of positions only, so *resampling* it (same length) changes nothing.
    assert bad.by_target["ablation:L1.MLP"].value < 0.5
    assert bad.by_target["ablation:L1.MLP"].n == 60 // len(partial.irrelevant)
    assert bad.by_target["ablation:L0.MLP"].value == 1.0
    assert bad.by_kind["ablation"].value < ok.by_kind["ablation"].value
    assert bad.hypothesis_loss_recovered.value < 0.5


def test_run_program_overrides_recompute_descendants_only():
    model, _ = compiled("sum_prev")
    prog = model.program
    plain = run_program(prog, [0, 1, 2, 0, 1])
    forced = run_program(prog, [0, 1, 2, 0, 1], {"prev": [None, 2, 2, 2, 2]})
    assert forced["tokens"] == plain["tokens"]
    assert forced["sum_prev"] == [None, 0, 1, 2, 0]
    with pytest.raises(ConfigError, match="not expressions"):
        run_program(prog, [0, 1, 2, 0, 1], {"nope": [0] * 5})
