"""The rationale for one decision: plain-language claims, each tested against the model.

``explain(model, x, baseline=background)`` computes attributions (``method``) and recourse, turns them
into candidate claims, and runs each claim's test on *fresh* interventions (rows drawn with a
seed of their own); claims that fail are not shown as facts but listed as dropped. Claims:

    counterfactual  "the decision would have been B had duration been between 9 and 18 months"
                    test: N_DRAWS rows with each changed numeric feature drawn anew from the
                    stated interval (discrete changes as stated, everything else as in x);
                    holds if every draw gets the other decision
    share           "checking account and duration together account for about 70 % of the
                    gap between this score and the average applicant's" (only when the gap
                    is at least MIN_GAP logits): test: replace those features by N_BACKGROUND
                    fresh background rows' values; the measured share Δ_S / gap must be within
                    SHARE_TOLERANCE of the stated one
    direction       "duration counted towards refuse": test: replacing the feature by fresh
                    background values moves the score the stated way by at least MIN_EFFECT
    irrelevant      "age did not affect the decision": test: every category (or N_DRAWS values
                    drawn across the feature's range) leaves the decision unchanged. Always
                    stated for protected features (a failure is reported: it did matter)

Scores are logits of the positive outcome; the gap is score(x) − mean score(background).

Several classes (``model.n_classes > 2``, or any of ``target``/``versus``/``recourse_to`` given):
the rationale explains "class t rather than a": ``target`` (default: the predicted class)
against ``versus`` — "runner-up" (the best-scoring other class at x, the default), "rest"
(one-vs-rest log-odds), "any" (t against the best other class) or a named class — through the
binary model ``model.versus(t, a)``: attributions, share and direction claims are about that
contrast's score, phrased with the class names ("counted towards 't' rather than 'a'").
Recourse goes to ``recourse_to`` (default: the contrast's class a when t is predicted and a is a
class, else the runner-up; t itself when t is not the predicted class): every option must make
the model *predict* that class (searched on ``model.versus(r, "any")``, re-checked on the
K-class model), and its counterfactual claim says so and is tested so. An "irrelevant" claim
says the predicted class does not change (tested on ``model.versus(predicted, "any")``). Every
claim of such a rationale carries its contrast in ``params["versus"]`` ([class, against]), so
:func:`check_claim` (given the K-class model) and independent re-tests rebuild the same binary
model. With two classes and none of those arguments, the rationale is exactly the binary one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import torch

from interplab.errors import ConfigError
from interplab.methods.base import Result
from interplab.methods.rationales.attribution import Attributions, attribute
from interplab.methods.rationales.model import CONTRASTS, DecisionModel, rather_than
from interplab.methods.rationales.recourse import (
    Counterfactual,
    Recourse,
    class_target,
    find_recourse,
)

Tensor = torch.Tensor
N_DRAWS = 16
N_BACKGROUND = 64
MIN_GAP = 1.0
SHARE_TOLERANCE = 0.15
MIN_EFFECT = 0.1
TOP_FEATURES = 3


@dataclass(frozen=True)
class Claim:
    """A statement about the model, its test, and the test's outcome on fresh interventions."""

    kind: str  # counterfactual | share | direction | irrelevant
    text: str
    params: dict[str, Any]
    test: str
    passed: bool = False
    evidence: str = ""
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "params": self.params,
            "test": self.test,
            "passed": self.passed,
            "evidence": self.evidence,
            "n": self.n,
        }


