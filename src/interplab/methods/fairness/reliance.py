"""Does a tabular classifier rely on a protected attribute, and through which input features?

Every test is given what an auditor has: the model, ``n`` applicant rows ``x`` [n, feature]
(raw units, as :mod:`interplab.data.tabular` describes), each row's protected group ``group``
[n] (1 = in the protected group) and, for the error-rate gaps, the rows' real outcomes. The
protected attribute itself is not an input of the model: reliance, if any, runs through other
features (proxies). Each test returns a per-feature score (how much the feature carries the
protected attribute into decisions; larger = more suspect) and/or one reliance score for the
model, plus the model queries it spent (one query = one row through the model).

White-box (the model's insides):

    attribution_gaps   integrated gradients in the encoded space (from the rows' mean encoding
                       to each row), summed per feature; a feature's score is the gap between the
                       groups' mean attributions (logit units); reliance = the largest |gap|
    erasure_test       LEACE (:func:`interplab.methods.erasure.fit_leace`) erases the group from
                       the hidden layer; reliance = share of decisions that change; a feature's
                       score = |input-gradient of the group probe direction × (input − mean)|

Black-box and data-only:

    swap_effects       per feature: mean decision with the feature's value drawn from the
                       protected group's values minus the same drawn from the other group's
                       (everything else kept; exact over the values seen); reliance = the
                       largest |effect|
    group_gaps         demographic-parity gap of the decisions (and equalised-odds gap with
                       outcomes): reliance = the parity gap
    correlation_screen a feature's |correlation| with the group (√R² of the group on the
                       feature's encoding); uses no model at all

Works with any model that maps raw rows to one logit; the white-box tests need a torch module
with ``encode`` (rows -> encoded columns), ``groups`` (encoded columns per feature) and ``net``
(an ``nn.Sequential`` whose last layer is the readout), as
:class:`~interplab.models.tabular.TabularNet` has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError, ShapeError
from interplab.methods.erasure import fit_leace

Tensor = torch.Tensor
Decide = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class RelianceResult:
    """One test's answer: ``reliance`` (one number, larger = more reliant), ``feature_scores``
    [feature] (None for a test that names no feature), ``queries`` spent, and ``extra`` facts."""

    method: str
    reliance: float
    feature_scores: Tensor | None
    queries: int
    extra: dict[str, Any] = field(default_factory=dict)


def _check(x: Tensor, group: Tensor) -> tuple[Tensor, Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64)
    g = torch.as_tensor(group).flatten().long()
    if x.ndim != 2 or x.shape[0] != g.shape[0]:
        raise ShapeError(
            f"rows must be [n, feature] with one group per row; got {tuple(x.shape)} "
            f"rows and {g.shape[0]} groups"
        )
    n1 = int(g.sum())
    if n1 < 2 or n1 > g.shape[0] - 2:
        raise ConfigError(
            f"both groups need at least 2 rows to compare; got {n1} of {g.shape[0]} in the "
            "protected group"
        )
    return x, g


def group_gaps(decisions: Tensor, group: Tensor, outcome: Tensor | None = None) -> dict[str, float]:
    """``parity_gap`` |P(approve | protected) − P(approve | other)| of 0/1 ``decisions``, and with
    real ``outcome`` the ``equalised_odds_gap`` (the larger of the groups' gaps in true- and
    false-positive rates; a rate with no rows counts 0)."""
    d = torch.as_tensor(decisions).flatten().double()
    g = torch.as_tensor(group).flatten().bool()
    out = {"parity_gap": float((d[g].mean() - d[~g].mean()).abs())}
    if outcome is not None:
        y = torch.as_tensor(outcome).flatten().bool()
        gaps = []
        for cls in (True, False):
            a, b = d[g & (y == cls)], d[~g & (y == cls)]
            gaps.append(float((a.mean() - b.mean()).abs()) if len(a) and len(b) else 0.0)
        out["equalised_odds_gap"] = max(gaps)
    return out


def parity_audit(
    decide: Decide, x: Tensor, group: Tensor, outcome: Tensor | None = None
) -> RelianceResult:
    """The fairness-metric audit: reliance = the parity gap of the model's decisions on ``x``."""
    x, g = _check(x, group)
    gaps = group_gaps(decide(x).long(), g, outcome)
    return RelianceResult("parity_audit", gaps["parity_gap"], None, int(x.shape[0]), gaps)


def _r2(col: Tensor, g: Tensor, feature: Feature) -> float:
    """R² of the 0/1 group ``g`` regressed on one feature: for a categorical feature the share
    of the group's variance between its categories (least squares on the one-hot encoding),
    else the squared correlation. Closed form, so equal columns give exactly equal scores."""
    gy = g.double() - g.double().mean()
    total = float(gy.square().sum())
    if total <= 0:
        return 0.0
    if feature.kind == "categorical":
        codes = col.round().long()
        between = 0.0
        for v in torch.unique(codes):
            sel = codes == v
            between += int(sel.sum()) * float(gy[sel].mean()) ** 2
        return between / total
    xc = col - col.mean()
    denom = float(xc.square().sum()) * total
    return float((xc * gy).sum()) ** 2 / denom if denom > 0 else 0.0


def correlation_screen(x: Tensor, group: Tensor, features: Sequence[Feature]) -> RelianceResult:
    """Data only: a feature's score is √R² of the group regressed on the feature (one-hot for a
    categorical feature, else its value; see :func:`_r2`); reliance = the largest score (the
    model is never queried)."""
    x, g = _check(x, group)
    if len(features) != x.shape[1]:
        raise ShapeError(f"{len(features)} features but rows of {x.shape[1]}")
    s = torch.tensor(
        [_r2(x[:, j], g, f) ** 0.5 for j, f in enumerate(features)], dtype=torch.float64
    )
    return RelianceResult("correlation_screen", float(s.max()), s, 0)


