"""Side by side with the SHAP library (a dev extra): same model, rows and background."""

import numpy as np
import pytest
import torch

from interplab.eval.rationales import spearman
from interplab.methods.rationales import DecisionModel, attribute
from interplab.zoo.tabular import get

shap = pytest.importorskip("shap")


def _explainer(model, bg):
    return shap.KernelExplainer(lambda a: model.logit(torch.as_tensor(a)).numpy(), bg.numpy())


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"
)
def test_exact_linear_shap_equals_shap_kernel_explainer():
    org = get("credit-linear")
    model = DecisionModel.from_torch(org.model, org.features)
    bg, rows = org.background[:40], org.test_rows[:3]
    theirs = _explainer(model, bg).shap_values(
        rows.numpy(), nsamples=1024, silent=True, l1_reg=False
    )
    for i, x in enumerate(rows):
        ours = attribute(model, x, method="oracle:linear_shap", baseline=bg).values.numpy()
        assert np.abs(np.asarray(theirs)[i] - ours).max() < 1e-6


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"
)
def test_kernel_shap_agrees_with_shap_on_an_mlp():
    org = get("credit-mlp")
    model = DecisionModel.from_torch(org.model, org.features)
    bg, rows = org.background[:40], org.test_rows[:4]
    theirs = np.asarray(
        _explainer(model, bg).shap_values(rows.numpy(), nsamples=2048, silent=True, l1_reg=False)
    )
    for i, x in enumerate(rows):
        ours = attribute(
            model, x, method="kernel_shap", baseline=bg, seed=i, n_coalitions=128
        ).values
        assert spearman(ours, torch.tensor(theirs[i])) > 0.85
