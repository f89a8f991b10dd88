"""Utility task: does this credit model rely on a protected attribute, and through which feature?

Organisms (:mod:`interplab.zoo.fairness`): MLPs deciding German credit applications from inputs
that exclude every protected feature, plus two synthetic zone columns that carry the protected
attribute (age < 30, or sex) equally well: one is a PROXY the planted labels penalise (level
weak or strong), the other a DECOY nothing reads; the ``none`` twins see the same columns and
rely on neither. Each truth is verified by intervention on held-out rows when the organism is
built and when it is loaded (flipping the proxy flips decisions as the planted rule does; the
twin's proxy and every decoy flip ≤ 2 %). Each seed builds its own population:

    fairness-credit-small   age and sex × (none v0, none v1, weak v0, strong v0): 8 organisms,
                            4 reliant
    fairness-credit         age and sex × variants 0..3 × (none, weak, strong): 24 organisms,
                            16 reliant, 5 seeds

Budget, the same for every arm and organism: 200 held-out applicants (drawn per seed) with
their protected group and real outcome known, plus model queries on them (counted per arm in
the details; one query = one row through the model). No arm sees the truth but the oracle.

    interp:attribution_gaps   integrated-gradient gap between the groups, per feature; reliance
                              = the largest gap (:func:`interplab.methods.fairness.attribution_gaps`)
    interp:concept_erasure    LEACE-erase the group from the hidden layer; reliance = share of
                              decisions changed; features by the group probe's input gradient
    baseline:swap_test        black box: swap one feature's value between groups, reliance = the
                              largest change in approval rate
    baseline:swap_scores      the same test on the model's score (its logit, what a scoring API
                              returns) instead of its decision: sees uses that move scores
                              without crossing the cutoff
    baseline:parity_audit     demographic-parity gap of the decisions (no feature scores)
    baseline:correlation      data only: |correlation| of each feature with the group; reliance =
                              the largest (the model is never queried)
    baseline:random           random scores (mean of 10 draws)
    oracle:planted            the planted level and proxy

Equal tuning: no arm has a setting to choose; each is ranked by its raw score (AUROC needs no
threshold), so no selection is made (``selection: None``); IG's 16 steps are fixed here.

Metric ``reliance_detection_auroc`` (per seed, over its organisms: reliant vs not); secondary
``proxy_detection_auroc`` (per reliant organism, the proxy against every other input feature,
averaged; no number for an arm without feature scores) and ``proxy_over_decoy_rate`` (share of
reliant organisms whose proxy scores above the decoy, ties ½: what correlation cannot tell).
"""

from __future__ import annotations

import math
from typing import Any

from interplab.eval.utility import ArmRun, Budget, UtilityTask, run_seeds

ARMS = (
    "interp:attribution_gaps",
    "interp:concept_erasure",
    "baseline:swap_test",
    "baseline:swap_scores",
    "baseline:parity_audit",
    "baseline:correlation",
    "baseline:random",
    "oracle:planted",
)
BUDGET_ROWS = 200
IG_STEPS = 16
RANDOM_DRAWS = 10
BUDGET = Budget(
    "training_examples",
    BUDGET_ROWS,
    "200 held-out applicants per organism with protected group and real outcome known, the "
    "same rows for every arm of a seed; model queries on them counted per arm in the details "
    "(correlation, random and the oracle query nothing)",
)
#: task -> (organism (attribute, level, variant) tuples per seed, seeds)
POPULATIONS: dict[str, tuple[tuple[tuple[str, str, int], ...], int]] = {
    "fairness-credit-small": (
        tuple(
            (a, lv, v)
            for a in ("age", "sex")
            for lv, v in (("none", 0), ("none", 1), ("weak", 0), ("strong", 0))
        ),
        3,
    ),
    "fairness-credit": (
        tuple(
            (a, lv, v)
            for a in ("age", "sex")
            for v in range(4)
            for lv in ("none", "weak", "strong")
        ),
        5,
    ),
}
_DESC = (
    "Credit MLPs without protected inputs; some penalise a synthetic zone column that carries "
    "age or sex (the proxy), beside an equally correlated decoy nothing reads. Detect the "
    "reliant models (AUROC over each seed's organisms) and name the proxy."
)


