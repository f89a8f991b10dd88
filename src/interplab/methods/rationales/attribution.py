"""Per-feature attributions of one decision, in logit units: ``attribute(model, x, method=..., baseline=background)``.

An attribution says how much each feature moved this row's score (the logit of the positive
outcome) away from the average score of the ``background`` rows. Methods:

    oracle:linear_shap     exact interventional Shapley values of a model that is linear in its
                           encoded inputs (a TabularNet with no hidden layer): w · (enc(x) − mean
                           enc(background)), summed over each feature's columns
    kernel_shap            Kernel SHAP (Lundberg & Lee 2017), absent features taken from the
                           background rows, a weighted least-squares fit under the efficiency
                           constraint. All 2^d − 2 coalitions when they fit the budget (exact);
                           else the outer size levels enumerated (as shap does) and the rest
                           stratified by size and drawn as antithetic pairs (Covert & Lee 2021).
                           ``error``: 95 % CLT (HC3 sandwich) half-width of the sampled part,
                           plus background subsampling where the background exceeds the budget
                           (see :func:`kernel_shap`); all model rows in one batched call
    integrated_gradients   Sundararajan et al. 2017 in the encoded space, from the background's
                           mean encoding to the row's, summed per feature (needs a torch module;
                           a module without ``encode``/``head`` is integrated in its raw inputs)
    occlusion              score(x) − score(x with the feature set to its reference: the
                           background's median, or its most common category)
    permutation            global permutation importance: mean |Δ score| when the feature is
                           shuffled across the background rows (unsigned; the same for every row)
    random                 Gaussian noise (a control)
    shap_kernel, shap_permutation, shap_tree
                           the SHAP library's explainers on the same logit and background
                           (:mod:`interplab.methods.rationales.shap_reference`; needs shap)

Each method is registered in the ``rationales`` family with the call shape
``fn(model, x, *, baseline, seed=0, **settings) -> Attributions``; :func:`attribute` dispatches
through the registry. Cost: ``evaluations`` = rows the score function was evaluated on.
"""

from __future__ import annotations

