"""Scores for decision rationales (pure functions of a model, rows and method results).

    counterfactual_scores   validity: share of recourse options on which the model, run again
                            here, really gives the other decision; proximity: mean cost;
                            sparsity: mean number of changed features; actionability: share of
                            options that change no immutable feature and keep every value legal
    claim_accuracy          share of a rationale's shown claims that hold when re-tested on
                            *fresh* interventions (a seed of their own), by tests written here,
                            apart from the code that made and filtered the claims; also the same
                            over every candidate claim (what an unchecked rationale would say)
    attribution_agreement   per row, where an organism has a truth: ``top_k_recall``, the share
                            of the true features found among the k largest |φ| (see
                            :func:`top_k`: k is a fixed quarter of the features, never read from
                            the truth) out of as many as fit (min(k, |true|)); and
                            ``attribution_rank_corr``, Spearman correlation of |φ| with the true
                            |contributions|. Random attributions score k/d ≈ 0.25 in expectation
                            on every organism (when |true| ≤ k), an exact method 1.0
    deletion_insertion      faithfulness curves: P(original decision) as the top-ranked features
                            are replaced by background values (deletion, lower area = better)
                            or restored from the row into background rows (insertion, higher)
    stability               Spearman correlation between a row's attributions and those of the
                            row with small noise on its numeric features (0.05 × the feature's
                            background standard deviation)

Several classes: a recourse that names its class (``Recourse.target``) is valid only where the
model given here (the K-class model) *predicts* that class; a claim that carries its contrast
(``params["versus"]``) is re-tested on ``model.versus(...)`` of the K-class model given; the
attribution scores take one binary model per row (each row's explained contrast) where rows
are explained against different classes.

Proportions carry a Wilson 95 % interval; means a normal-approximation 95 % interval; all with n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from interplab.eval.stats import Estimate, wilson
from interplab.eval.stats import estimate as mean_estimate

Tensor = torch.Tensor


# ----------------------------------------------------------------------------- counterfactuals
def _row_model(model: Any, i: int) -> Any:
    """The model of row ``i``: one per row (a sequence) or the same for every row."""
    return model[i] if isinstance(model, (list, tuple)) else model


def counterfactual_scores(
    model: Any, rows: Sequence[Tensor], recourses: Sequence[Any]
) -> dict[str, Estimate]:
    """Scores over every option of every recourse (``model``: a DecisionModel; a recourse with
    a ``target`` class counts as valid only where ``model.predict`` gives that class)."""
    valid = legal = total = 0
    costs, sizes = [], []
    for x, rec in zip(rows, recourses):
        to = getattr(rec, "target", None)
        before = None if to is not None else bool(model.decide(x[None].double())[0])
        for opt in rec.options:
            total += 1
            if to is not None:
                got = int(model.predict(opt.row[None].double())[0])
                valid += int(got == model.class_index(to))
            else:
                valid += int(bool(model.decide(opt.row[None].double())[0]) != before)
            legal += int(_actionable(model.features, x, opt.row))
            costs.append(opt.cost)
            sizes.append(int((opt.row != x).sum()))
    return {
        "counterfactual_validity": wilson(valid, total),
        "actionability": wilson(legal, total),
        "proximity": mean_estimate(costs),
        "sparsity": mean_estimate(sizes),
        "options_per_row": mean_estimate([len(r.options) for r in recourses]),
    }


def _actionable(features: Sequence[Any], x: Tensor, row: Tensor) -> bool:
    for f, a, b in zip(features, x.tolist(), row.tolist()):
        if f.immutable and a != b:
            return False
        lo, hi = f.span
        if not lo - 1e-9 <= b <= hi + 1e-9 or (f.discrete and not float(b).is_integer()):
            return False
    return True


# ----------------------------------------------------------------------------- claims
def claim_accuracy(
    model: Any,
    rationales: Sequence[Any],
    background: Tensor,
    *,
    seed: int = 1,
    n_draws: int = 32,
    n_background: int = 128,
) -> dict[str, Estimate]:
    """Re-test the claims of each rationale on fresh interventions (see the module docstring)."""
    gen = torch.Generator().manual_seed(7919 * (seed + 3))
    shown = [
        _retest(c, model, r.row, background, gen, n_draws, n_background)
        for r in rationales
        for c in r.claims
    ]
    every = shown + [
        _retest(c, model, r.row, background, gen, n_draws, n_background)
        for r in rationales
        for c in r.dropped
    ]
    n_all = sum(len(r.claims) + len(r.dropped) for r in rationales)
    return {
        "claim_accuracy": wilson(sum(shown), len(shown)),
        "claim_accuracy_unchecked": wilson(sum(every), len(every)),
        "claims_dropped": wilson(sum(len(r.dropped) for r in rationales), n_all),
        "claims_per_decision": mean_estimate([len(r.claims) for r in rationales]),
    }


def _retest(
    claim: Any,
    model: Any,
    x: Tensor,
    background: Tensor,
    gen: torch.Generator,
    n_draws: int,
    n_background: int,
) -> bool:
    p, names = claim.params, [f.name for f in model.features]
    if "versus" in p:  # a K-class rationale's claim: its own contrast of the K-class model
        model = model.versus(*p["versus"])
    x = x.double()
    decide = lambda rows: model.logit(rows) > 0  # noqa: E731
    if claim.kind == "counterfactual":
        rows = x.repeat(n_draws, 1)
        for name, v in p["set"].items():
            rows[:, names.index(name)] = v
        for name, (lo, hi) in p["ranges"].items():
            j = names.index(name)
            v = lo + (hi - lo) * torch.rand(n_draws, generator=gen, dtype=torch.float64)
            rows[:, j] = v.round() if model.features[j].integer else v
        return bool((decide(rows) == bool(p["outcome"])).all())
    if claim.kind == "irrelevant":
        j = names.index(p["feature"])
        f = model.features[j]
        if f.discrete:
            values = torch.arange(len(f.values), dtype=torch.float64)
        else:
            values = f.low + (f.high - f.low) * torch.rand(
                n_draws, generator=gen, dtype=torch.float64
            )
            values = values.round() if f.integer else values
        rows = x.repeat(len(values), 1)
        rows[:, j] = values
        return bool((decide(rows) == decide(x[None])[0]).all())
    bg = background[torch.randint(0, background.shape[0], (n_background,), generator=gen)].double()
    score = float(model.logit(x[None])[0])
    cols = [names.index(n) for n in (p["features"] if claim.kind == "share" else [p["feature"]])]
    rows = x.repeat(n_background, 1)
    rows[:, cols] = bg[:, cols]
    delta = score - float(model.logit(rows).mean())
    if claim.kind == "direction":
        return delta * p["sign"] >= p["min_effect"]
    gap = score - float(model.logit(bg).mean())
    return abs(gap) > 1e-9 and abs(delta / gap - p["share"]) <= p["tolerance"]


# ----------------------------------------------------------------------------- attributions
def _ranks(v: Tensor) -> Tensor:
    """Average ranks (ties share their mean rank)."""
    order = v.argsort()
    ranks = torch.empty_like(v, dtype=torch.float64)
    ranks[order] = torch.arange(len(v), dtype=torch.float64)
    for u in v.unique():
        tie = v == u
        if int(tie.sum()) > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a: Tensor, b: Tensor) -> float:
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


#: top-k recall looks at the k = ceil(TOP_K_SHARE × d) features with the largest |φ| out of d: a
#: fixed share of the features, the same for every method and organism and never the size of the
#: truth, so random attributions score k/d ≈ TOP_K_SHARE in expectation everywhere
TOP_K_SHARE = 0.25
#: where the truth is per-row contributions and no feature set is planted (credit-linear's exact
#: Shapley values), the true features of a row are its TRUE_SET_SIZE largest |contributions|
#: (as many as credit-rule's scorecard has, so both credit organisms ask the same question)
TRUE_SET_SIZE = 4


def top_k(d: int) -> int:
    """The k of top-k recall for d features: ceil(TOP_K_SHARE · d), at least 1 (truth-free)."""
    if d < 1:
        raise ValueError(f"top_k needs at least one feature, got d={d}")
    return max(1, math.ceil(TOP_K_SHARE * d))


def top_k_recall(values: Tensor, true: Iterable[int], k: int | None = None) -> float:
    """|top-k of |values| ∩ true| / min(k, |true|): 1.0 when every true feature that fits in the
    top k is there. ``k`` defaults to :func:`top_k` of the number of features."""
    true = set(true)
    if not true:
        raise ValueError("top_k_recall needs at least one true feature")
    k = top_k(values.numel()) if k is None else k
    top = set(values.abs().argsort(descending=True, stable=True)[:k].tolist())
    return len(top & true) / min(k, len(true))


def attribution_agreement(
    values: Tensor,
    *,
    true_values: Tensor | None = None,
    true_features: Sequence[int] | None = None,
    k: int | None = None,
) -> dict[str, Estimate]:
    """``values`` [n, feature]. Truth: a fixed set of deciding features ``true_features`` and/or
    per-row contributions ``true_values`` [n, feature] (without a feature set, a row's true
    features are its TRUE_SET_SIZE largest |truth|). ``k``: the top-k of the recall, default
    :func:`top_k` of the number of features (a setting of the score, never of the truth).
    Returns ``top_k_recall`` and, with ``true_values``, ``attribution_rank_corr``."""
    if true_features is None and true_values is None:
        raise ValueError("attribution_agreement needs true_features or true_values")
    k = top_k(values.shape[1]) if k is None else k
    recalls, corrs = [], []
    for i in range(values.shape[0]):
        if true_features is not None:
            truth_set = list(true_features)
        else:
            assert true_values is not None
            truth_set = (
                true_values[i].abs().argsort(descending=True, stable=True)[:TRUE_SET_SIZE].tolist()
            )
        recalls.append(top_k_recall(values[i], truth_set, k))
        if true_values is not None:
            corrs.append(spearman(values[i].abs(), true_values[i].abs()))
    out = {"top_k_recall": mean_estimate(recalls)}
    if corrs:
        out["attribution_rank_corr"] = mean_estimate(corrs)
    return out


def deletion_insertion(
    model: Any,
    rows: Tensor,
    values: Tensor,
    background: Tensor,
    *,
    n_background: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Deletion / insertion curves over k = 0..d features (see the module docstring);
    ``model``: one binary model, or one per row."""
    gen = torch.Generator().manual_seed(seed)
    d = rows.shape[1]
    dele, ins = torch.zeros(rows.shape[0], d + 1), torch.zeros(rows.shape[0], d + 1)
    models = model
    for i, x in enumerate(rows.double()):
        model = _row_model(models, i)
        bg = background[
            torch.randint(0, background.shape[0], (n_background,), generator=gen)
        ].double()
        target = bool(model.decide(x[None])[0])
        order = values[i].abs().argsort(descending=True)
        del_rows, ins_rows = [], []
        for k in range(d + 1):
            top = order[:k]
            r = x.repeat(n_background, 1)
            r[:, top] = bg[:, top]
            del_rows.append(r)
            s = bg.clone()
            s[:, top] = x[top]
            ins_rows.append(s)
        p_del = torch.sigmoid(model.logit(torch.cat(del_rows))).reshape(d + 1, n_background).mean(1)
        p_ins = torch.sigmoid(model.logit(torch.cat(ins_rows))).reshape(d + 1, n_background).mean(1)
        dele[i] = p_del if target else 1 - p_del
        ins[i] = p_ins if target else 1 - p_ins
    auc = lambda c: ((c[:, 1:] + c[:, :-1]) / 2).mean(1)  # noqa: E731  (area over k / d)
    return {
        "deletion_auc": mean_estimate(auc(dele).tolist()),
        "insertion_auc": mean_estimate(auc(ins).tolist()),
        "deletion_curve": dele.mean(0).tolist(),
        "insertion_curve": ins.mean(0).tolist(),
    }


def stability(
    attribute_fn: Callable[[Tensor, int], Tensor] | Sequence[Callable[[Tensor, int], Tensor]],
    features: Sequence[Any],
    rows: Tensor,
    background: Tensor,
    *,
    seed: int = 0,
    noise: float = 0.05,
) -> Estimate:
    """Mean Spearman correlation of ``attribute_fn(x, seed)`` with ``attribute_fn(x + noise)``
    (``attribute_fn``: one function, or one per row)."""
    gen = torch.Generator().manual_seed(seed + 99)
    sd = background.double().std(0)
    numeric = torch.tensor([not f.discrete for f in features])
    lo = torch.tensor([f.span[0] for f in features], dtype=torch.float64)
    hi = torch.tensor([f.span[1] for f in features], dtype=torch.float64)
    corrs = []
    for i, x in enumerate(rows.double()):
        noisy = x + noise * sd * torch.randn(x.shape, generator=gen, dtype=torch.float64) * numeric
        noisy = torch.minimum(torch.maximum(noisy, lo), hi)
        fn = _row_model(attribute_fn, i)
        corrs.append(spearman(fn(x, i), fn(noisy, i + 10_000)))
    return mean_estimate(corrs)
