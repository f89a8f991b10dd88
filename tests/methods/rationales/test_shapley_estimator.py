"""kernel_shap's estimator against exact Shapley values computed here, independently of it."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError
from interplab.methods.rationales import DecisionModel, attribute
from interplab.methods.rationales.attribution import shapley_design


def _features(d: int) -> list[Feature]:
    return [Feature(f"x{j}", "numeric", low=-10.0, high=10.0) for j in range(d)]


def _nonlinear(d: int, seed: int = 0) -> DecisionModel:
    """A small fixed MLP-like score with interactions: far from additive."""
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d, 8, generator=gen, dtype=torch.float64)
    w2 = torch.randn(8, generator=gen, dtype=torch.float64)

    def logit(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ w1) @ w2 + x[:, 0] * x[:, 1]

    return DecisionModel(_features(d), logit)


def _brute_force(model: DecisionModel, x: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """φ_j = Σ_{S ∌ j} |S|!(d−|S|−1)!/d! (v(S ∪ j) − v(S)), v(S) = mean_b f(x_S, b_rest), over
    every coalition S (mask i has feature j when bit j of i is set)."""
    d = x.shape[0]
    codes = torch.arange(2**d)
    masks = (codes[:, None] >> torch.arange(d)) & 1 == 1
    rows = torch.where(masks[:, None, :], x, bg[None]).reshape(-1, d)
    v = model.logit(rows).reshape(2**d, -1).mean(1)
    size = masks.sum(1)
    fact = [math.factorial(k) for k in range(d + 1)]
    weight = torch.tensor(
        [fact[k] * fact[d - k - 1] / fact[d] for k in range(d)], dtype=torch.float64
    )
    phi = torch.zeros(d, dtype=torch.float64)
    for j in range(d):
        without = codes[~masks[:, j]]
        phi[j] = (weight[size[without]] * (v[without + 2**j] - v[without])).sum()
    return phi


def _data(d: int, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_exact_enumeration_equals_brute_force_shapley():
    model, bg = _nonlinear(6), _data(6, 5, 1)
    for i, x in enumerate(_data(6, 3, 2)):
        a = attribute(model, x, method="kernel_shap", baseline=bg, seed=i)
        assert a.extra["exact"] and a.extra["coalitions"] == 2**6 - 2
        truth = _brute_force(model, x, bg)
        assert float((a.values - truth).abs().max()) < 1e-8
        assert float(a.error.max()) < 1e-8  # only round-off: nothing was sampled


def test_sampled_design_is_exact_on_a_linear_logit():
    """A linear logit is an additive game: any full-rank design recovers its exact values
    w_j (x_j − mean bg_j), even when most coalitions are sampled (d = 14, 200 of 16382)."""
    d = 14
    w = torch.linspace(-2.0, 2.0, d, dtype=torch.float64)
    model = DecisionModel(_features(d), lambda x: x @ w + 0.3)
    bg, x = _data(d, 16, 10), _data(d, 1, 11)[0]
    a = attribute(model, x, method="kernel_shap", baseline=bg, n_coalitions=200)
    assert not a.extra["exact"] and a.extra["enumerated"] < 200
    assert float((a.values - w * (x - bg.mean(0))).abs().max()) < 1e-8


def test_sampled_estimate_is_within_its_interval_and_the_interval_is_informative():
    """d = 10 with 128 of the 1022 coalitions: over 8 rows × 10 features the exact values lie
    within the reported 95 % half-width at least as often as a binomial(80, 0.95) count's
    3-sigma lower bound allows, none beyond 3 half-widths; the half-width is smaller than the
    values it bounds (a trivially wide interval would also cover) and shrinks ~1/√budget."""
    d = 10
    model, bg = _nonlinear(d, 3), _data(d, 8, 4)
    rows = _data(d, 8, 5)
    within, n, worst, widths, sizes, wider = 0, 0, 0.0, [], [], []
    for i, x in enumerate(rows):
        truth = _brute_force(model, x, bg)
        a = attribute(model, x, method="kernel_shap", baseline=bg, seed=i, n_coalitions=128)
        assert not a.extra["exact"]
        err = (a.values - truth).abs()
        within += int((err <= a.error).sum())
        n += d
        worst = max(worst, float((err / a.error).max()))
        widths.append(float(a.error.mean()))
        sizes.append(float(truth.abs().mean()))
        big = attribute(model, x, method="kernel_shap", baseline=bg, seed=i, n_coalitions=512)
        wider.append(float(a.error.mean() / big.error.mean()))
    p = 0.95
    assert within / n >= p - 3 * math.sqrt(p * (1 - p) / n)
    assert worst < 3.0
    assert sum(widths) < sum(sizes)
    # 4× the budget: the half-width should fall by about 2 (it also drops the enumerated part)
    assert np.median(wider) > 1.5


def test_efficiency_holds_and_constant_features_get_zero():
    model, bg = _nonlinear(12), _data(12, 30, 6)
    x = _data(12, 1, 7)[0]
    bg[:, 5] = x[5]  # feature 5 never differs from the row: its value is exactly 0
    for kw in ({}, {"n_coalitions": 100}, {"n_background": 10}):
        a = attribute(model, x, method="kernel_shap", baseline=bg, seed=1, **kw)
        assert abs(float(a.values.sum()) - (a.score - a.base)) < 1e-9
        assert float(a.values[5]) == 0.0 and a.extra["varying_features"] == 11


def test_background_subsampling_error_joins_the_interval():
    model, bg = _nonlinear(6), _data(6, 400, 8)
    x = _data(6, 1, 9)[0]
    a = attribute(model, x, method="kernel_shap", baseline=bg, seed=0, n_background=40)
    assert a.extra["background_rows"] == 40 and not a.extra["exact"]
    assert min(a.extra["error_background"]) > 0
    full = attribute(model, x, method="kernel_shap", baseline=bg, seed=0)
    assert full.extra["background_rows"] == 400 and max(full.extra["error_background"]) == 0


def test_design_weights_and_budget():
    gen = torch.Generator().manual_seed(0)
    for d, budget in ((8, 254), (12, 300), (20, 2088)):
        design = shapley_design(d, budget, gen)
        assert design["z"].shape[0] == min(budget - budget % 2, 2**d - 2)
        assert abs(float(design["w"].sum()) - 1.0) < 1e-12  # the kernel's whole mass
        pairs = design["z"][design["n_enumerated"] :].reshape(-1, 2, d)
        assert bool((pairs[:, 0] == ~pairs[:, 1]).all())  # antithetic
    with pytest.raises(ConfigError, match="coalitions"):
        shapley_design(30, 50, gen)


# ----------------------------------------------------------------------------- shap as methods
def test_shap_methods_are_registered_and_import_shap_lazily():
    import ast

    from interplab.methods.rationales import attribution_methods, shap_reference

    assert {"shap_kernel", "shap_permutation", "shap_tree"} <= set(attribution_methods())
    tree = ast.parse(Path(shap_reference.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {getattr(n, "module", "") for n in top}
    assert not any(str(name).split(".")[0] == "shap" for name in names)


def test_shap_methods_without_shap_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "shap", None)  # makes `import shap` raise ImportError
    model, bg = _nonlinear(4), _data(4, 5, 0)
    for method in ("shap_kernel", "shap_permutation", "shap_tree"):
        with pytest.raises(ConfigError, match="pip install shap"):
            attribute(model, bg[0], method=method, baseline=bg)


@pytest.mark.filterwarnings("ignore")
def test_shap_explainers_agree_with_exact_values_on_a_linear_logit():
    pytest.importorskip("shap")
    d = 5
    w = torch.tensor([1.5, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    model = DecisionModel(_features(d), lambda x: x @ w - 1.0)
    bg, x = _data(d, 12, 20), _data(d, 1, 21)[0]
    truth = w * (x - bg.mean(0))
    for method in ("shap_kernel", "shap_permutation", "kernel_shap"):
        a = attribute(model, x, method=method, baseline=bg, seed=0)
        assert float((a.values - truth).abs().max()) < 1e-6, method
        assert abs(a.base - float(model.logit(bg).mean())) < 1e-9
        assert abs(a.score - float(model.logit(x[None])[0])) < 1e-12
    with pytest.raises(ConfigError, match="tree-ensemble"):
        attribute(model, x, method="shap_tree", baseline=bg)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_shap_tree_equals_exact_enumeration_on_gradient_boosting():
    pytest.importorskip("shap")
    ensemble = pytest.importorskip("sklearn.ensemble")
    xs = _data(6, 300, 30).numpy()
    y = (xs[:, 0] * xs[:, 1] + xs[:, 2] > 0).astype(int)
    est = ensemble.GradientBoostingClassifier(n_estimators=30, random_state=0).fit(xs, y)
    model = DecisionModel.from_predict_proba(est, _features(6))
    bg = torch.as_tensor(xs[:16])
    for x in torch.as_tensor(xs[20:23]):
        tree = attribute(model, x, method="shap_tree", baseline=bg)
        ours = attribute(model, x, method="kernel_shap", baseline=bg)
        assert ours.extra["exact"]
        assert float((tree.values - ours.values).abs().max()) < 1e-6  # shap's float32 trees
    forest = ensemble.RandomForestClassifier(10, random_state=0).fit(xs, y)
    with pytest.raises(ConfigError, match="log-odds"):
        attribute(
            DecisionModel.from_predict_proba(forest, _features(6)),
            bg[0],
            method="shap_tree",
            baseline=bg,
        )
