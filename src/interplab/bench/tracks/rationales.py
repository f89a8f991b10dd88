"""Rationales track: attributions, recourse, surrogates and checked rationales on decision organisms.

Organisms (:mod:`interplab.zoo.tabular`): credit-rule (truth: the 4-feature scorecard),
credit-linear (truth: the exact Shapley values; a row's true features are its 4 largest),
credit-mlp, cancer-mlp (no truth: only counterfactual checks), digits-rule (truth: the 3
planted patch pixels), credit-tiers (three classes refuse/review/approve; truth: the 4 scorecard
features decide the class). Each job explains the
first N decisions of a seeded shuffle of the organism's *test* rows (N = N_ROWS["quick"] on the
quick suite's organisms, whatever the suite, so their jobs stay cheap; N_ROWS["full"] on the
others); the background
(reference population) is the training rows. Truths come from the zoo (the rule, or the stored
coefficients), never from :mod:`interplab.methods`.

A multi-class organism (credit-tiers) is explained as ``explain`` does by default: each row's
predicted class *rather than its runner-up* (the best other class at that row), through the
binary contrast ``model.versus(predicted, runner_up)``; attributions, deletion/insertion and
stability are of that contrast's score, and top-k recall is scored against the planted features
(which decide every contrast). Recourse (and its baselines) must make the model *predict* the
runner-up: validity is re-checked on the three-class model itself (``predict``). The surrogate
mimics the predicted class (majority floor: the commonest predicted class).

Methods and their metrics (each with an ``estimates`` artifact: value, 95 % interval, n):
    kernel_shap, integrated_gradients, occlusion, permutation, random, oracle:linear_shap,
    shap_kernel, shap_permutation (the SHAP library's explainers at their defaults; full suite,
    where shap is installed, each given a seeded SHAP_BACKGROUND-row sample of the background)
        top_k_recall (the headline: the share of the true features among the k = ⌈d/4⌉
        largest |φ| — a fixed quarter of the d features, never the truth's size — so random
        scores ≈ 0.25; see :func:`interplab.eval.rationales.top_k`), attribution_rank_corr,
        deletion_auc (lower = more faithful), insertion_auc, stability, claim_accuracy (the
        shown claims of the rationale built on these attributions, re-tested on fresh
        interventions: high by construction, since the claims shown already passed a check
        of the same kind), claim_accuracy_unchecked (every candidate claim re-tested, before
        the check filtered them: what a tool without checks would state), claims_dropped; on credit-linear
        also oracle_max_abs_error and (kernel_shap) error_coverage: the share of features
        within the reported error
    recourse, nearest_neighbour, random
        counterfactual_validity (1.0 by construction for recourse, which keeps only options
        it verified), actionability, proximity, sparsity
    surrogate
        surrogate_fidelity (held-out agreement of a depth-3 tree with the model) and
        majority_fidelity (always predicting the commoner decision: the floor)
``random`` is the control for both families; ``nearest_neighbour`` (a real applicant with the
other decision, immutable features kept) and ``permutation`` (a global, not per-decision,
importance) are the non-interpretability baselines.
``oracle:linear_shap`` is the truth formula itself (exact Shapley values of a model linear in its
encoded inputs): its rows show the headroom and are never ranked, and it is expanded only for
linear organisms (:func:`applies`; ``interplab bench --list`` names the jobs left out and why).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch

from interplab.bench.track import Job, JobOutput, Metric, module_track
from interplab.errors import unknown_name

ORGANISMS = (
    "credit-rule",
    "credit-linear",
    "credit-mlp",
    "cancer-mlp",
    "digits-rule",
    "credit-tiers",
)
#: the SHAP library's own explainers (full suite; where shap is installed): what users run today
SHAP_METHODS = ("shap_kernel", "shap_permutation")
#: background rows the shap_* methods get: a seeded sample of the organism's background, as
#: shap's documentation advises for large backgrounds (the whole 600-row background costs
#: KernelExplainer ~10 s a row); interplab's own methods get the whole background
SHAP_BACKGROUND = 100
ATTRIBUTION = ("kernel_shap", "integrated_gradients", "occlusion", "permutation", *SHAP_METHODS)
#: exact values (the truth formula): headroom rows, never ranked
ORACLES = ("oracle:linear_shap",)
METHODS = ATTRIBUTION + ORACLES + ("recourse", "nearest_neighbour", "surrogate", "random")
ABLATIONS: tuple[str | None, ...] = (None,)
SUITES: dict[str, dict[str, Any]] = {
    "quick": {
        "organisms": ["credit-rule", "credit-linear", "credit-tiers"],
        "methods": [
            "kernel_shap",
            "oracle:linear_shap",
            "integrated_gradients",
            "occlusion",
            "permutation",
            "recourse",
            "nearest_neighbour",
            "random",
        ],
        "ablations": [None],
    },
    "full": {"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": [None]},
}
N_ROWS = {"quick": 16, "full": 48}
N_STABILITY = 6  # rows re-attributed under noise


def n_rows(organism: str) -> int:
    return N_ROWS["quick"] if organism in SUITES["quick"]["organisms"] else N_ROWS["full"]


def why_not(organism: str, method: str) -> str | None:
    """Why ``method`` cannot run on ``organism`` (None: it can). Read from the organism's spec,
    so listing a bench spec trains nothing."""
    if method in SHAP_METHODS:
        import importlib.util

        if importlib.util.find_spec("shap") is None:
            return "needs the SHAP library, which is not installed (pip install 'interplab[dev]')"
    if method == "oracle:linear_shap" and organism in ORGANISMS:
        from interplab.zoo.tabular import SPECS

        hidden = SPECS[organism].train.hidden
        if hidden:
            return (
                f"exact linear SHAP needs a model linear in its encoded inputs; {organism} is an "
                f"MLP (hidden layers {list(hidden)}), so it has no exact values to show"
            )
    return None


def applies(organism: str, method: str) -> bool:
    """Whether the bench expands the job (``interplab.bench.spec``); see :func:`why_not`."""
    return why_not(organism, method) is None


def methods_of(organism: str) -> tuple[str, ...]:
    """The methods that can run on ``organism``."""
    return tuple(m for m in METHODS if applies(organism, m))


@functools.lru_cache(maxsize=8)
def _setup(organism: str, seed: int, n: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    from interplab.methods.rationales import DecisionModel
    from interplab.zoo.tabular import get

    org = get(organism, seed)
    model = DecisionModel.from_torch(org.model, org.features, outcomes=org.classes)
    test = org.test_rows
    pick = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(seed + 5))[:n]
    return org, model, test[pick], org.background


@functools.lru_cache(maxsize=8)
def _explained(organism: str, seed: int, n: int) -> tuple:
    """The binary model each row is explained through: the model itself (two classes), or the
    row's predicted class against its runner-up (K classes; as ``explain`` does by default)."""
    _, model, rows, _ = _setup(organism, seed, n)
    if model.n_classes == 2:
        return (model,) * rows.shape[0]
    out = []
    for x in rows:
        pred = int(model.predict(x[None])[0])
        out.append(model.versus(pred, model.runner_up(x, pred)))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _recourse(organism: str, seed: int, n: int) -> tuple:
    from interplab.methods.rationales import find_recourse

    _, model, rows, bg = _setup(organism, seed, n)
    return tuple(find_recourse(model, x, baseline=bg) for x in rows)


