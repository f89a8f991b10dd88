"""Linear probes with a Hewitt & Liang control task (and its checks)."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, ShapeError
from interplab.methods.causal import run_program
from interplab.methods.probing import (
    MIN_CONTROL_TYPES,
    DegenerateControlTask,
    LinearProbe,
    control_labels,
    control_task,
    probe_accuracy,
    probe_selectivity,
    token_position_types,
)
from tests.eval.causal_cases import library


def _written(name: str, var: str):
    """(features at the site that writes ``var`` [n, d], its values, the inputs) on the
    library model ``name``, every position after BOS of every fixed-length input."""
    model, inputs = library(name)
    site = model.ground_truth.variables[var].sites[-1]
    _, cache = model.run_with_cache(model.encode(inputs), [site])
    X = cache[site][:, 1:].reshape(-1, model.cfg.d_model)
    y = [v for xs in inputs for v in run_program(model.program, xs)[var]]
    return X, y, inputs


def test_probe_fits_separable_data_and_teaches_when_unfitted():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=gen)
    y = ["a" if v > 0 else "b" for v in X[:, 2].tolist()]
    assert LinearProbe().fit(X, y).score(X, y) > 0.97
    with pytest.raises(ConfigError, match="fit"):
        LinearProbe().predict(X)


def test_control_labels_are_fixed_per_type():
    ctrl = control_labels([0, 1, 2, 0, 1, 2], ["x", "y", "x", "z", "y", "x"], seed=1)
    assert ctrl[0] == ctrl[2] == ctrl[5] and ctrl[1] == ctrl[4]


def test_token_position_types_give_enough_types_on_a_three_token_vocabulary():
    _, _, inputs = _written("hist", "hist")
    types = token_position_types(inputs)
    assert len(types) == sum(len(xs) for xs in inputs)
    assert types[:2] == [(inputs[0][0], 0), (inputs[0][1], 1)]
    assert len({t for xs in inputs for t in xs}) == 3 < MIN_CONTROL_TYPES
    assert len(set(types)) == 3 * 5 >= MIN_CONTROL_TYPES


@pytest.mark.parametrize("name, var", [("hist", "hist"), ("sum_prev", "sum_prev")])
def test_selectivity_positive_for_a_variable_at_the_site_that_writes_it(name, var):
    """The compiled block writing ``var`` holds it one-hot (accuracy 1) but not the token and
    position, so a probe cannot memorise the (token, position) control task there."""
    X, y, inputs = _written(name, var)
    result = probe_selectivity(X, y, token_position_types(inputs))
    assert result.accuracy == 1.0
    assert result.n_control_types >= MIN_CONTROL_TYPES
    assert result.selectivity > 0.3
    assert result.n_test == int(len(y) * 0.3)
    assert probe_accuracy(X, y) == result.accuracy


def test_degenerate_controls_are_refused_with_the_reason():
    X, y, inputs = _written("sum_prev", "sum_prev")
    tokens_only = [t for xs in inputs for t in xs]  # 3 types: the control is often constant
    with pytest.raises(DegenerateControlTask, match="3 distinct types .need ≥ 10.*token, position"):
        probe_selectivity(X, y, tokens_only)
    many = list(range(100))
    with pytest.raises(DegenerateControlTask, match="constant"):  # 99% of labels are 0
        control_task([0] * 99 + [1], many)
    with pytest.raises(DegenerateControlTask, match="single value"):
        control_task([1] * 100, many)
    with pytest.raises(ShapeError, match="100 labels but 99 types"):
        control_task([0, 1] * 50, many[:99])
    assert len(set(map(repr, control_task([0, 1] * 50, many)))) == 2
