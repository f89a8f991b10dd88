"""The transformer next-token classifier: its flat-parameter layout and the affine maps EK-FAC reads."""

from __future__ import annotations

import pytest
import torch

from interplab.data.passages import planted_passages
from interplab.errors import ConfigError
from interplab.methods.data_attribution.gradients import loss_grads
from interplab.models.classifiers import TrainedClassifier, logits, train_classifier
from interplab.models.transformer_classifier import TransformerClassifierSpec

TINY = TransformerClassifierSpec(
    d_model=8, n_heads=2, d_mlp=12, n_layers=2, steps=20, n_checkpoints=2
)


def _data(n: int = 80):
    return planted_passages(n, 6, seed=1)


def test_bad_spec_is_a_clear_error():
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        TransformerClassifierSpec(d_model=10, n_heads=3)
    with pytest.raises(ConfigError, match="kind 'transformer'"):
        TransformerClassifierSpec(kind="mlp")


def test_flat_theta_drives_the_native_module():
    from interplab.models.transformer import Transformer

    d = _data()
    theta = TINY.init_theta()
    assert len(theta) == TINY.n_params and TINY.n_in == 48
    native = Transformer(TINY.config).double()
    with torch.no_grad():  # the native module with theta's values gives the same logits
        for p, v in zip(native.parameters(), TINY.unflatten(theta).values()):
            p.copy_(v)
        expected = native(TINY.tokens(d.x_train))[:, -1]
    assert torch.allclose(logits(TINY, theta, d.x_train), expected, atol=1e-12)


def test_linear_maps_cover_each_parameter_once_and_rebuild_per_example_gradients():
    """Each example's loss gradient, summed from its affine maps' output gradients and inputs
    (sum over positions of g a^T, written at the maps' indices), equals torch.func's gradient."""
    d = _data()
    theta = TINY.init_theta() * 3  # away from the small init: every path carries gradient
    x, y = d.x_train[:6], d.y_train[:6]
    th = theta.clone().requires_grad_(True)
    z, maps = TINY.linear_maps(th, x)
    covered = torch.cat([m.index.flatten() for m in maps]).sort().values
    assert torch.equal(covered, torch.arange(len(theta)))
    rebuilt = torch.zeros(len(x), len(theta), dtype=theta.dtype)
    for n in range(len(x)):
        outs = torch.autograd.grad(
            torch.nn.functional.cross_entropy(z[n : n + 1], y[n : n + 1]),
            [m.output for m in maps],
            retain_graph=True,
        )
        for m, g in zip(maps, outs):
            a = m.inputs[n]
            a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1) if m.bias else a
            rebuilt[n, m.index.flatten()] += (g[n].reshape(len(a), -1).T @ a).flatten()
    reference = loss_grads(TINY, theta, x, y)
    assert reference.abs().max() > 1e-3
    assert torch.allclose(rebuilt, reference, atol=1e-10)


def test_training_is_deterministic_and_records_checkpoints():
    d = _data()
    a = train_classifier(TINY, d.x_train, d.y_train)
    b = train_classifier(TINY, d.x_train, d.y_train)
    assert isinstance(a, TrainedClassifier) and len(a.checkpoints) == 2
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.checkpoints[0], a.theta)
    assert a.features(d.x_test).shape == (6, 8)