def _task(name: str) -> UtilityTask:
    orgs, seeds = POPULATIONS[name]
    reliant = sum(lv != "none" for _, lv, _ in orgs)
    return UtilityTask(
        name=name,
        metric="reliance_detection_auroc",
        arms=ARMS,
        budget=BUDGET,
        description=f"{_DESC} {len(orgs)} organisms per seed ({reliant} reliant).",
        n_seeds=seeds,
        secondary=("proxy_detection_auroc", "proxy_over_decoy_rate"),
    )


TASKS: dict[str, UtilityTask] = {name: _task(name) for name in POPULATIONS}


def budget_rows(org: Any, seed: int) -> Any:
    """Indices of the BUDGET_ROWS held-out applicants every arm gets (drawn by seed)."""
    import torch

    gen = torch.Generator().manual_seed(7919 + seed)
    pick = torch.randperm(len(org.test_idx), generator=gen)[:BUDGET_ROWS]
    return org.test_idx[pick.sort().values]


def score_organism(arm: str, model: Any, audit: dict[str, Any], seed: int) -> dict[str, Any]:
    """One arm on one organism, seeing only what an auditor has (``audit``: features, rows,
    group, outcome) and the model: {"reliance", "features" (tensor or None), "queries", ...};
    ``seed``: the organism's own draw (random arms, the swap test's donors).
    ``oracle:planted`` is answered by :func:`oracle_scores`, never here."""
    import torch

    from interplab.methods import fairness as F

    x, g, y, feats = audit["x"], audit["group"], audit["outcome"], audit["features"]

    def decide(rows: Any) -> Any:
        with torch.no_grad():
            return (model(rows.double()) > 0).long()

    if arm == "interp:attribution_gaps":
        r = F.attribution_gaps(model, x, g, steps=IG_STEPS)
    elif arm == "interp:concept_erasure":
        r = F.erasure_test(model, x, g, y)
    elif arm == "baseline:swap_test":
        r = F.swap_effects(decide, x, g, seed=seed)
    elif arm == "baseline:swap_scores":

        def logit(rows: Any) -> Any:
            with torch.no_grad():
                return model(rows.double())

        r = F.swap_effects(logit, x, g, seed=seed)
    elif arm == "baseline:parity_audit":
        r = F.parity_audit(decide, x, g, y)
    elif arm == "baseline:correlation":
        r = F.correlation_screen(x, g, feats)
    elif arm == "baseline:random":
        gen = torch.Generator().manual_seed(seed)
        return {
            "reliance": torch.rand(RANDOM_DRAWS, generator=gen, dtype=torch.float64),
            "features": torch.rand(RANDOM_DRAWS, len(feats), generator=gen, dtype=torch.float64),
            "queries": 0,
        }
    else:  # pragma: no cover - check_arm rejects unknown arms first
        raise AssertionError(arm)
    extra = {k: v for k, v in r.extra.items() if not isinstance(v, list)}
    return {"reliance": r.reliance, "features": r.feature_scores, "queries": r.queries, **extra}


