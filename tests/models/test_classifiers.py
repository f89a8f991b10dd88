"""Classifiers retrained for data attribution: deterministic, converged, and the digit splits."""

from __future__ import annotations

import pytest
import torch

from interplab.data.digits import planted_digits
from interplab.errors import ConfigError
from interplab.models.classifiers import ClassifierSpec, objective, train_classifier, unflatten


@pytest.fixture(scope="module")
def small():
    return planted_digits(80, 10, 5, n_planted=4, seed=1)


def test_training_is_deterministic_and_logreg_reaches_its_minimum(small):
    spec = ClassifierSpec("logreg", steps=60, n_checkpoints=3)
    a = train_classifier(spec, small.x_train, small.y_train)
    b = train_classifier(spec, small.x_train, small.y_train)
    assert torch.equal(a.theta, b.theta) and len(a.checkpoints) == 3
    grad = torch.func.grad(lambda th: objective(spec, th, small.x_train, small.y_train))(a.theta)
    assert grad.norm() < 1e-5


def test_mlp_seed_changes_the_weights_and_layout_is_weight_then_bias(small):
    spec = ClassifierSpec("mlp", n_hidden=8, steps=20, lr=0.02)
    a = train_classifier(spec, small.x_train, small.y_train)
    b = train_classifier(
        ClassifierSpec("mlp", n_hidden=8, steps=20, lr=0.02, seed=1), small.x_train, small.y_train
    )
    assert not torch.equal(a.theta, b.theta)
    (w1, b1), (w2, b2) = unflatten(spec, a.theta)
    assert w1.shape == (8, 64) and b1.shape == (8,) and w2.shape == (10, 8) and b2.shape == (10,)
    manual = torch.tanh(small.x_test @ w1.T + b1) @ w2.T + b2
    assert torch.allclose(manual, a.logits(small.x_test))


def test_bad_training_data_is_a_clear_error(small):
    with pytest.raises(ConfigError, match="x \\[n, 64\\]"):
        train_classifier(ClassifierSpec(), small.x_train[:, :10], small.y_train)
    with pytest.raises(ConfigError, match="kind"):
        ClassifierSpec("svm")