@dataclass(frozen=True)
class Rationale(Result):
    """A decision, the attributions and recourse behind it, and its claims (shown: passed their
    test; dropped: failed it). ``cost``: the attributions' and the recourse's."""

    row: Tensor
    decision: bool
    outcome: str
    probability: float
    attributions: Attributions
    recourse: Recourse
    claims: tuple[Claim, ...]  # passed their test: shown as facts
    dropped: tuple[Claim, ...]  # failed their test: not shown as facts
    features: tuple
    outcomes: tuple[str, ...]  # the explained contrast's (against side, target)
    classes: tuple[str, ...] = ()  # every class of the model
    target: str = ""  # the class explained
    versus: str = ""  # what it is explained against: a class, "rest" or "any"
    recourse_to: str = ""  # the class the recourse options lead to
    probabilities: tuple[float, ...] = ()  # per class, at the row

    @property
    def contrast(self) -> str:
        """The explained contrast in words: "'t' rather than 'a'"."""
        return rather_than(self.target, self.versus, self.classes)

    def to_dict(self) -> dict[str, Any]:
        a = self.attributions
        return {
            "decision": self.outcome,
            "probability": self.probability,
            "outcomes": list(self.outcomes),
            "classes": list(self.classes),
            "target": self.target,
            "versus": self.versus,
            "contrast": self.contrast,
            "recourse_to": self.recourse_to,
            "probabilities": dict(zip(self.classes, self.probabilities)),
            "row": {f.name: f.show(v) for f, v in zip(self.features, self.row.tolist())},
            "raw_row": self.row.tolist(),
            "features": [f.to_dict() for f in self.features],
            "attributions": {
                "method": a.method,
                "values": a.values.tolist(),
                "base": a.base,
                "score": a.score,
                "signed": a.signed,
                "error": a.error.tolist() if a.error is not None else None,
            },
            "recourse": [
                {
                    "changes": [
                        {"feature": c.feature, "before": c.before, "after": c.after}
                        for c in o.changes
                    ],
                    "cost": o.cost,
                    "valid": o.valid,
                    "to": self.recourse_to,
                }
                for o in self.recourse.options
            ],
            "claims": [c.to_dict() for c in self.claims],
            "dropped": [c.to_dict() for c in self.dropped],
            "n_claims_tested": len(self.claims) + len(self.dropped),
            "seconds": self.seconds,
            **self.extra,
        }


def explain(
    model: DecisionModel,
    x: Tensor,
    *,
    baseline: Tensor,
    method: str = "kernel_shap",
    seed: int = 0,
    recourse: Recourse | None = None,
    attributions: Attributions | None = None,
    n_options: int = 3,
    target: int | str | None = None,
    versus: int | str = "runner-up",
    recourse_to: int | str | None = None,
) -> Rationale:
    """The checked rationale for ``model``'s decision on the row ``x`` (see the module docstring).
    ``target``/``versus``/``recourse_to``: classes by name or index (several classes)."""
    start = time.perf_counter()
    x = model.check_row(x)
    background = baseline.double()
    if model.n_classes == 2 and target is None and versus == "runner-up" and recourse_to is None:
        return _explain_binary(
            model, x, background, method, seed, recourse, attributions, n_options, start
        )
    return _explain_classes(
        model,
        x,
        background,
        method,
        seed,
        recourse,
        attributions,
        n_options,
        start,
        (target, versus, recourse_to),
    )


def _explain_binary(
    model: DecisionModel,
    x: Tensor,
    background: Tensor,
    method: str,
    seed: int,
    recourse: Recourse | None,
    attributions: Attributions | None,
    n_options: int,
    start: float,
) -> Rationale:
    attr = (
        attributions
        if attributions is not None
        else attribute(model, x, method=method, baseline=background, seed=seed)
    )
    rec = (
        recourse
        if recourse is not None
        else find_recourse(model, x, baseline=background, n_options=n_options)
    )
    decision = bool(model.decide(x[None])[0])
    candidates = candidate_claims(model, x, attr, rec, decision)
    gen = torch.Generator().manual_seed(10_007 * (seed + 1))
    checked = [check_claim(c, model, x, background, gen) for c in candidates]
    prob = float(torch.sigmoid(torch.tensor(attr.score)))
    return Rationale(
        x,
        decision,
        model.outcomes[int(decision)],
        prob,
        attr,
        rec,
        tuple(c for c in checked if c.passed),
        tuple(c for c in checked if not c.passed),
        model.features,
        model.outcomes,
        model.outcomes,
        model.outcomes[1],
        model.outcomes[0],
        model.outcomes[int(not decision)],
        (1 - prob, prob),
        cost=attr.cost + rec.cost,
        seconds=time.perf_counter() - start,
    )