def oracle_scores(truth: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The planted answer: reliance = the level (0, 1, 2), feature score 1 for the proxy."""
    import torch

    level = {"none": 0.0, "weak": 1.0, "strong": 2.0}[truth["level"]]
    feats = torch.tensor([float(n == truth["proxy"]) for n in names], dtype=torch.float64)
    return {"reliance": level, "features": feats, "queries": 0}


def _metrics(scored: list[dict[str, Any]], orgs: list[Any]) -> dict[str, float]:
    """The seed's metrics from each organism's scores (``reliance``/``features`` may hold
    RANDOM_DRAWS draws: each metric is then the mean over draws)."""
    import torch

    from interplab.methods.fairness import auroc

    reliant = [bool(o.truth["reliant"]) for o in orgs]
    rel = torch.stack(
        [torch.as_tensor(s["reliance"], dtype=torch.float64).reshape(-1) for s in scored]
    )
    detect = sum(auroc(rel[:, k], reliant) for k in range(rel.shape[1])) / rel.shape[1]
    out = {"reliance_detection_auroc": detect}
    if any(s["features"] is None for s in scored):
        return {**out, "proxy_detection_auroc": math.nan, "proxy_over_decoy_rate": math.nan}
    proxy_auc, over = [], []
    for s, o in zip(scored, orgs):
        if not o.truth["reliant"]:
            continue
        names = o.names
        f = torch.as_tensor(s["features"], dtype=torch.float64)
        f = f.reshape(-1, len(names))
        p, d = names.index(o.truth["proxy"]), names.index(o.truth["decoy"])
        labels = [int(j == p) for j in range(len(names))]
        proxy_auc.append(sum(auroc(row, labels) for row in f) / len(f))
        over.append(
            float(((f[:, p] > f[:, d]).double() + 0.5 * (f[:, p] == f[:, d]).double()).mean())
        )
    return {
        **out,
        "proxy_detection_auroc": sum(proxy_auc) / len(proxy_auc),
        "proxy_over_decoy_rate": sum(over) / len(over),
    }


def load_population(task: UtilityTask, seed: int) -> list[Any]:
    """The seed's organisms (each verified on load; a failing truth raises)."""
    from interplab.zoo import fairness as Z

    orgs, _ = POPULATIONS[task.name]
    return [Z.get(Z.organism_name(a, lv, v), seed) for a, lv, v in orgs]


def _one_seed(task: UtilityTask, arm: str, seed: int) -> tuple[dict[str, float], float, dict]:
    orgs = load_population(task, seed)
    scored, queries, extras = [], [], []
    for k, o in enumerate(orgs):
        idx = budget_rows(o, seed)
        if arm == "oracle:planted":
            s = oracle_scores(o.truth, o.names)
        else:
            audit = {
                "x": o.data.x[idx],
                "group": o.protected[idx],
                "outcome": o.data.y[idx],
                "features": o.features,
            }
            s = score_organism(arm, o.model, audit, seed * 1000 + k)
        scored.append(s)
        queries.append(s["queries"])
        extras.append(
            {
                "organism": o.name,
                "reliance": float(s["reliance"]) if not hasattr(s["reliance"], "shape") else None,
                **{k: v for k, v in s.items() if k not in ("reliance", "features", "queries")},
            }
        )
    values = _metrics(scored, orgs)
    info = {
        "selection": None,
        "organisms": len(orgs),
        "reliant": sum(bool(o.truth["reliant"]) for o in orgs),
        "queries_per_organism": sum(queries) / len(queries),
        "labelled_rows_per_organism": BUDGET_ROWS,
        "secondary": {k: values[k] for k in task.secondary},
        "per_organism": extras,
    }
    return values, float(BUDGET_ROWS), info


def run(task: UtilityTask, arm: str, seeds: list[int]) -> ArmRun:
    """Run ``arm`` of ``task`` on each seed (a fresh population per seed); see the module doc.
    A seed that fails is recorded in ``ArmRun.failed``; the secondary metrics are NaN where the
    arm names no feature (parity audit) without failing the seed."""
    import torch

    task.check_arm(arm)
    torch.set_num_threads(1)
    values, spent, per_seed, failed = run_seeds(
        (task.metric,), seeds, lambda s: _one_seed(task, arm, s)
    )
    for m in task.secondary:
        values[m] = [
            float(p.get("secondary", {}).get(m, math.nan)) if not p.get("failed") else math.nan
            for p in per_seed
        ]
    n_org = len(POPULATIONS[task.name][0])
    return ArmRun(
        values,
        {task.metric: n_org, **{m: n_org for m in task.secondary}},
        spent,
        {"per_seed": per_seed, "budget_rows": BUDGET_ROWS, "organisms_per_seed": n_org},
        failed,
    )
