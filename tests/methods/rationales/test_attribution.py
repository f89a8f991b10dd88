"""Attribution methods against exact truths."""

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.rationales import DecisionModel, attribute
from interplab.zoo.tabular import get


def _model(name):
    org = get(name)
    return org, DecisionModel.from_torch(org.model, org.features, outcomes=org.data.outcomes)


def test_exact_linear_shap_equals_the_oracle():
    org, model = _model("credit-linear")
    rows = org.test_rows[:20]
    oracle = org.true_attributions(rows)
    for i, x in enumerate(rows):
        a = attribute(model, x, method="oracle:linear_shap", baseline=org.background)
        assert float((a.values - oracle[i]).abs().max()) < 1e-6
        assert abs(float(a.values.sum()) - (a.score - a.base)) < 1e-9  # efficiency


def test_integrated_gradients_is_exact_on_a_linear_model():
    org, model = _model("credit-linear")
    x = org.test_rows[0]
    a = attribute(model, x, method="integrated_gradients", baseline=org.background)
    assert float((a.values - org.true_attributions(x[None])[0]).abs().max()) < 1e-6


def test_kernel_shap_is_within_its_reported_error():
    """Over 6 rows × 20 features: ≥ 90 % of the oracle values lie within the reported 95 %
    half-width, and none beyond three half-widths. (On this model, additive in its features,
    the least-squares fit is exact up to round-off; the sampled-error interval itself is
    checked in test_shapley_estimator.py.)"""
    org, model = _model("credit-linear")
    rows = org.test_rows[:6]
    oracle = org.true_attributions(rows)
    within, worst = 0, 0.0
    for i, x in enumerate(rows):
        a = attribute(model, x, method="kernel_shap", baseline=org.background, seed=i)
        err = (a.values - oracle[i]).abs()
        within += int((err <= a.error).sum())
        worst = max(worst, float((err / a.error.clamp_min(1e-12)).max()))
    assert within / oracle.numel() >= 0.9
    assert worst < 3.0


def test_random_and_occlusion_are_not_the_oracle():
    org, model = _model("credit-linear")
    x = org.test_rows[0]
    truth = org.true_attributions(x[None])[0]
    r = attribute(model, x, method="random", baseline=org.background, seed=1)
    assert float((r.values - truth).abs().max()) > 0.1
    assert not torch.equal(
        r.values, attribute(model, x, method="random", baseline=org.background, seed=2).values
    )


def test_permutation_is_global_and_unsigned():
    org, model = _model("credit-linear")
    a = attribute(model, org.test_rows[0], method="permutation", baseline=org.background)
    b = attribute(model, org.test_rows[1], method="permutation", baseline=org.background)
    assert torch.equal(a.values, b.values) and bool((a.values >= 0).all()) and not a.signed


def test_linear_shap_refuses_a_nonlinear_model():
    org, model = _model("credit-rule")
    with pytest.raises(ConfigError, match="linear"):
        attribute(model, org.test_rows[0], method="oracle:linear_shap", baseline=org.background)


def test_gradient_method_needs_a_torch_model_and_unknown_method_is_named():
    org, _ = _model("credit-linear")
    plain = DecisionModel(org.features, lambda x: org.model(x))
    with pytest.raises(ConfigError, match="torch model"):
        attribute(plain, org.test_rows[0], method="integrated_gradients", baseline=org.background)
    with pytest.raises(UnknownNameError, match="kernel_shap"):
        attribute(plain, org.test_rows[0], method="kernel_shapp", baseline=org.background)