def run_job(job: Job) -> JobOutput:
    if job.organism not in ORGANISMS:
        raise unknown_name("rationales-track organism", job.organism, ORGANISMS)
    if job.method not in METHODS:
        raise unknown_name("rationales-track method", job.method, METHODS)
    reason = why_not(job.organism, job.method)
    if reason is not None:
        from interplab.errors import ConfigError

        raise ConfigError(f"{job.key}: {reason}; the bench does not expand this job")
    n = n_rows(job.organism)
    org, model, rows, bg = _setup(job.organism, job.seed, n)
    start = time.perf_counter()
    est: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    if job.method in ATTRIBUTION + ORACLES or job.method == "random":
        _attribution_job(job, org, model, rows, bg, est, reasons)
    if job.method in ("recourse", "nearest_neighbour", "random"):
        _recourse_job(job, model, rows, bg, est)
    if job.method == "surrogate":
        from interplab.methods.rationales import fit_surrogate

        s = fit_surrogate(model, org.test_rows, baseline=bg)
        est["surrogate_fidelity"] = {"value": s.fidelity, "n": s.n_held_out}
        est["majority_fidelity"] = {"value": s.majority_fidelity, "n": s.n_held_out}
        est["rules"] = s.rules(org.classes)
    seconds = time.perf_counter() - start
    rows_out = [
        {"metric": m, "value": e["value"], "seconds": seconds}
        for m, e in est.items()
        if isinstance(e, dict) and "value" in e
    ]
    rows_out += [{"metric": m, "value": None, "reason": r} for m, r in reasons.items()]
    rows_out.append({"metric": "n_rows", "value": float(n)})
    artifacts = {
        "estimates": {m: e for m, e in est.items() if isinstance(e, dict) and "value" in e},
        "omitted": reasons,
    }
    artifacts.update({k: v for k, v in est.items() if not (isinstance(v, dict) and "value" in v)})
    return JobOutput(rows=rows_out, artifacts=artifacts)


def _put(est: dict, scores: dict) -> None:
    for name, e in scores.items():
        if hasattr(e, "value"):
            est[name] = {"value": e.value, "low": e.low, "high": e.high, "n": e.n}
        else:
            est[name] = e