import math
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
    method (``n_coalitions``, ``n_background``, ``max_evaluations``, ``steps``)."""
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
    score: float | None = None,
) -> Attributions:
    if score is None:
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
    logit_fn = model.logit_fn
    if logit_fn is None:  # a K-class model: binary methods need a contrast (model.versus)
        model.logit(torch.zeros(0, len(model.features)))  # raises the one-line error
        raise ConfigError("this model has no binary logit: pick a contrast with model.versus")
    return (lambda x: x), logit_fn, [[j] for j in range(len(model.features))]


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


#: coalitions per Kernel SHAP call by default: shap.KernelExplainer's "auto" budget is 2·d + 2048
EXTRA_COALITIONS = 2048
#: model rows one default Kernel SHAP call may evaluate (coalitions × background rows); see
#: kernel_shap for how it is split
MAX_EVALUATIONS = 1 << 16
#: model rows per call of the score function (memory bound for one batched evaluation)
MAX_BATCH_ROWS = 1 << 20
Z_975 = 1.959964
#: smallest 1 − leverage the HC3 variance divides by (a pair that alone decides a direction)
LEVERAGE_FLOOR = 0.05
#: relative float64 round-off bound added to kernel_shap's error (see kernel_shap)
ROUNDOFF = 1e-10


def _level_masses(d: int) -> Tensor:
    """μ(s), s = 0..d: the Shapley kernel's total mass on coalitions of size s (0 at s = 0, d),
    normalised to sum to 1. Each coalition of size s gets μ(s) / C(d, s)."""
    mu = torch.zeros(d + 1, dtype=torch.float64)
    s = torch.arange(1, d, dtype=torch.float64)
    mu[1:d] = 1.0 / (s * (d - s))
    return mu / mu.sum()


def _subsets(d: int, size: int) -> Tensor:
    """Every coalition of ``size`` features [C(d, size), d] (bool)."""
    idx = torch.combinations(torch.arange(d), size) if size > 0 else torch.zeros(1, 0).long()
    z = torch.zeros(idx.shape[0], d, dtype=torch.bool)
    z[torch.arange(idx.shape[0])[:, None], idx] = True
    return z


def _random_subsets(d: int, size: int, n: int, gen: torch.Generator) -> Tensor:
    ranks = torch.rand(n, d, generator=gen, dtype=torch.float64).argsort(1).argsort(1)
    return ranks < size


def shapley_design(d: int, budget: int, gen: torch.Generator) -> dict[str, Any]:
    """The coalitions a Kernel SHAP call evaluates and their regression weights.

    Size levels are taken in pairs {s, d − s} from the outside in (s = 1, 2, ...); a pair level
    is enumerated completely while the budget's kernel-proportional share for it covers all
    its coalitions (shap's rule), so with 2^d − 2 ≤ ``budget`` every coalition is enumerated
    and the result is exact. The rest of the budget is *stratified* over the remaining pair
    levels (pairs allocated in proportion to the kernel mass, at least two per level, so each
    level's variance can be estimated) and drawn as antithetic pairs (a uniform random
    coalition of size s and its complement). A sampled coalition of size s carries weight
    μ(s) / (its level's draws at size s): the stratified estimate of the full-enumeration
    sums, so the weighted least squares below estimates the exact (fully enumerated) solution.

    Returns ``z`` [n, d] bool, ``w`` [n] weights, ``n_enumerated`` (the first rows),
    ``stratum`` [n_pairs] (the level of each sampled pair: rows n_enumerated + 2i and
    n_enumerated + 2i + 1 are pair i and its complement), ``exact``.
    """
    mu = _level_masses(d)
    zs: list[Tensor] = []
    ws: list[Tensor] = []
    left, mass_left = budget, 1.0
    levels = list(range(1, d // 2 + 1))
    done = 0
    for s in levels:
        n_level = math.comb(d, s) * (1 if 2 * s == d else 2)
        m_level = float(mu[s] + (0 if 2 * s == d else mu[d - s]))
        fits_all = left >= 2**d - 2 - sum(z.shape[0] for z in zs)
        if not fits_all and (mass_left <= 0 or left * m_level / mass_left < n_level - 1e-8):
            break
        z = _subsets(d, s)
        zs += [z] if 2 * s == d else [z, ~z]
        ws += [
            torch.full(
                (z.shape[0] * (1 if 2 * s == d else 2),),
                float(mu[s]) / math.comb(d, s),
                dtype=torch.float64,
            )
        ]
        left -= n_level
        mass_left -= m_level
        done += 1
    n_enum = sum(z.shape[0] for z in zs)
    rest = levels[done:]
    strata: list[int] = []
    if rest:
        pairs = left // 2
        if pairs < 2 * len(rest):
            raise ConfigError(
                f"kernel_shap needs at least {n_enum + 4 * len(rest)} coalitions for {d} "
                f"features (2 pairs per unenumerated size level), got a budget of {budget}"
            )
        m = torch.tensor(
            [float(mu[s] + (0 if 2 * s == d else mu[d - s])) for s in rest], dtype=torch.float64
        )
        # two pairs per level, the rest in proportion to the kernel mass (largest remainders)
        share = (pairs - 2 * len(rest)) * m / m.sum()
        alloc = share.floor().long() + 2
        short = pairs - int(alloc.sum())
        if short > 0:
            alloc[(share - share.floor()).argsort(descending=True)[:short]] += 1
        for s, n in zip(rest, alloc.tolist()):
            z = _random_subsets(d, s, n, gen)
            both = torch.stack([z, ~z], 1).reshape(2 * n, d)  # pair, complement, pair, ...
            w_s = float(mu[s]) / (n if 2 * s != d else 2 * n)
            zs.append(both)
            ws.append(torch.full((2 * n,), w_s, dtype=torch.float64))
            strata += [s] * n
    return {
        "z": torch.cat(zs) if zs else torch.zeros(0, d, dtype=torch.bool),
        "w": torch.cat(ws) if ws else torch.zeros(0, dtype=torch.float64),
        "n_enumerated": n_enum,
        "stratum": torch.tensor(strata, dtype=torch.long),
        "exact": not rest,
    }


def _evaluate(model: DecisionModel, rows: Tensor) -> Tensor:
    """The model's logit on ``rows`` in as few calls as memory allows."""
    if rows.shape[0] <= MAX_BATCH_ROWS:
        return model.logit(rows)
    return torch.cat([model.logit(c) for c in rows.split(MAX_BATCH_ROWS)])


def _constrained_wls(
    z: Tensor, w: Tensor, y: Tensor, total: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """min Σ w (y − z·φ)² subject to Σ φ = total, for each column of ``y`` [n, k] / ``total`` [k].

    The constraint eliminates the last feature: φ_d = total − Σ_{j<d} φ_j, regressors
    a = z_{<d} − z_d. Returns φ [d, k], the reduced design a [n, d−1], H⁻¹ (H = aᵀ W a) and the
    residuals [n, k] (what the variance estimate needs)."""
    zf = z.double()
    a = zf[:, :-1] - zf[:, -1:]
    b = y - zf[:, -1:] * total[None, :]
    h = a.T @ (w[:, None] * a)
    h_inv = torch.linalg.pinv(h, hermitian=True)
    theta = h_inv @ (a.T @ (w[:, None] * b))
    resid = b - a @ theta
    phi = torch.cat([theta, total[None, :] - theta.sum(0, keepdim=True)])
    return phi, a, h_inv, resid


def _sampling_cov(design: dict[str, Any], a: Tensor, h_inv: Tensor, resid: Tensor) -> Tensor:
    """The sandwich (CLT) covariance [d, d] of φ from the sampled pairs: the enumerated rows are
    fixed; within each stratum the pairs are iid, so Var(Σ w a r) = Σ_strata n · Cov(u),
    u = a pair's summed w·a·r (HC3-corrected), and Var(θ) = H⁻¹ Var H⁻¹ (the weighted least
    squares' linearisation)."""
    ne, strata = design["n_enumerated"], design["stratum"]
    d = a.shape[1] + 1
    if strata.numel() == 0:
        return torch.zeros(d, d, dtype=torch.float64)
    w, a_s = design["w"][ne:], a[ne:]
    u = (w[:, None] * a_s * resid[ne:]).reshape(-1, 2, d - 1).sum(1)  # [pairs, d-1]
    # HC3: a pair's residuals shrink by its leverage h (the fit used it), so the plain sandwich
    # under-covers at small budgets (measured: 0.79-0.81 at 4·d coalitions); dividing by 1 − h
    # (the jackknife's leave-one-pair-out residual) restores it. The floor guards h → 1.
    lev = (w * ((a_s @ h_inv) * a_s).sum(1)).reshape(-1, 2).sum(1)
    u = u / (1 - lev).clamp_min(LEVERAGE_FLOOR)[:, None]
    meat = torch.zeros(d - 1, d - 1, dtype=torch.float64)
    for s in strata.unique().tolist():
        us = u[strata == s]
        c = us - us.mean(0)
        meat += c.T @ c * (us.shape[0] / (us.shape[0] - 1))
    cov_theta = h_inv @ meat @ h_inv
    m = torch.cat(
        [torch.eye(d - 1, dtype=torch.float64), -torch.ones(1, d - 1, dtype=torch.float64)]
    )
    return m @ cov_theta @ m.T


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
    n_coalitions: int | None = None,
    n_background: int | None = None,
    max_evaluations: int = MAX_EVALUATIONS,
) -> Attributions:
    """Kernel SHAP: exact enumeration where it fits, else enumerated outer size levels +
    stratified antithetic sampling; ``error`` is a 95 % CLT half-width (round-off where exact).

    Only the d features that vary between the row and the background are in play (the others
    get exactly 0). The cost is coalitions × background rows model evaluations; by default it
    is split so that the whole background is used whenever ``max_evaluations`` allows 4·d
    coalitions over it, with coalitions = min(2·d + 2048 (shap's "auto"), max_evaluations //
    rows). Why: averaging over a subsample of the background is usually the larger error (on
    credit-mlp, 100 of 600 rows × 2088 coalitions: background part ≈ 6× the coalition part of
    the half-width), so rows buy more accuracy than coalitions. With a small background (16
    rows) the default is shap's budget; with credit's 600 rows it is all rows × 109 coalitions
    (2^16 rows: ≈ 6× the old 10-replicate estimator's cost). ``n_coalitions`` /
    ``n_background`` override either side. A background larger than the rows used is
    subsampled (seeded, without replacement) and that subsampling's error (the per-row Shapley
    values' spread / √m, finite-population corrected) joins ``error``;
    ``extra["error_coalitions"]`` / ``extra["error_background"]`` hold the two parts.
    """
    x, background, start = _rows(model, x, baseline)
    gen = torch.Generator().manual_seed(seed)
    n_all, d = background.shape[0], x.shape[0]
    if n_all == 0:
        raise ConfigError("kernel_shap needs at least one background row")
    vary = torch.nonzero((background != x[None]).any(0)).flatten()
    dv = int(vary.numel())
    n_min = min(4 * dv, 2**dv - 2) if dv < 60 else 4 * dv
    if n_background is not None:
        m = max(1, min(n_all, n_background))
    else:
        m = max(1, min(n_all, max_evaluations // max(n_coalitions or n_min, 1)))
    subsampled = m < n_all
    bg = background[torch.randperm(n_all, generator=gen)[:m]] if subsampled else background
    if n_coalitions is not None:
        budget = n_coalitions
    else:
        budget = min(2 * dv + EXTRA_COALITIONS, max(n_min, max_evaluations // m))
    if dv >= 2:
        design = shapley_design(dv, budget, gen)
    else:  # 0 or 1 varying feature: efficiency alone decides
        design = {
            "z": torch.zeros(0, dv, dtype=torch.bool),
            "w": torch.zeros(0, dtype=torch.float64),
            "n_enumerated": 0,
            "stratum": torch.zeros(0, dtype=torch.long),
            "exact": True,
        }
    z = torch.ones(design["z"].shape[0], d, dtype=torch.bool)
    z[:, vary] = design["z"]
    n = z.shape[0]
    # one buffer, one model call: the row, the background, then every coalition × background row
    rows = torch.empty(1 + m + n * m, d, dtype=torch.float64)
    rows[0], rows[1 : 1 + m] = x, bg
    torch.where(z[:, None, :], x[None, None, :], bg[None, :, :], out=rows[1 + m :].view(n, m, d))
    out = _evaluate(model, rows)
    fx, fb, v = out[0], out[1 : 1 + m], out[1 + m :].reshape(n, m)
    values = torch.zeros(d, dtype=torch.float64)
    var = torch.zeros(d, dtype=torch.float64)
    if dv == 1:
        per_row = (fx - fb)[None, :]
        values[vary] = per_row.mean(1)
    elif dv >= 2:
        # per background row b: the game v_b(S) − f(b) with total f(x) − f(b); the estimate is
        # linear in the game, so the mean over b is Kernel SHAP against the whole background
        per_row, a, h_inv, resid = _constrained_wls(
            design["z"], design["w"], v - fb[None, :], fx - fb
        )
        values[vary] = per_row.mean(1)
        var[vary] = _sampling_cov(design, a, h_inv, resid.mean(1, keepdim=True)).diagonal()
    coalition_var = var.clone()
    if subsampled and dv >= 1:
        var[vary] += per_row.var(1) / m * (1 - m / n_all)
    base = float(fb.mean())
    # float64 round-off of the solve, relative to the game's range: the floor of any error
    # (an exactly enumerated or additive game is otherwise "exact" to 1e-15 noise)
    scale = float((fx - fb).abs().max()) if n == 0 else float((v - fb[None, :]).abs().max())
    roundoff = ROUNDOFF * max(scale, float((fx - fb).abs().max()))
    extra = {
        "coalitions": n,
        "enumerated": design["n_enumerated"],
        "exact": bool(design["exact"]) and not subsampled,
        "background_rows": m,
        "varying_features": dv,
        # the two parts of ``error`` (95 % half-widths): coalition sampling, background subsampling
        "error_coalitions": (Z_975 * coalition_var.sqrt()).tolist(),
        "error_background": (Z_975 * (var - coalition_var).clamp_min(0).sqrt()).tolist(),
    }
    return _result(
        "kernel_shap",
        model,
        x,
        values,
        base,
        n * m + m + 1,
        start,
        error=Z_975 * var.clamp_min(0).sqrt() + roundoff,
        score=float(fx),
        extra=extra,
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
