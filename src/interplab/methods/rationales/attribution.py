"""Per-feature attributions of one decision, in logit units: ``attribute(model, x, method=..., baseline=background)``.

An attribution says how much each feature moved this row's score (the logit of the positive
outcome) away from the average score of the ``background`` rows. Methods:

    oracle:linear_shap     exact interventional Shapley values of a model that is linear in its
                           encoded inputs (a TabularNet with no hidden layer): w · (enc(x) − mean
                           enc(background)), summed over each feature's columns
    kernel_shap            Kernel SHAP (Lundberg & Lee 2017): coalitions drawn from the Shapley
                           kernel (paired with their complements), absent features taken from
                           background rows, a least-squares fit under the efficiency constraint.
                           Run as GROUPS independent replicates, each with its own coalitions
                           and background rows; the value is their mean and ``error`` its 95 %
                           half-width (t with GROUPS − 1 degrees of freedom) — coalition *and*
                           background sampling error
    integrated_gradients   Sundararajan et al. 2017 in the encoded space, from the background's
                           mean encoding to the row's, summed per feature (needs a torch module;
                           a module without ``encode``/``head`` is integrated in its raw inputs)
    occlusion              score(x) − score(x with the feature set to its reference: the
                           background's median, or its most common category)
    permutation            global permutation importance: mean |Δ score| when the feature is
                           shuffled across the background rows (unsigned; the same for every row)
    random                 Gaussian noise (a control)

Each method is registered in the ``rationales`` family with the call shape
``fn(model, x, *, baseline, seed=0, **settings) -> Attributions``; :func:`attribute` dispatches
through the registry. Cost: ``evaluations`` = rows the score function was evaluated on.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch

from interplab.errors import ConfigError, unknown_name
from interplab.methods import registry
from interplab.methods.attribution.gradients import Attributions, path_gradient
from interplab.methods.base import Cost
from interplab.methods.rationales.model import DecisionModel

Tensor = torch.Tensor
#: The metric every attribution method of the family is registered with (what marks it as one).
ATTRIBUTION_METRIC = "top_k_recall"
GROUPS = 10
T_975 = 2.262  # Student t, 9 degrees of freedom


def attribution_methods() -> list[str]:
    """The registered attribution methods (and their baselines and oracle), sorted."""
    return [s.name for s in registry.specs("rationales") if s.metric == ATTRIBUTION_METRIC]


def attribute(
    model: DecisionModel,
    x: Tensor,
    *,
    method: str = "kernel_shap",
    baseline: Tensor,
    seed: int = 0,
    **settings: Any,
) -> Attributions:
    """Attribute ``model``'s score on the row ``x`` [feature] to its features against the
    reference population ``baseline`` [rows, feature] (see the module); ``settings`` go to the
    method (``n_coalitions``, ``n_background``, ``steps``)."""
    if method not in attribution_methods():
        raise unknown_name("attribution method", method, attribution_methods())
    return registry.get("rationales", method).fn(model, x, baseline=baseline, seed=seed, **settings)


def _result(
    method: str,
    model: DecisionModel,
    x: Tensor,
    values: Tensor,
    base: float,
    evaluations: int,
    start: float,
    *,
    error: Tensor | None = None,
    signed: bool = True,
    extra: dict | None = None,
) -> Attributions:
    score = float(model.logit(x[None])[0])
    return Attributions(
        method=method,
        values=values,
        base=base,
        score=score,
        signed=signed,
        error=error,
        cost=Cost(evaluations=evaluations),
        seconds=time.perf_counter() - start,
        extra=extra or {},
    )


def _rows(model: DecisionModel, x: Tensor, baseline: Tensor) -> tuple[Tensor, Tensor, float]:
    return model.check_row(x), baseline.double(), time.perf_counter()


def reference_row(model: DecisionModel, background: Tensor) -> Tensor:
    """Median for numeric features, the most common code for ordinal/categorical ones."""
    ref = background.median(0).values.clone()
    for j, f in enumerate(model.features):
        if f.discrete:
            ref[j] = torch.mode(background[:, j].round()).values
    return ref


def _encoder(model: DecisionModel) -> tuple:
    module = model.module
    if module is None:
        raise ConfigError(
            "this attribution method needs a torch model (DecisionModel.from_torch); "
            "for a predict_proba model use kernel_shap or occlusion"
        )
    if hasattr(module, "encode") and hasattr(module, "head") and hasattr(module, "groups"):
        return module.encode, module.head, module.groups
    return (lambda x: x), (lambda z: model.logit_fn(z)), [[j] for j in range(len(model.features))]


@registry.register(
    "rationales",
    "oracle:linear_shap",
    kind="oracle",
    cost_unit="evaluations",
    metric=ATTRIBUTION_METRIC,
)
def linear_shap(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0
) -> Attributions:
    """Exact interventional Shapley values of a model linear in its encoded inputs."""
    x, background, start = _rows(model, x, baseline)
    linear = getattr(model.module, "linear", None)
    if linear is None:
        raise ConfigError(
            "linear_shap is exact only for a model linear in its encoded inputs (a "
            "TabularNet with no hidden layer); use kernel_shap for this model"
        )
    encode, _, groups = _encoder(model)
    with torch.no_grad():
        contrib = linear.weight[0].double() * (encode(x[None])[0] - encode(background).mean(0))
        base = float(model.logit(background).mean())
    values = torch.stack([contrib[g].sum() for g in groups])
    return _result("oracle:linear_shap", model, x, values, base, background.shape[0], start)


def _shapley_coalitions(d: int, n: int, gen: torch.Generator) -> Tensor:
    """``n`` coalitions [n, d] (bool): sizes from the Shapley kernel, each paired with its complement."""
    sizes = torch.arange(1, d, dtype=torch.float64)
    weights = (d - 1) / (sizes * (d - sizes))
    half = max(1, n // 2)
    k = torch.multinomial(weights, half, replacement=True, generator=gen) + 1
    ranks = torch.rand(half, d, generator=gen).argsort(1).argsort(1)
    z = ranks < k[:, None]
    return torch.cat([z, ~z])


def _kernel_shap_once(
    model: DecisionModel, x: Tensor, bg: Tensor, z: Tensor
) -> tuple[Tensor, float]:
    c, m, d = z.shape[0], bg.shape[0], x.shape[0]
    inputs = torch.where(z[:, None, :], x[None, None, :], bg[None, :, :]).reshape(c * m, d)
    v = model.logit(inputs).reshape(c, m).mean(1)
    v0 = float(model.logit(bg).mean())
    total = float(model.logit(x[None])[0]) - v0
    zf = z.double()
    # efficiency: phi_d = total - sum_{j<d} phi_j; regress on the other d-1 columns
    a = zf[:, :-1] - zf[:, -1:]
    b = v - v0 - zf[:, -1] * total
    phi = torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
    return torch.cat([phi, (total - phi.sum())[None]]), v0


#: registers a black-box method: judged by its evaluations of the model's score
_black_box = partial(
    registry.register, "rationales", cost_unit="evaluations", metric=ATTRIBUTION_METRIC
)


@_black_box("kernel_shap", kind="method")
def kernel_shap(
    model: DecisionModel,
    x: Tensor,
    *,
    baseline: Tensor,
    seed: int = 0,
    n_coalitions: int = 64,
    n_background: int = 16,
) -> Attributions:
    """Kernel SHAP over GROUPS replicates; ``error`` is their 95 % half-width."""
    x, background, start = _rows(model, x, baseline)
    gen = torch.Generator().manual_seed(seed)
    d = x.shape[0]
    runs, bases = [], []
    for _ in range(GROUPS):
        bg = background[torch.randint(0, background.shape[0], (n_background,), generator=gen)]
        est, v0 = _kernel_shap_once(model, x, bg, _shapley_coalitions(d, n_coalitions, gen))
        runs.append(est)
        bases.append(v0)
    stack = torch.stack(runs)
    error = T_975 * stack.std(0) / GROUPS**0.5
    evals = GROUPS * (2 * (n_coalitions // 2) + 1) * n_background + 1
    return _result(
        "kernel_shap", model, x, stack.mean(0), sum(bases) / GROUPS, evals, start, error=error
    )


@registry.register(
    "rationales",
    "integrated_gradients",
    kind="method",
    cost_unit="evaluations",
    metric=ATTRIBUTION_METRIC,
    needs_gradients=True,
)
def integrated_gradients(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0, steps: int = 64
) -> Attributions:
    """Integrated gradients in the encoded space from the background's mean encoding."""
    x, background, start = _rows(model, x, baseline)
    encode, head, groups = _encoder(model)
    with torch.no_grad():
        z, z0 = encode(x[None]).double(), encode(background).double().mean(0, keepdim=True)
    grad, _ = path_gradient(head, z, z0, steps, batch_size=steps)
    contrib = ((z - z0) * grad)[0]
    with torch.no_grad():
        base = float(head(z0)[0])
    values = torch.stack([contrib[g].sum() for g in groups]).detach()
    return _result("integrated_gradients", model, x, values, base, steps, start)