def resolve_contrast(
    model: DecisionModel,
    x: Tensor,
    target: int | str | None = None,
    versus: int | str = "runner-up",
    recourse_to: int | str | None = None,
) -> tuple[int, int | str, int, int]:
    """(target, against, recourse class, predicted class) as indices (against may be "rest" or
    "any") for the row ``x``, with the defaults of :func:`explain`."""
    pred = int(model.predict(x[None])[0])
    t = pred if target is None else model.class_index(target)
    against: int | str
    if versus == "runner-up":
        against = model.runner_up(x, t)
    elif isinstance(versus, str) and versus in CONTRASTS:
        against = versus
    else:
        against = model.class_index(versus)
        if against == t:
            raise ConfigError(
                f"versus names the target class itself ({model.classes[t]!r}); use "
                "'runner-up', 'rest' or another class"
            )
    if recourse_to is not None:
        r = model.class_index(recourse_to)
    elif t != pred:
        r = t  # "why not t?": how to get t
    else:
        r = against if isinstance(against, int) else model.runner_up(x, pred)
    r, _ = class_target(model, x, r)  # refuses the class already predicted
    return t, against, r, pred


def _explain_classes(
    model: DecisionModel,
    x: Tensor,
    background: Tensor,
    method: str,
    seed: int,
    recourse: Recourse | None,
    attributions: Attributions | None,
    n_options: int,
    start: float,
    asked: tuple,
) -> Rationale:
    t, against, r, pred = resolve_contrast(model, x, *asked)
    explained = model.versus(t, against)
    names = model.classes
    if recourse is not None and recourse.target not in (None, names[r]):
        raise ConfigError(
            f"the recourse given leads to {recourse.target!r}, not to {names[r]!r} (recourse_to)"
        )
    attr = (
        attributions
        if attributions is not None
        else attribute(explained, x, method=method, baseline=background, seed=seed)
    )
    rec = (
        recourse
        if recourse is not None
        else find_recourse(model, x, baseline=background, n_options=n_options, to=r)
    )
    decision = bool(explained.decide(x[None])[0])
    against_name = names[against] if isinstance(against, int) else against
    contrast = ClassContrast(model, names[t], against_name, names[r], names[pred])
    candidates = candidate_claims(explained, x, attr, rec, decision, contrast=contrast)
    gen = torch.Generator().manual_seed(10_007 * (seed + 1))
    checked = [check_claim(c, model, x, background, gen) for c in candidates]
    probs = model.probabilities(x[None])[0]
    return Rationale(
        x,
        decision,
        names[pred],
        float(probs[t]),
        attr,
        rec,
        tuple(c for c in checked if c.passed),
        tuple(c for c in checked if not c.passed),
        model.features,
        explained.outcomes,
        names,
        names[t],
        against_name,
        names[r],
        tuple(float(p) for p in probs),
        cost=attr.cost + rec.cost,
        seconds=time.perf_counter() - start,
    )


# ----------------------------------------------------------------------------- candidate claims
@dataclass(frozen=True)
class ClassContrast:
    """What a K-class rationale explains, by class name: ``model`` (the K-class model),
    ``target`` against ``against`` (a class, "rest" or "any"), the recourse class ``to`` and
    the ``predicted`` class at the row."""

    model: DecisionModel
    target: str
    against: str
    to: str
    predicted: str


