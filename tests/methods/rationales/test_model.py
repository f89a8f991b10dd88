"""DecisionModel: torch and predict_proba models, and bad input."""

import numpy as np
import pytest
import torch

from interplab.errors import ConfigError, ShapeError, UnknownNameError
from interplab.methods.rationales import DecisionModel, explain, find_recourse
from interplab.zoo.tabular import get


class _Proba:
    """A scikit-learn-style classifier wrapping a logit function."""

    def __init__(self, fn, broken=False):
        self.fn, self.broken = fn, broken

    def predict_proba(self, x):
        p = 1 / (1 + np.exp(-self.fn(torch.as_tensor(x)).detach().numpy()))
        return np.stack([1 - p, p], 1) * (3.0 if self.broken else 1.0)


def test_predict_proba_model_gives_the_same_logits_as_the_torch_one():
    org = get("credit-linear")
    torch_model = DecisionModel.from_torch(org.model, org.features)
    proba_model = DecisionModel.from_predict_proba(_Proba(org.model), org.features)
    x = org.test_rows[:10]
    assert torch.allclose(torch_model.logit(x), proba_model.logit(x), atol=1e-6)
    r = explain(proba_model, x[0], baseline=org.background)
    assert r.claims and r.attributions.method == "kernel_shap"


def test_output_that_is_not_a_probability_is_refused():
    org = get("credit-linear")
    broken = DecisionModel.from_predict_proba(_Proba(org.model, broken=True), org.features)
    with pytest.raises(ConfigError, match="not a probability"):
        broken.logit(org.test_rows[:3])
    as_proba = DecisionModel.from_torch(org.model, org.features, output="probability")
    with pytest.raises(ConfigError, match="not a probability"):
        as_proba.logit(org.test_rows[:50])  # logits outside [0, 1] declared as probabilities
    with pytest.raises(ConfigError, match="predict_proba"):
        DecisionModel.from_predict_proba(object(), org.features)


def test_bad_rows_and_unknown_feature_names():
    org = get("credit-linear")
    model = DecisionModel.from_torch(org.model, org.features)
    with pytest.raises(ShapeError, match="20 features"):
        model.check_row(torch.zeros(19))
    bad = org.test_rows[0].clone()
    bad[0] = 7  # checking account has 4 categories
    with pytest.raises(ConfigError, match="checking_account"):
        explain(model, bad, baseline=org.background)
    with pytest.raises(UnknownNameError, match="duration"):
        find_recourse(model, org.test_rows[0], baseline=org.background, vary=("duraton",))


def test_any_torch_module_with_two_class_logits_is_explained():
    org = get("credit-linear")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
    ).double()
    model = DecisionModel.from_torch(net, org.features)
    x = org.test_rows[0]
    out = net(x[None])
    assert torch.allclose(model.logit(x[None]), out[:, 1] - out[:, 0])
    from interplab.methods.rationales import attribute

    ig = attribute(model, x, method="integrated_gradients", baseline=org.background)
    assert ig.values.shape == (20,) and bool(torch.isfinite(ig.values).all())
    r = explain(model, x, baseline=org.background, method="integrated_gradients")
    assert len(r.claims) + len(r.dropped) > 0
