"""Counterfactual recourse: the smallest actionable changes that flip a decision.

``find_recourse(model, x, baseline=background)`` searches changes to *mutable* features only (immutable
ones — age, sex, nationality — are never touched; asking to vary one is an error):

    candidates   categorical: every other category; ordinal: every other level; numeric: the
                 background's deciles and the feature's range ends (integers where the feature is)
    cost         Σ over changed features: categorical 1; ordinal |Δ levels| / (levels − 1);
                 numeric |Δ| / (the background's 95th − 5th percentile, or the
                 feature's range where those coincide)
    search       beam search: single changes, then pairs and triples grown from the BEAM
                 states closest to the decision boundary; every state that flips is kept
    refine       each numeric change is pulled back towards the original value (bisection) as
                 far as the decision still flips: the smallest change, not a grid point
    diversity    options are taken cheapest first, skipping one whose changed features include
                 every feature of an option already taken

Every option is re-run through the model at the end (``valid``).

Several classes: ``find_recourse(model, x, baseline=..., to=c)`` searches changes that make the
model *predict* class ``c`` (default on a K > 2 model: the runner-up, the best-scoring class
other than the predicted one). It runs the search above on the binary contrast
``model.versus(c, "any")`` (score of c minus the best other score: > 0 exactly when c is the
predicted class) and then re-checks every option on the K-class model itself: ``valid`` means
``model.predict(option) == c``. ``Recourse.target`` names the class the options lead to (None
for a plain binary search). The baselines take ``to`` the same way.

``nearest_neighbour`` is the
non-interpretability baseline: the closest background row with the other decision, with the
immutable features kept as they are (so it may fail to flip). ``random_recourse`` changes random
mutable features to random values until the decision flips or the budget runs out (a control).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from interplab.errors import ConfigError
from interplab.methods.base import Cost, Result
from interplab.methods.rationales.model import DecisionModel
from interplab.methods.registry import register

Tensor = torch.Tensor
BEAM = 12
REFINE_STEPS = 12


@dataclass(frozen=True)
class Change:
    feature: str
    before: float
    after: float


@dataclass(frozen=True)
class Counterfactual:
    """One recourse option: the changed row, its changes, cost, and whether it flips."""

    row: Tensor
    changes: tuple[Change, ...]
    cost: float
    valid: bool
    score: float

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.feature for c in self.changes)


@dataclass(frozen=True)
class Recourse(Result):
    """Recourse options for one row (cheapest first) and the decision they try to flip;
    ``target``: the class the options must make the model predict (K-class search, ``to=``);
    ``cost.evaluations``: rows the model scored."""

    method: str
    decision: bool
    options: tuple[Counterfactual, ...]
    target: str | None = None


def class_target(model: DecisionModel, x: Tensor, to: int | str | None) -> tuple[int, int]:
    """(the class recourse must reach, the predicted class) on the row ``x``: ``to`` by name or
    index, default the runner-up. Asking for the class already predicted is an error."""
    pred = int(model.predict(x[None])[0])
    r = model.runner_up(x, pred) if to is None else model.class_index(to)
    if r == pred:
        others = ", ".join(c for j, c in enumerate(model.classes) if j != pred)
        raise ConfigError(
            f"the model already predicts {model.classes[pred]!r} on this row; recourse needs "
            f"another class ({others})"
        )
    return r, pred


def _to_class(
    search: Callable[..., Recourse],
    model: DecisionModel,
    x: Tensor,
    to: int | str | None,
    **kwargs,
) -> Recourse:
    """Run a binary recourse ``search`` on ``model.versus(to, "any")`` and re-check every option
    on the K-class model: valid only where it predicts ``to``."""
    x = model.check_row(x)
    r, _ = class_target(model, x, to)
    rec = search(model.versus(r, "any"), x, **kwargs)
    predicted = model.predict(torch.stack([o.row for o in rec.options])) if rec.options else None
    options = tuple(
        replace(o, valid=o.valid and int(predicted[i]) == r)  # type: ignore[index]
        for i, o in enumerate(rec.options)
    )
    evals = rec.cost.evaluations + len(options)
    return replace(rec, options=options, target=model.classes[r], cost=Cost(evaluations=evals))


def mutable_features(model: DecisionModel, vary: tuple[str, ...] | None) -> list[int]:
    """Indices of the features recourse may change (``vary``: a subset, by name)."""
    if vary is None:
        return [j for j, f in enumerate(model.features) if not f.immutable]
    idx = [model.index(n) for n in vary]
    frozen = [model.features[j].name for j in idx if model.features[j].immutable]
    if frozen:
        raise ConfigError(
            f"feature(s) {', '.join(frozen)} are immutable (e.g. age, sex, nationality) "
            "and cannot be changed for recourse; leave them out of vary="
        )
    return idx


class _Space:
    def __init__(self, model: DecisionModel, background: Tensor):
        self.model = model
        q = torch.quantile(background, torch.tensor([0.05, 0.95], dtype=torch.float64), dim=0)
        span = torch.tensor([f.span[1] - f.span[0] for f in model.features], dtype=torch.float64)
        self.scale = torch.where(q[1] - q[0] > 0, q[1] - q[0], span).clamp_min(1e-9)
        self.deciles = torch.quantile(
            background, torch.linspace(0.1, 0.9, 9, dtype=torch.float64), dim=0
        )

    def candidates(self, j: int, current: float) -> list[float]:
        f = self.model.features[j]
        if f.discrete:
            return [float(v) for v in range(len(f.values)) if v != round(current)]
        vals = {f.low, f.high, *self.deciles[:, j].tolist()}
        vals = {float(round(v)) if f.integer else v for v in vals}
        return sorted(v for v in vals if abs(v - current) > 1e-9 and f.low <= v <= f.high)

    def cost(self, j: int, before: float, after: float) -> float:
        f = self.model.features[j]
        if f.kind == "categorical":
            return 1.0 if round(before) != round(after) else 0.0
        if f.kind == "ordinal":
            return abs(after - before) / max(1, len(f.values) - 1)
        return abs(after - before) / float(self.scale[j])

    def total(self, x: Tensor, row: Tensor) -> float:
        return sum(
            self.cost(j, float(x[j]), float(row[j])) for j in torch.nonzero(row != x)[:, 0].tolist()
        )


@register(
    "rationales",
    "recourse",
    kind="method",
    cost_unit="evaluations",
    metric="counterfactual_validity",
)
def find_recourse(
    model: DecisionModel,
    x: Tensor,
    *,
    baseline: Tensor,
    seed: int = 0,
    n_options: int = 3,
    max_changes: int = 3,
    vary: tuple[str, ...] | None = None,
    to: int | str | None = None,
) -> Recourse:
    """Up to ``n_options`` diverse, minimal, actionable changes that flip the decision on ``x``
    (``baseline``: the background rows the candidate values come from; deterministic).
    ``to``: a class the changes must make the model predict (default on a K > 2 model: the
    runner-up; see the module docstring)."""
    if to is not None or model.n_classes > 2:
        return _to_class(
            find_recourse,
            model,
            x,
            to,
            baseline=baseline,
            seed=seed,
            n_options=n_options,
            max_changes=max_changes,
            vary=vary,
        )
    start = time.perf_counter()
    x = model.check_row(x)
    allowed = mutable_features(model, vary)
    space = _Space(model, baseline.double())
    decision = bool(model.decide(x[None])[0])
    sign = -1.0 if decision else 1.0  # push the logit this way
    evals = 1
    singles = [(j, v) for j in allowed for v in space.candidates(j, float(x[j]))]
    if not singles:
        return _recourse("recourse", decision, (), evals, start)
    cols = torch.tensor([j for j, _ in singles])
    vals = torch.tensor([v for _, v in singles], dtype=torch.float64)
    frontier = x[None]
    flipped: list[Tensor] = []
    for _ in range(max_changes):
        # every state × every single change to a feature the state has not changed yet
        batch = frontier[:, None, :].repeat(1, len(singles), 1)
        batch[:, torch.arange(len(singles)), cols] = vals
        fresh = (frontier[:, cols] == x[cols]).reshape(frontier.shape[0], len(singles))
        batch = torch.unique(batch[fresh], dim=0)
        logits = model.logit(batch)
        evals += batch.shape[0]
        flips = (logits > 0) != decision
        flipped += list(batch[flips])
        if len({tuple(torch.nonzero(r != x)[:, 0].tolist()) for r in flipped}) >= n_options:
            break  # enough distinct options at this sparsity; more changes would never be chosen
        rest = torch.nonzero(~flips)[:, 0]
        frontier = batch[rest[(sign * logits[rest]).argsort(descending=True)][:BEAM]]
        if frontier.shape[0] == 0:
            break
    flipped.sort(key=lambda r: (int((r != x).sum()), space.total(x, r)))
    options: list[Counterfactual] = []
    for row in flipped:
        feats = set(torch.nonzero(row != x)[:, 0].tolist())
        if any(set(model.index(n) for n in o.features) <= feats for o in options):
            continue
        row, n = _refine(model, space, x, row, decision)
        evals += n
        options.append(_option(model, space, x, row, decision))
        if len(options) == n_options:
            break
    options.sort(key=lambda o: o.cost)
    return _recourse("recourse", decision, tuple(options), evals, start)


def _recourse(
    method: str, decision: bool, options: tuple, evaluations: int, start: float
) -> Recourse:
    return Recourse(
        method=method,
        decision=decision,
        options=options,
        cost=Cost(evaluations=evaluations),
        seconds=time.perf_counter() - start,
    )


def _refine(
    model: DecisionModel, space: _Space, x: Tensor, row: Tensor, decision: bool
) -> tuple[Tensor, int]:
    """Pull each numeric change back towards x as far as the decision stays flipped."""
    evals = 0
    for j in torch.nonzero(row != x)[:, 0].tolist():
        f = model.features[j]
        if f.discrete:
            continue
        lo, hi = 0.0, 1.0  # fraction of the change kept: hi flips, lo (nothing) does not
        for _ in range(REFINE_STEPS):
            mid = (lo + hi) / 2
            trial = row.clone()
            v = float(x[j]) + mid * (float(row[j]) - float(x[j]))
            trial[j] = round(v) if f.integer else v
            evals += 1
            if bool(model.decide(trial[None])[0]) != decision:
                hi = mid
            else:
                lo = mid
        v = float(x[j]) + hi * (float(row[j]) - float(x[j]))
        if f.integer:  # round away from x so the kept fraction still flips
            v = float(torch.tensor(v).ceil() if row[j] > x[j] else torch.tensor(v).floor())
        row = row.clone()
        row[j] = v
    return row, evals


def _option(
    model: DecisionModel, space: _Space, x: Tensor, row: Tensor, decision: bool
) -> Counterfactual:
    score = float(model.logit(row[None])[0])
    changes = tuple(
        Change(model.features[j].name, float(x[j]), float(row[j]))
        for j in torch.nonzero(row != x)[:, 0].tolist()
    )
    return Counterfactual(row, changes, space.total(x, row), (score > 0) != decision, score)


@register(
    "rationales",
    "nearest_neighbour",
    kind="baseline",
    cost_unit="evaluations",
    metric="counterfactual_validity",
)
def nearest_neighbour(
    model: DecisionModel,
    x: Tensor,
    *,
    baseline: Tensor,
    seed: int = 0,
    n_options: int = 3,
    to: int | str | None = None,
) -> Recourse:
    """The closest background rows (in recourse cost) with the other decision (``to``: predicted
    as that class), immutable features copied from ``x`` (a baseline that knows nothing about
    the model beyond its decisions)."""
    if to is not None or model.n_classes > 2:
        return _to_class(
            nearest_neighbour, model, x, to, baseline=baseline, seed=seed, n_options=n_options
        )
    start = time.perf_counter()
    background = baseline
    x = model.check_row(x)
    space = _Space(model, background.double())
    decision = bool(model.decide(x[None])[0])
    other = background[model.decide(background) != decision].clone()
    frozen = [j for j, f in enumerate(model.features) if f.immutable]
    other[:, frozen] = x[frozen]
    costs = torch.tensor([space.total(x, r) for r in other]) if len(other) else torch.zeros(0)
    options = tuple(
        _option(model, space, x, other[i], decision) for i in costs.argsort()[:n_options].tolist()
    )
    return _recourse(
        "nearest_neighbour", decision, options, background.shape[0] + len(options), start
    )


def random_recourse(
    model: DecisionModel,
    x: Tensor,
    *,
    baseline: Tensor,
    n_options: int = 3,
    max_changes: int = 3,
    seed: int = 0,
    to: int | str | None = None,
) -> Recourse:
    """Random changes to up to ``max_changes`` random mutable features (a control): the first
    ``n_options`` draws, whether or not they flip (``to``: a class they should reach)."""
    if to is not None or model.n_classes > 2:
        return _to_class(
            random_recourse,
            model,
            x,
            to,
            baseline=baseline,
            n_options=n_options,
            max_changes=max_changes,
            seed=seed,
        )
    start = time.perf_counter()
    x = model.check_row(x)
    gen = torch.Generator().manual_seed(seed)
    space = _Space(model, baseline.double())
    decision = bool(model.decide(x[None])[0])
    allowed = mutable_features(model, None)
    rows = []
    for _ in range(n_options):
        row = x.clone()
        k = int(torch.randint(1, max_changes + 1, (1,), generator=gen))
        for j in torch.tensor(allowed)[torch.randperm(len(allowed), generator=gen)[:k]].tolist():
            cands = space.candidates(j, float(x[j]))
            row[j] = cands[int(torch.randint(0, len(cands), (1,), generator=gen))]
        rows.append(row)
    options = tuple(_option(model, space, x, row, decision) for row in rows)
    return _recourse("random", decision, options, n_options + 1, start)