def swap_effects(
    decide: Decide, x: Tensor, group: Tensor, *, seed: int = 0, max_values: int = 16
) -> RelianceResult:
    """Black-box counterfactual test: feature j's effect is the mean of ``decide`` (0/1 decisions,
    approve = 1, or any score per row, e.g. a logit) over
    the rows with x_j drawn from the protected group's values minus the same with x_j drawn from
    the other group's (the rest of each row kept), computed exactly over the values seen: every
    row is queried once per value v of x_j (numeric features with more than ``max_values``
    distinct values: that many quantiles, each row's value mapped to the nearest), weighted by
    P(v | protected) − P(v | other). Feature score = |effect|; reliance = the largest.
    Queries: n · (number of values, summed over features). ``seed`` is unused (kept for a
    uniform call shape: the test draws nothing)."""
    del seed
    x, g = _check(x, group)
    n, d = x.shape
    effects, queries = [], 0
    for j in range(d):
        col = x[:, j]
        values = torch.unique(col)
        if len(values) > max_values:
            values = torch.unique(
                torch.quantile(col, torch.linspace(0, 1, max_values, dtype=torch.float64))
            )
        nearest = (col[:, None] - values[None]).abs().argmin(1)
        share = torch.zeros(2, len(values), dtype=torch.float64)
        for k in (0, 1):
            share[k] = torch.bincount(nearest[g == k], minlength=len(values)).double() / int(
                (g == k).sum()
            )
        rows = x.repeat(len(values), 1)
        rows[:, j] = values.repeat_interleave(n)
        mean_decision = decide(rows).double().reshape(len(values), n).mean(1)
        effects.append(float(((share[1] - share[0]) * mean_decision).sum()))
        queries += n * len(values)
    effect = torch.tensor(effects, dtype=torch.float64)
    scores = effect.abs()
    return RelianceResult(
        "swap_effects", float(scores.max()), scores, queries, {"effects": effect.tolist()}
    )


def _white_box(module: Any) -> tuple[Callable, list[list[int]], torch.nn.Module, torch.nn.Module]:
    net = getattr(module, "net", None)
    if not all(hasattr(module, a) for a in ("encode", "groups")) or not isinstance(
        net, torch.nn.Sequential
    ):
        raise ConfigError(
            "this test needs a torch module with encode, groups and an nn.Sequential net "
            f"(e.g. a TabularNet); got {type(module).__name__}"
        )
    return module.encode, module.groups, net[:-1], net[-1]


def attribution_gaps(module: Any, x: Tensor, group: Tensor, *, steps: int = 16) -> RelianceResult:
    """Integrated gradients (Riemann midpoint rule, ``steps`` points) of the logit in the encoded
    space from the mean encoding of ``x`` to each row, summed over each feature's columns; a
    feature's score is |mean attribution over protected rows − over the others| (logit units);
    reliance = the largest score. Queries: n · steps (forward and backward)."""
    x, g = _check(x, group)
    encode, groups, body, readout = _white_box(module)
    with torch.no_grad():
        z = encode(x)
    base = z.mean(0, keepdim=True)
    alphas = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
    path = (base + alphas[:, None, None] * (z - base)[None]).reshape(-1, z.shape[1])
    path.requires_grad_(True)
    with torch.enable_grad():
        out = readout(body(path)).reshape(-1)
        (grad,) = torch.autograd.grad(out.sum(), path)
    ig = grad.reshape(steps, *z.shape).mean(0) * (z - base)
    attr = torch.stack([ig[:, cols].sum(1) for cols in groups], 1)
    gap = attr[g == 1].mean(0) - attr[g == 0].mean(0)
    scores = gap.abs()
    return RelianceResult(
        "attribution_gaps",
        float(scores.max()),
        scores.detach(),
        int(x.shape[0]) * steps,
        {"gaps": gap.tolist(), "steps": steps},
    )


def erasure_test(
    module: Any, x: Tensor, group: Tensor, outcome: Tensor | None = None
) -> RelianceResult:
    """LEACE-erase the group from the last hidden layer on ``x`` (fit and applied on the same
    rows); reliance = share of decisions that change. A feature's score: mean |gradient of the
    least-squares group probe on the hidden layer × (encoding − mean encoding)|, summed over
    its columns. With ``outcome``: the accuracy before and after erasure (its cost). Queries:
    n (one forward pass; the erased decisions reuse its hidden layer)."""
    x, g = _check(x, group)
    encode, groups, body, readout = _white_box(module)
    with torch.no_grad():
        z = encode(x)
        h = body(z)
        eraser = fit_leace(h, g.double())
        before = readout(h).reshape(-1) > 0
        after = readout(eraser.apply(h)).reshape(-1) > 0
    hc = h - h.mean(0)
    probe = torch.linalg.lstsq(hc, (g.double() - g.double().mean())[:, None]).solution[:, 0]
    zz = z.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad((body(zz) @ probe).sum(), zz)
    contrib = (grad * (z - z.mean(0))).detach()
    scores = torch.stack([contrib[:, cols].sum(1).abs().mean() for cols in groups])
    extra: dict[str, Any] = {"rank": eraser.rank}
    if outcome is not None:
        y = torch.as_tensor(outcome).flatten().bool()
        extra["accuracy_before"] = float((before == y).double().mean())
        extra["accuracy_after"] = float((after == y).double().mean())
    return RelianceResult(
        "erasure_test",
        float((before != after).double().mean()),
        scores,
        int(x.shape[0]),
        extra,
    )
