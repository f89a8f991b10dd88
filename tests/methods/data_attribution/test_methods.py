"""Training-data attribution methods: shapes, agreement between solvers of the same quantity,
first-order predictions of real retraining, batching, and bad input."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.data_attribution import attribute_data
from interplab.methods.registry import names
from interplab.models.classifiers import margin, train_classifier
from tests.data_attribution_helpers import TINY_MLP, organism


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@pytest.fixture(scope="module")
def tiny():
    org = organism()
    d = org.data
    return org, (d.x_train, d.y_train), (d.x_test, d.y_test)


@pytest.mark.parametrize("method", names("data_attribution"))
def test_every_method_scores_every_pair(tiny, method):
    org, train, test = tiny
    att = attribute_data(org.model, train, test, method=method, self_influence=True)
    assert att.scores.shape == (12, 80) and torch.isfinite(att.scores).all()
    if method == "grad_cos":
        assert att.self_influence is None
    else:
        assert att.self_influence.shape == (80,) and torch.isfinite(att.self_influence).all()
    top = att.top(2, 5)
    assert len(top) == 5 and top[0][1] >= top[-1][1]


def test_cg_lissa_and_exact_solve_the_same_system_on_logistic_regression(tiny):
    """For logistic regression the Gauss-Newton matrix is the Hessian: three solvers, one answer."""
    org, train, test = tiny
    exact = attribute_data(org.model, train, test, method="if_exact").scores
    assert _corr(attribute_data(org.model, train, test, method="if_cg").scores, exact) > 0.999
    assert _corr(attribute_data(org.model, train, test, method="if_lissa").scores, exact) > 0.95
    assert _corr(attribute_data(org.model, train, test, method="ekfac").scores, exact) > 0.8
    assert _corr(attribute_data(org.model, train, test, method="grad_dot").scores, exact) < 0.99


def test_influence_predicts_leave_one_out_retraining(tiny):
    """tau(t, i) / n approximates the margin change when i is dropped (convex model): checked
    against real retraining for four training examples."""
    org, (x, y), (xt, yt) = tiny
    att = attribute_data(org.model, (x, y), (xt, yt), method="if_exact")
    full = margin(org.model.logits(xt), yt)
    predicted, actual = [], []
    for i in (0, 17, 42, 79):
        keep = torch.ones(len(x), dtype=torch.bool)
        keep[i] = False
        m = train_classifier(org.spec.classifier, x[keep], y[keep])
        with torch.no_grad():
            actual.append(full - margin(m.logits(xt), yt))
        predicted.append(att.scores[:, i] / len(x))
    assert _corr(torch.stack(predicted), torch.stack(actual)) > 0.9


def test_batching_does_not_change_scores(tiny):
    org, train, test = tiny
    for method in ("if_exact", "trak", "tracin"):
        a = attribute_data(org.model, train, test, method=method, batch_size=7, self_influence=True)
        b = attribute_data(
            org.model, train, test, method=method, batch_size=500, self_influence=True
        )
        assert torch.allclose(a.scores, b.scores, atol=1e-8) and torch.allclose(
            a.self_influence, b.self_influence
        )


def test_mlp_methods_run_and_exact_if_tracks_cg():
    org = organism(TINY_MLP)
    d = org.data
    train, test = (d.x_train, d.y_train), (d.x_test, d.y_test)
    exact = attribute_data(org.model, train, test, method="if_exact").scores
    assert exact.shape == (10, 60)
    assert _corr(attribute_data(org.model, train, test, method="if_cg").scores, exact) > 0.5


def test_bad_input_is_a_clear_error(tiny):
    org, train, test = tiny
    with pytest.raises(UnknownNameError, match="ekfac"):
        attribute_data(org.model, train, test, method="ekafc")
    with pytest.raises(ConfigError, match="test inputs must be"):
        attribute_data(org.model, train, (test[0][:, :5], test[1]), method="grad_dot")
    with pytest.raises(ConfigError, match="labels must lie"):
        attribute_data(org.model, train, (test[0], test[1] + 20), method="grad_dot")
    att = attribute_data(org.model, train, test, method="random")
    with pytest.raises(ConfigError, match="out of range"):
        att.top(12)
