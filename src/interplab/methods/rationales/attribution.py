"""Per-feature attributions of one decision, in logit units: ``attribute(method, model, x, background)``.

An attribution says how much each feature moved this row's score (the logit of the positive
outcome) away from the average score of the ``background`` rows. Methods:

    linear_shap            exact interventional Shapley values of a model that is linear in its
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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from interplab.errors import ConfigError, unknown_name
from interplab.methods.rationales.model import DecisionModel

Tensor = torch.Tensor
METHODS = (
    "linear_shap",
    "kernel_shap",
    "integrated_gradients",
    "occlusion",
    "permutation",
    "random",
)
GROUPS = 10
T_975 = 2.262  # Student t, 9 degrees of freedom


@dataclass(frozen=True)
class Attributions:
    """``values`` [feature] in logit units; ``error`` [feature] a 95 % half-width where estimated."""

    method: str
    values: Tensor
    base: float  # the background's mean score (values sum to score(x) - base for exact methods)
    score: float
    signed: bool = True
    error: Tensor | None = None
    evaluations: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def attribute(
    method: str,
    model: DecisionModel,
    x: Tensor,
    background: Tensor,
    *,
    seed: int = 0,
    n_coalitions: int = 64,
    n_background: int = 16,
    steps: int = 64,
) -> Attributions:
    """Attribute ``model``'s score on the row ``x`` [feature] to its features (see the module)."""
    if method not in METHODS:
        raise unknown_name("attribution method", method, METHODS)
    x = model.check_row(x)
    background = background.double()
    start = time.perf_counter()
    score = float(model.logit(x[None])[0])
    if method == "linear_shap":
        values, base, extra = _linear_shap(model, x, background)
    elif method == "kernel_shap":
        values, base, extra = _kernel_shap(model, x, background, seed, n_coalitions, n_background)
    elif method == "integrated_gradients":
        values, base, extra = _integrated_gradients(model, x, background, steps)
    elif method == "occlusion":
        values, base, extra = _occlusion(model, x, background)
    elif method == "permutation":
        values, base, extra = _permutation(model, background, seed)
    else:
        gen = torch.Generator().manual_seed(seed)
        values = torch.randn(len(model.features), generator=gen, dtype=torch.float64)
        base, extra = float(model.logit(background).mean()), {"evaluations": background.shape[0]}
    return Attributions(
        method,
        values,
        base,
        score,
        method != "permutation",
        extra.pop("error", None),
        int(extra.pop("evaluations", 0)),
        time.perf_counter() - start,
        extra,
    )


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


def _linear_shap(model: DecisionModel, x: Tensor, background: Tensor) -> tuple[Tensor, float, dict]:
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
    return (
        torch.stack([contrib[g].sum() for g in groups]),
        base,
        {"evaluations": background.shape[0]},
    )


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


def _kernel_shap(
    model: DecisionModel,
    x: Tensor,
    background: Tensor,
    seed: int,
    n_coalitions: int,
    n_background: int,
) -> tuple[Tensor, float, dict]:
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
    return stack.mean(0), sum(bases) / GROUPS, {"error": error, "evaluations": evals}


def _integrated_gradients(
    model: DecisionModel, x: Tensor, background: Tensor, steps: int
) -> tuple[Tensor, float, dict]:
    encode, head, groups = _encoder(model)
    with torch.no_grad():
        z, z0 = encode(x[None])[0].double(), encode(background).double().mean(0)
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    path = (z0 + alphas[:, None] * (z - z0)).requires_grad_(True)
    with torch.enable_grad():
        grads = torch.autograd.grad(head(path).sum(), path)[0]
    contrib = (z - z0) * grads.mean(0)
    with torch.no_grad():
        base = float(head(z0[None])[0])
    return torch.stack([contrib[g].sum() for g in groups]).detach(), base, {"evaluations": steps}


def _occlusion(model: DecisionModel, x: Tensor, background: Tensor) -> tuple[Tensor, float, dict]:
    ref = reference_row(model, background)
    d = x.shape[0]
    rows = x.repeat(d, 1)
    rows[torch.arange(d), torch.arange(d)] = ref
    out = model.logit(torch.cat([x[None], rows, ref[None]]))
    return out[0] - out[1:-1], float(out[-1]), {"evaluations": d + 2}


def _permutation(model: DecisionModel, background: Tensor, seed: int) -> tuple[Tensor, float, dict]:
    gen = torch.Generator().manual_seed(seed)
    n, d = background.shape
    clean = model.logit(background)
    rows = background.repeat(d, 1, 1)
    for j in range(d):
        rows[j, :, j] = background[torch.randperm(n, generator=gen), j]
    moved = model.logit(rows.reshape(d * n, d)).reshape(d, n)
    return (moved - clean).abs().mean(1), float(clean.mean()), {"evaluations": n * (d + 1)}