def candidate_claims(
    model: DecisionModel,
    x: Tensor,
    attr: Attributions,
    rec: Recourse,
    decision: bool,
    *,
    contrast: ClassContrast | None = None,
) -> list[Claim]:
    """The claims to test. ``model``: the binary model explained. With ``contrast`` (several
    classes) the claims are phrased with the class names and carry their contrast in
    ``params["versus"]`` (see the module docstring)."""
    feats, outcomes = model.features, model.outcomes
    if contrast is None:
        claims = [_counterfactual_claim(model, x, o, decision) for o in rec.options if o.valid]
        score = "this score and the average score"
        towards = lambda sign: f"'{outcomes[1] if sign > 0 else outcomes[0]}'"  # noqa: E731
        unaffected, same = "the decision", "outcome"
        tag: dict[str, list] = {}
        quiet_tag: dict[str, list] = {}
    else:
        c = contrast
        to_model = c.model.versus(c.to, "any")
        claims = [
            _counterfactual_claim(to_model, x, o, False, predicted=c.predicted)
            for o in rec.options
            if o.valid
        ]
        claims = [replace(k, params={**k.params, "versus": [c.to, "any"]}) for k in claims]
        score = (
            f"the score of {rather_than(c.target, c.against, c.model.classes)} here and on average"
        )
        towards = lambda sign: rather_than(c.target, c.against, c.model.classes, sign)  # noqa: E731
        unaffected, same = f"the predicted class ('{c.predicted}')", "class"
        tag, quiet_tag = {"versus": [c.target, c.against]}, {"versus": [c.predicted, "any"]}
    mag = attr.values.abs()
    order = mag.argsort(descending=True).tolist()
    gap = attr.score - attr.base
    top = order[:TOP_FEATURES]
    if attr.signed and abs(gap) >= MIN_GAP and len(top) >= 2:
        pair = top[:2]
        share = float(attr.values[pair].sum() / gap)
        share = round(share * 20) / 20  # to 5 %
        names = [feats[j].name for j in pair]
        claims.append(
            Claim(
                "share",
                f"{_join([feats[j].title for j in pair])} together account for about "
                f"{share:.0%} of the difference between {score}",
                {"features": names, "share": share, "tolerance": SHARE_TOLERANCE, **tag},
                f"replace them by {N_BACKGROUND} fresh background rows' values; the measured "
                f"share must be within ±{SHARE_TOLERANCE:.0%}",
            )
        )
    if attr.signed:
        for j in top:
            sign = 1 if float(attr.values[j]) > 0 else -1
            claims.append(
                Claim(
                    "direction",
                    f"{feats[j].title} ({feats[j].show(float(x[j]))}) counted towards "
                    + towards(sign),
                    {"feature": feats[j].name, "sign": sign, "min_effect": MIN_EFFECT, **tag},
                    f"replace it by {N_BACKGROUND} fresh background values: the score must "
                    f"move {'down' if sign > 0 else 'up'} by at least {MIN_EFFECT} on average",
                )
            )
    quiet = [j for j in reversed(order) if j not in top][:2]
    protected = [j for j, f in enumerate(feats) if f.protected]
    for j in dict.fromkeys(protected + quiet):
        f = feats[j]
        lo, hi = f.span
        span = "any value" if f.discrete else f"any value from {f.show(lo)} to {f.show(hi)}"
        claims.append(
            Claim(
                "irrelevant",
                f"{f.title} ({f.show(float(x[j]))}) did not affect {unaffected}: "
                f"{span} gives the same {same}",
                {"feature": f.name, **quiet_tag},
                "set it to every category"
                if f.discrete
                else f"set it to {N_DRAWS} values drawn across its range: the decision must not change",
            )
        )
    return claims


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def claimed_interval(
    model: DecisionModel, j: int, before: float, after: float
) -> tuple[float, float]:
    """The interval a counterfactual claim states for a numeric change before -> after: from the
    found value as far again away from ``before`` (within the feature's range)."""
    f = model.features[j]
    delta = after - before
    far = min(max(after + delta, f.low), f.high)
    return (min(after, far), max(after, far))


def _counterfactual_claim(
    model: DecisionModel,
    x: Tensor,
    option: Counterfactual,
    decision: bool,
    *,
    predicted: str | None = None,
) -> Claim:
    """ "The decision would have been B had ..." (``predicted``: a K-class recourse, ``model``
    being ``versus(B, "any")``: "The model would have predicted 'B' (not 'A') had ...")."""
    parts, ranges, sets = [], {}, {}
    for c in option.changes:
        j = model.index(c.feature)
        f = model.features[j]
        if f.discrete:
            sets[c.feature] = c.after
            parts.append(f"{f.title} been '{f.show(c.after)}' (not '{f.show(c.before)}')")
        else:
            lo, hi = claimed_interval(model, j, c.before, c.after)
            ranges[c.feature] = [lo, hi]
            parts.append(
                f"{f.title} been between {f.show(lo)} and {f.show(hi)} (not {f.show(c.before)})"
            )
    target = model.outcomes[int(not decision)]
    lead = (
        f"The decision would have been '{target}'"
        if predicted is None
        else f"The model would have predicted '{target}' (not '{predicted}')"
    )
    return Claim(
        "counterfactual",
        f"{lead} had " + _join(parts) + ", everything else unchanged",
        {"set": sets, "ranges": ranges, "outcome": not decision},
        f"run the model on {N_DRAWS} such inputs (numeric values drawn anew in the stated "
        "ranges): every one must get the stated decision",
    )


