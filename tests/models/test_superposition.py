from __future__ import annotations

import math

import pytest
import torch

from interplab.core.model import wrap_module
from interplab.core.sites import Site
from interplab.errors import ConfigError
from interplab.models.superposition import (
    SuperpositionConfig,
    SuperpositionModel,
    analyze,
    train_superposition,
)

FAST = dict(n_features=10, d_hidden=3, steps=600, batch_size=512)


def test_dense_features_get_one_dimension_each_and_the_rest_are_dropped():
    model = train_superposition(SuperpositionConfig(sparsity=0.0, importance_decay=0.7, **FAST))
    a = analyze(model)
    assert int(model.represented.sum()) == 3
    assert model.represented[:3].all()  # the three most important ones
    assert torch.allclose(a.dimensionality[:3], torch.ones(3), atol=0.05)
    assert a.dimensions_per_feature == pytest.approx(1.0, abs=0.1)


def test_sparse_features_go_into_superposition():
    model = train_superposition(SuperpositionConfig(sparsity=0.95, importance_decay=0.95, **FAST))
    a = analyze(model)
    assert int(model.represented.sum()) > 3
    assert a.dimensions_per_feature < 0.6
    assert float(a.superposition[model.represented].mean()) > 0.1


def test_analysis_of_known_geometries():
    pair = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # antipodal pair + one dedicated
    a = analyze(pair)
    assert torch.allclose(a.dimensionality, torch.tensor([0.5, 0.5, 1.0]))
    assert torch.allclose(a.superposition, torch.tensor([1.0, 1.0, 0.0]))
    assert a.dimensions_per_feature == pytest.approx(2 / 3)
    pentagon = torch.stack(
        [
            torch.tensor([math.cos(2 * math.pi * i / 5), math.sin(2 * math.pi * i / 5)])
            for i in range(5)
        ],
        1,
    )
    assert torch.allclose(analyze(pentagon).dimensionality, torch.full((5,), 0.4), atol=1e-5)


def test_ground_truth_and_hidden_site():
    model = SuperpositionModel(SuperpositionConfig(n_features=6, d_hidden=2, sparsity=0.5))
    fb = model.sample(32, 3)
    assert torch.allclose(fb.x, fb.coefficients @ model.W.detach().T)
    assert torch.equal(fb.active, fb.coefficients > 0)
    assert torch.allclose(fb.y, model(fb.coefficients).detach())
    hooked = wrap_module(model, ["hidden", "output"])
    _, cache = hooked.run_with_cache(fb.coefficients, [Site.module("hidden")])
    assert torch.allclose(cache[Site.module("hidden")], fb.x)


def test_training_is_seeded():
    a = train_superposition(
        SuperpositionConfig(n_features=5, d_hidden=2, steps=50, batch_size=64, seed=4)
    )
    b = train_superposition(
        SuperpositionConfig(n_features=5, d_hidden=2, steps=50, batch_size=64, seed=4)
    )
    assert torch.equal(a.W, b.W)


def test_bad_config():
    with pytest.raises(ConfigError, match="sparsity"):
        SuperpositionConfig(sparsity=1.0)


def test_save_load_keeps_weights_and_ground_truth(tmp_path):
    import json

    from interplab.errors import WeightsError
    from interplab.models.superposition import load_superposition, save_superposition

    model = train_superposition(
        SuperpositionConfig(n_features=6, d_hidden=2, steps=30, batch_size=64)
    )
    save_superposition(tmp_path / "toy", model)
    loaded = load_superposition(tmp_path / "toy")
    assert loaded.config == model.config and torch.equal(loaded.W, model.W)
    truth = json.loads((tmp_path / "toy" / "model.json").read_text())["ground_truth"]
    assert truth["represented"] == model.represented.tolist()
    (tmp_path / "toy" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="corrupt"):
        load_superposition(tmp_path / "toy")
    with pytest.raises(WeightsError, match="model.json"):
        load_superposition(tmp_path / "missing")