@_black_box("occlusion", kind="method")
def occlusion(model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0) -> Attributions:
    """score(x) minus score(x with one feature set to the background's reference value)."""
    x, background, start = _rows(model, x, baseline)
    ref = reference_row(model, background)
    d = x.shape[0]
    rows = x.repeat(d, 1)
    rows[torch.arange(d), torch.arange(d)] = ref
    out = model.logit(torch.cat([x[None], rows, ref[None]]))
    return _result("occlusion", model, x, out[0] - out[1:-1], float(out[-1]), d + 2, start)


@_black_box("permutation", kind="baseline")
def permutation(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0
) -> Attributions:
    """Global permutation importance over the background (unsigned; the same for every row)."""
    x, background, start = _rows(model, x, baseline)
    gen = torch.Generator().manual_seed(seed)
    n, d = background.shape
    clean = model.logit(background)
    rows = background.repeat(d, 1, 1)
    for j in range(d):
        rows[j, :, j] = background[torch.randperm(n, generator=gen), j]
    moved = model.logit(rows.reshape(d * n, d)).reshape(d, n)
    values = (moved - clean).abs().mean(1)
    return _result(
        "permutation", model, x, values, float(clean.mean()), n * (d + 1), start, signed=False
    )


@_black_box("random", kind="baseline")
def random_attribution(
    model: DecisionModel, x: Tensor, *, baseline: Tensor, seed: int = 0
) -> Attributions:
    """Seeded Gaussian noise per feature (the control)."""
    x, background, start = _rows(model, x, baseline)
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(len(model.features), generator=gen, dtype=torch.float64)
    base = float(model.logit(background).mean())
    return _result("random", model, x, values, base, background.shape[0], start)