def _attribution_job(job, org, model, rows, bg, est, reasons) -> None:
    from interplab.errors import ConfigError
    from interplab.eval import rationales as E
    from interplab.methods.rationales import attribute, explain

    method = job.method
    explained = _explained(job.organism, job.seed, rows.shape[0])
    ref = bg  # the reference population the attribution method itself is given
    if method in SHAP_METHODS and bg.shape[0] > SHAP_BACKGROUND:
        gen = torch.Generator().manual_seed(job.seed + 11)
        ref = bg[torch.randperm(bg.shape[0], generator=gen)[:SHAP_BACKGROUND]]
    try:
        attrs = [
            attribute(explained[i], x, method=method, baseline=ref, seed=job.seed + i)
            for i, x in enumerate(rows)
        ]
    except ConfigError as exc:
        for m in ("top_k_recall", "claim_accuracy", "deletion_auc", "stability"):
            reasons[m] = str(exc)
        return
    values = torch.stack([a.values for a in attrs])
    truth = org.true_attributions(rows)
    true_feats = org.true_features()
    names = list(model.names)
    if model.n_classes > 2:
        est["contrasts"] = [e.contrast.text for e in explained if e.contrast is not None]
    if true_feats is not None or truth is not None:
        idx = [names.index(f) for f in true_feats] if true_feats is not None else None
        k = E.top_k(values.shape[1])
        _put(est, E.attribution_agreement(values, true_values=truth, true_features=idx, k=k))
        est["top_k_recall"]["k"] = k  # a setting of the score, shown beside it
    else:
        reasons["top_k_recall"] = f"{job.organism} has no known reason (no ground truth)"
    if truth is not None and org.truth.get("kind") == "linear":
        err = (values - truth).abs()
        est["oracle_max_abs_error"] = {"value": float(err.max()), "n": int(err.numel())}
        if attrs[0].error is not None:
            bounds = torch.stack([a.error for a in attrs if a.error is not None])
            within = int((err <= bounds + 1e-9).sum())
            _put(est, {"error_coverage": E.wilson(within, int(err.numel()))})
    curves = E.deletion_insertion(list(explained), rows, values, bg, seed=job.seed)
    _put(est, {k: v for k, v in curves.items() if not k.endswith("curve")})
    est["curves"] = {"deletion": curves["deletion_curve"], "insertion": curves["insertion_curve"]}
    if method != "permutation":
        fns = [
            lambda x, s, m=m: attribute(m, x, method=method, baseline=ref, seed=job.seed + s).values
            for m in explained[:N_STABILITY]
        ]
        _put(
            est,
            {"stability": E.stability(fns, model.features, rows[:N_STABILITY], bg, seed=job.seed)},
        )
    else:
        reasons["stability"] = "permutation importance is global: the same for every row"
    recs = _recourse(job.organism, job.seed, rows.shape[0])
    rats = [
        explain(
            model,
            x,
            baseline=bg,
            method=method,
            seed=job.seed + i,
            recourse=recs[i],
            attributions=attrs[i],
        )
        for i, x in enumerate(rows)
    ]
    _put(est, E.claim_accuracy(model, rats, bg, seed=job.seed + 1))


def _recourse_job(job, model, rows, bg, est) -> None:
    from interplab.eval import rationales as E
    from interplab.methods.rationales import nearest_neighbour, random_recourse

    if job.method == "recourse":
        recs = _recourse(job.organism, job.seed, rows.shape[0])
    elif job.method == "nearest_neighbour":
        recs = tuple(nearest_neighbour(model, x, baseline=bg) for x in rows)
    else:
        recs = tuple(
            random_recourse(model, x, baseline=bg, seed=job.seed + i) for i, x in enumerate(rows)
        )
    _put(est, E.counterfactual_scores(model, list(rows), recs))


TRACK = module_track(
    globals(),
    name="rationales",
    metrics=(
        Metric("top_k_recall", headline=True),
        Metric("attribution_rank_corr"),
        Metric("claim_accuracy_unchecked"),
        Metric("claim_accuracy"),
        Metric("deletion_auc", better="lower"),
        Metric("insertion_auc"),
        Metric("stability"),
        Metric("oracle_max_abs_error", better="lower"),
        Metric("error_coverage"),
        Metric("claims_dropped", better="lower"),
        Metric("counterfactual_validity"),
        Metric("actionability"),
        Metric("proximity", better="lower"),
        Metric("sparsity", better="lower"),
        Metric("surrogate_fidelity"),
        Metric("majority_fidelity"),
        Metric("n_rows", better=None, bookkeeping=True),
    ),
    section="interplab.report.rationales:section",
    why_not_fn=why_not,
)
