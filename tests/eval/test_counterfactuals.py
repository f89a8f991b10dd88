"""Interval helpers and the bookkeeping of score_hypothesis."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError
from interplab.eval.counterfactuals import bootstrap_ratio, score_hypothesis, wilson
from interplab.methods.causal import from_ground_truth
from tests.eval.causal_cases import compiled


def test_wilson_matches_the_textbook_interval():
    est = wilson(8, 10)
    assert est.value == 0.8 and est.n == 10
    assert est.low == pytest.approx(0.4902, abs=1e-3) and est.high == pytest.approx(0.9433, abs=1e-3)
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
    assert sum(per_var) == 31 and max(per_var) - min(per_var) <= 1
    assert report.rows() == {"counterfactual_accuracy": 1.0, "iia": 1.0}


def test_rejects_mixed_lengths_and_unknown_kinds():
    model, inputs = compiled("hist")
    truth = from_ground_truth(model)
    with pytest.raises(ConfigError, match="one length"):
        score_hypothesis(model, truth, [inputs[0], inputs[0][:3]])
    with pytest.raises(ConfigError, match="kinds"):
        score_hypothesis(model, truth, inputs, kinds=("bogus",))
