"""The SHAP library's own explainers as rationales methods: the reference interplab is judged by.

    shap_kernel        shap.KernelExplainer(f, background).shap_values(x) at shap's defaults
                       (nsamples = 2·d + 2048, l1_reg = "num_features(10)": beyond 10 features
                       shap keeps only 10 non-zero values)
    shap_permutation   shap.PermutationExplainer(f, Independent(background)) at its defaults
                       (max_evals = 500), the whole background as the masker's data
    shap_tree          shap.TreeExplainer(estimator, background, feature_perturbation=
                       "interventional", model_output="raw"): exact interventional Shapley
                       values, for tree ensembles whose raw output is the log-odds (e.g.
                       gradient boosting); anything else is a ConfigError

``f`` is the model's logit (:meth:`DecisionModel.logit`), so every method returns
:class:`Attributions` in logit units against the background the caller passes, like
``kernel_shap``. shap is imported only inside these functions (it is a dev extra: importing
interplab never imports it); without it each raises ConfigError naming ``pip install shap``.
shap draws from numpy's global generator: each call seeds it with ``seed`` and restores it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from interplab.errors import ConfigError
from interplab.methods import registry
from interplab.methods.base import Cost
from interplab.methods.rationales.attribution import ATTRIBUTION_METRIC, Attributions
from interplab.methods.rationales.model import DecisionModel

Tensor = torch.Tensor
#: |Σ φ + base − score| above this means TreeExplainer's raw output is not the model's log-odds
ADDITIVITY_TOLERANCE = 1e-4


def _shap() -> Any:
    try:
        with warnings.catch_warnings():  # shap's import warns (matplotlib, numba deprecations)
            warnings.simplefilter("ignore")
            import shap
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "the shap_* methods need the SHAP library: pip install shap "
            "(or pip install 'interplab[dev]')"
        ) from exc
    return shap


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (shap's source of randomness), restoring it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)


def _prepare(model: DecisionModel, x: Tensor, baseline: Tensor) -> tuple[Tensor, np.ndarray, Any]:
    x = model.check_row(x)
    bg = torch.as_tensor(baseline, dtype=torch.float64)
    if bg.dim() != 2 or bg.shape[0] == 0 or bg.shape[1] != x.shape[0]:
        raise ConfigError(
            f"the background must be [rows ≥ 1, {x.shape[0]}] rows, got {tuple(bg.shape)}"
        )
    calls = {"rows": 0}

    def f(a: np.ndarray) -> np.ndarray:
        calls["rows"] += int(np.shape(a)[0])
        return model.logit(torch.as_tensor(np.asarray(a, dtype=np.float64))).numpy()

    f.calls = calls  # type: ignore[attr-defined]
    return x, bg.numpy(), f


def _attributions(
    method: str,
    model: DecisionModel,
    x: Tensor,
    values: np.ndarray,
    base: float,
    evaluations: int,
    start: float,
) -> Attributions:
    return Attributions(
        method=method,
        values=torch.as_tensor(np.asarray(values, dtype=np.float64).reshape(-1)),
        base=float(base),
        score=float(model.logit(x[None])[0]),
        signed=True,
        cost=Cost(evaluations=evaluations),
        seconds=time.perf_counter() - start,
        extra={"reference": "shap"},
    )


def _register(name: str) -> Any:
    return registry.register(
        "rationales", name, kind="method", cost_unit="evaluations", metric=ATTRIBUTION_METRIC
    )


@_register("shap_kernel")
def shap_kernel(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0, **shap_args: Any
) -> Attributions:
    """shap.KernelExplainer on the model's logit, at shap's defaults (``shap_args`` go to
    ``shap_values``: nsamples, l1_reg)."""
    shap = _shap()
    start = time.perf_counter()
    x, bg, f = _prepare(model, x, baseline)
    with _seeded(seed):
        explainer = shap.KernelExplainer(f, bg)
        values = explainer.shap_values(x[None].numpy(), silent=True, **shap_args)
    base = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    return _attributions("shap_kernel", model, x, values, base, f.calls["rows"], start)


@_register("shap_permutation")
def shap_permutation(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0, **shap_args: Any
) -> Attributions:
    """shap.PermutationExplainer on the model's logit at its defaults, the whole background as
    the masker's data (``shap_args`` go to the call: max_evals)."""
    shap = _shap()
    start = time.perf_counter()
    x, bg, f = _prepare(model, x, baseline)
    with _seeded(seed):
        masker = shap.maskers.Independent(bg, max_samples=bg.shape[0])
        explainer = shap.PermutationExplainer(f, masker, seed=seed)
        out = explainer(x[None].numpy(), silent=True, **shap_args)
    base = float(np.asarray(out.base_values).reshape(-1)[0])
    return _attributions("shap_permutation", model, x, out.values, base, f.calls["rows"], start)


def _estimator(model: DecisionModel) -> Any:
    """The predict_proba estimator the model wraps (:attr:`DecisionModel.estimator`)."""
    return model.estimator


@_register("shap_tree")
def shap_tree(model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0) -> Attributions:
    """shap.TreeExplainer, interventional, raw output: exact for a tree ensemble whose raw
    output is the log-odds (checked: the values must add up to the model's logit)."""
    shap = _shap()
    start = time.perf_counter()
    x, bg, _ = _prepare(model, x, baseline)
    est = _estimator(model)
    if est is None or model.module is not None:
        raise ConfigError(
            "shap_tree needs a tree-ensemble estimator wrapped with "
            "DecisionModel.from_predict_proba; use shap_kernel or kernel_shap for this model"
        )
    try:
        with _seeded(seed):
            explainer = shap.TreeExplainer(
                est, data=bg, feature_perturbation="interventional", model_output="raw"
            )
            values = np.asarray(explainer.shap_values(x[None].numpy(), check_additivity=False))
    except Exception as exc:  # shap raises its own InvalidModelError for non-tree models
        raise ConfigError(
            f"shap_tree cannot explain {type(est).__name__} (a tree ensemble is needed: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); use shap_kernel "
            "or kernel_shap"
        ) from None
    base = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    score = float(model.logit(x[None])[0])
    if values.size != x.shape[0] or abs(values.sum() + base - score) > ADDITIVITY_TOLERANCE:
        raise ConfigError(
            f"shap_tree: TreeExplainer's raw output for {type(est).__name__} is not the model's "
            "log-odds (e.g. a random forest averages probabilities), so its values would not "
            "be in logit units; use shap_kernel or kernel_shap"
        )
    return _attributions("shap_tree", model, x, values, base, bg.shape[0] + 1, start)
