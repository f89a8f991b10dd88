"""Linear probes with a Hewitt & Liang control task."""

from __future__ import annotations

import pytest
import torch

from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.methods.causal import run_program
from interplab.methods.probing import LinearProbe, control_labels, probe_selectivity
from tests.eval.causal_cases import compiled


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


def test_selectivity_positive_for_a_real_variable():
    """hist is written by L0's MLP of the compiled program; the token itself is not there, so a
    probe reads hist (accuracy 1) but cannot memorise a per-token control task."""
    model, inputs = compiled("hist")
    site = Site(Component.MLP_OUT, 0)
    _, cache = model.run_with_cache(model.encode(inputs), [site])
    X = cache[site][:, 1:].reshape(-1, model.cfg.d_model)
    y = [v for xs in inputs for v in run_program(model.program, xs)["hist"]]
    types = [t for xs in inputs for t in xs]
    result = probe_selectivity(X, y, types)
    assert result.accuracy == 1.0
    assert result.selectivity > 0.3
    assert result.n_test == int(len(y) * 0.3)
