"""Edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG).

With ablation strengths ``a`` ([n_edges], see :mod:`.engine`), the metric m(a) is a smooth
function of ``a``; m(0) is the clean run and m(1) the fully ablated one.

    EAP     score_e = |d m / d a_e| at a = 0  =  |(A_s - S_s) · d m / d x_r|
            passes: 1 forward for the ablation source (none for zero), 1 forward, 1 backward.
    EAP-IG  score_e = |mean_k d m / d a_e at a = (k - 1/2)/steps · 1|   (midpoint Riemann sum of
            the straight path from clean to fully ablated; the signed scores sum to
            m(1) - m(0) as steps grow). passes: 1 + steps forwards, steps backwards.

kl and l2 have zero gradient at the clean run, so EAP needs logit_diff (or a callable);
EAP-IG works with any differentiable metric.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.errors import ConfigError
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.scores import EdgeScores
from interplab.methods.circuits.task import CircuitTask, MetricSpec, select_outputs

Tensor = torch.Tensor


def _check_differentiable(eng: EdgePatcher, method: str) -> None:
    if not eng.metric.differentiable:
        raise ConfigError(
            f"{method} needs a differentiable metric; {eng.metric.name!r} is not. "
            "Use metric='logit_diff' (or 'kl'/'l2' with eap_ig)"
        )


def eap(
    model: Any,
    task: CircuitTask,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "logit_diff",
    graph: Circuit | None = None,
    signed: bool = False,
) -> EdgeScores:
    """Edge attribution patching: every edge from one gradient. ``signed=True`` keeps the sign
    (positive = ablating the edge raises the metric)."""
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    eng.ablated()  # the ablation source (1 forward; for zero/mean it is the clean run)
    strength = torch.zeros(eng.n_edges, requires_grad=True)
    logits = eng.run(strength, grad=True)
    if eng._clean_logits is None:
        eng._clean_logits = logits.detach()  # a = 0 is the clean run: no extra pass needed
    _check_differentiable(eng, "EAP")
    if eng.metric.distance:
        raise ConfigError(
            f"EAP with metric {eng.metric.name!r}: its gradient is zero at the clean "
            "run, so every edge would score 0. Use metric='logit_diff', or eap_ig"
        )
    grad = eng.backward(eng.metric(select_outputs(logits, task)), strength)
    values = grad if signed else grad.abs()
    return EdgeScores(
        {e: float(values[i]) for i, e in enumerate(eng.index.edges)},
        "eap",
        ablation,
        eng.metric.name,
        eng.counter.forward,
        eng.counter.backward,
        time.perf_counter() - start,
    )


def eap_ig(
    model: Any,
    task: CircuitTask,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "logit_diff",
    steps: int = 5,
    graph: Circuit | None = None,
    signed: bool = False,
) -> EdgeScores:
    """EAP with integrated gradients over the patch direction, ``steps`` midpoints.
    ``extra["sum_check"]`` = (sum of signed scores, m(1) - m(0)) when both are known."""
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    eng.ablated()
    _check_differentiable(eng, "EAP-IG")
    total = torch.zeros(eng.n_edges)
    for k in range(steps):
        strength = torch.full((eng.n_edges,), (k + 0.5) / steps, requires_grad=True)
        value = eng.score(strength, grad=True)
        total += eng.backward(value, strength)
    mean = total / steps
    values = mean if signed else mean.abs()
    return EdgeScores(
        {e: float(values[i]) for i, e in enumerate(eng.index.edges)},
        "eap_ig",
        ablation,
        eng.metric.name,
        eng.counter.forward,
        eng.counter.backward,
        time.perf_counter() - start,
        {"steps": steps, "signed_sum": float(mean.sum())},
    )