# ----------------------------------------------------------------------------- tests
def check_claim(
    claim: Claim, model: DecisionModel, x: Tensor, background: Tensor, gen: torch.Generator
) -> Claim:
    """Run the claim's test on fresh interventions drawn from ``gen`` (a claim with a contrast,
    ``params["versus"]``, is tested on ``model.versus(...)``: pass the K-class model)."""
    if "versus" in claim.params:
        model = model.versus(*claim.params["versus"])
    fn = {
        "counterfactual": _test_counterfactual,
        "share": _test_share,
        "direction": _test_direction,
        "irrelevant": _test_irrelevant,
    }[claim.kind]
    passed, evidence, n = fn(claim.params, model, x, background, gen)
    return Claim(claim.kind, claim.text, claim.params, claim.test, passed, evidence, n)


def _draw(
    model: DecisionModel, j: int, lo: float, hi: float, n: int, gen: torch.Generator
) -> Tensor:
    v = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    return v.round() if model.features[j].integer else v


def _test_counterfactual(p, model, x, background, gen) -> tuple[bool, str, int]:
    rows = x.repeat(N_DRAWS, 1)
    for name, v in p["set"].items():
        rows[:, model.index(name)] = v
    for name, (lo, hi) in p["ranges"].items():
        j = model.index(name)
        rows[:, j] = _draw(model, j, lo, hi, N_DRAWS, gen)
        rows[0, j], rows[-1, j] = lo, hi  # the interval's ends are always tried
    got = model.decide(rows) == bool(p["outcome"])
    return bool(got.all()), f"{int(got.sum())}/{N_DRAWS} inputs got the stated decision", N_DRAWS


def _fresh_background(background: Tensor, gen: torch.Generator) -> Tensor:
    return background[torch.randint(0, background.shape[0], (N_BACKGROUND,), generator=gen)]


def _replaced(x: Tensor, bg: Tensor, cols: list[int]) -> Tensor:
    rows = x.repeat(bg.shape[0], 1)
    rows[:, cols] = bg[:, cols]
    return rows


def _test_share(p, model, x, background, gen) -> tuple[bool, str, int]:
    bg = _fresh_background(background, gen)
    score = float(model.logit(x[None])[0])
    gap = score - float(model.logit(bg).mean())
    cols = [model.index(n) for n in p["features"]]
    delta = score - float(model.logit(_replaced(x, bg, cols)).mean())
    share = delta / gap if abs(gap) > 1e-9 else float("inf")
    ok = abs(share - p["share"]) <= p["tolerance"]
    return ok, f"measured share {share:.0%} (gap {gap:.2f} logits)", N_BACKGROUND


def _test_direction(p, model, x, background, gen) -> tuple[bool, str, int]:
    bg = _fresh_background(background, gen)
    j = model.index(p["feature"])
    delta = float(model.logit(x[None])[0] - model.logit(_replaced(x, bg, [j])).mean())
    ok = delta * p["sign"] >= p["min_effect"]
    return ok, f"replacing it moved the score by {-delta:+.2f} on average", N_BACKGROUND


def _test_irrelevant(p, model, x, background, gen) -> tuple[bool, str, int]:
    j = model.index(p["feature"])
    f = model.features[j]
    values = (
        torch.arange(len(f.values), dtype=torch.float64)
        if f.discrete
        else torch.cat(
            [
                torch.tensor([f.low, f.high], dtype=torch.float64),
                _draw(model, j, f.low, f.high, N_DRAWS - 2, gen),
            ]
        )
    )
    rows = x.repeat(len(values), 1)
    rows[:, j] = values
    same = model.decide(rows) == model.decide(x[None])[0]
    return (
        bool(same.all()),
        f"{int(same.sum())}/{len(values)} values kept the decision",
        len(values),
    )
