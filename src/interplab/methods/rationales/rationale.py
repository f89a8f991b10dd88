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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from interplab.methods.base import Result
from interplab.methods.rationales.attribution import Attributions, attribute
from interplab.methods.rationales.model import DecisionModel
from interplab.methods.rationales.recourse import Counterfactual, Recourse, find_recourse

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
    outcomes: tuple[str, str]

    def to_dict(self) -> dict[str, Any]:
        a = self.attributions
        return {
            "decision": self.outcome,
            "probability": self.probability,
            "outcomes": list(self.outcomes),
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
) -> Rationale:
    """The checked rationale for ``model``'s decision on the row ``x`` (see the module docstring)."""
    start = time.perf_counter()
    x = model.check_row(x)
    background = baseline.double()
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
        cost=attr.cost + rec.cost,
        seconds=time.perf_counter() - start,
    )


# ----------------------------------------------------------------------------- candidate claims
def candidate_claims(
    model: DecisionModel, x: Tensor, attr: Attributions, rec: Recourse, decision: bool
) -> list[Claim]:
    feats, outcomes = model.features, model.outcomes
    claims = [_counterfactual_claim(model, x, o, decision) for o in rec.options if o.valid]
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
                f"{share:.0%} of the difference between this score and the average score",
                {"features": names, "share": share, "tolerance": SHARE_TOLERANCE},
                f"replace them by {N_BACKGROUND} fresh background rows' values; the measured "
                f"share must be within ±{SHARE_TOLERANCE:.0%}",
            )
        )
    if attr.signed:
        for j in top:
            sign = 1 if float(attr.values[j]) > 0 else -1
            towards = outcomes[1] if sign > 0 else outcomes[0]
            claims.append(
                Claim(
                    "direction",
                    f"{feats[j].title} ({feats[j].show(float(x[j]))}) counted towards '{towards}'",
                    {"feature": feats[j].name, "sign": sign, "min_effect": MIN_EFFECT},
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
                f"{f.title} ({f.show(float(x[j]))}) did not affect the decision: "
                f"{span} gives the same outcome",
                {"feature": f.name},
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
    model: DecisionModel, x: Tensor, option: Counterfactual, decision: bool
) -> Claim:
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
    return Claim(
        "counterfactual",
        f"The decision would have been '{target}' had "
        + _join(parts)
        + ", everything else unchanged",
        {"set": sets, "ranges": ranges, "outcome": not decision},
        f"run the model on {N_DRAWS} such inputs (numeric values drawn anew in the stated "
        "ranges): every one must get the stated decision",
    )


# ----------------------------------------------------------------------------- tests
def check_claim(
    claim: Claim, model: DecisionModel, x: Tensor, background: Tensor, gen: torch.Generator
) -> Claim:
    """Run the claim's test on fresh interventions drawn from ``gen``."""
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
