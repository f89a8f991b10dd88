"""Training-data attribution track: attribution scores against retraining and planted truth.

Organisms (:mod:`interplab.zoo.data_attribution`): digit classifiers (logistic regression, a
small tanh MLP) trained on 300 or 1000 of scikit-learn's 8×8 digits with 10% flipped labels and a
few planted trigger examples; ``passages-mlp``, a next-token MLP on synthetic text with three
planted "protected" passages (each copied 4 times) and 10% wrong next tokens; ``passages-transformer``
(full suite only), a 1-layer causal transformer (interplab's native one) on the same text, without
``if_exact`` (its exact Hessian, 9552², is too large) and with 20 leave-one-out retrainings instead
of 40 (its ground truth must stay near 2 minutes). Their ground truth (:mod:`interplab.zoo.retraining_truth`) comes
only from retraining with the organism's own training code — never from a method — and is
measured on held-out test points that no method sees while it is set up (method settings are
fixed constants, chosen before any ground truth existed). The first run builds and caches it
(progress bar; an interrupted build resumes).

Methods: :data:`~interplab.methods.data_attribution.METHODS`; controls (registry baselines,
never ranked best): ``random`` and the nearest-neighbour baselines ``nn_input`` and
``nn_representation``. No oracle exists for LDS short of the retraining itself.

Rows per job:
    lds                     mean over test points of the Spearman correlation between predicted
                            and retrained outputs over the 50% subsets
    loo_correlation         mean Spearman correlation with the leave-one-out effects
    mislabel_recall_at_10   share of the flipped-label examples in the top 10% by self-influence
                            (None with a reason for grad_cos, whose self-influence is constant,
                            and where :data:`SELF_INFLUENCE_OMITTED` says why)
    planted_recall          share of the planted examples in the top-k attributions of the
                            triggered test inputs (k = number planted; for passages, the copies
                            of the passage the prompt reproduces)
    method_seconds, n_test, n_subsets, n_loo
A metric the track does not compute for a job is a row with value None and its reason (for
:data:`SELF_INFLUENCE_OMITTED`, repeated in the ``omitted`` artifact). The ``estimates`` artifact holds each metric's 95% interval and n (bootstrap over test points;
Wilson over flipped examples); ``ground_truth_used`` says where the truth came from.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from interplab.bench.track import Job, JobOutput, Metric, module_track
from interplab.errors import ConfigError, unknown_name

ORGANISMS = (
    "digits-logreg",
    "digits-mlp",
    "digits-logreg-1000",
    "digits-mlp-1000",
    "passages-mlp",
    "passages-transformer",
)
METHODS = (
    "grad_dot",
    "grad_cos",
    "tracin",
    "if_exact",
    "if_cg",
    "if_lissa",
    "ekfac",
    "trak",
    "representer",
    "random",
    "nn_input",
    "nn_representation",
)
ABLATIONS = (None,)
METRICS = ("lds", "loo_correlation", "mislabel_recall_at_10", "planted_recall")
SUITES = {
    "quick": [{"organisms": ["digits-logreg"], "methods": list(METHODS), "ablations": [None]}],
    "full": [
        {
            "organisms": [o for o in ORGANISMS if o != "passages-transformer"],
            "methods": list(METHODS),
            "ablations": [None],
        },
        {
            "organisms": ["passages-transformer"],
            "methods": [m for m in METHODS if m != "if_exact"],
            "ablations": [None],
        },
    ],
}
_SLOW_SELF = (
    "self-influence needs one {} solve per training example (300 here): ~20 s per 15 "
    "right-hand sides for the transformer on one core, ~7 minutes per job; the test and triggered "
    "points (65 solves) are still scored"
)
#: (classifier kind, method) -> why mislabel_recall_at_10 is not computed there (the ``omitted`` artifact)
SELF_INFLUENCE_OMITTED = {
    ("transformer", "if_cg"): _SLOW_SELF.format("conjugate-gradient"),
    ("transformer", "if_lissa"): _SLOW_SELF.format("LiSSA"),
}
MISLABEL_FRACTION = 0.1


@functools.lru_cache(maxsize=4)
def load(organism: str) -> tuple[Any, Any]:
    """(organism, its retraining truth), built and cached on first use."""
    from interplab.zoo.data_attribution import load_or_train
    from interplab.zoo.retraining_truth import build_truth

    if organism not in ORGANISMS:
        raise unknown_name("data-attribution organism", organism, ORGANISMS)
    org = load_or_train(organism)
    return org, build_truth(org)


def run_job(job: Job) -> JobOutput:
    from interplab.eval import data_attribution as E
    from interplab.methods.data_attribution import attribute_data

    if job.method not in METHODS:
        raise unknown_name("data-attribution method", job.method, METHODS)
    if job.ablation is not None:
        raise ConfigError(f"the data_attribution track takes no ablation, got {job.ablation!r}")
    org, truth = load(job.organism)
    d = org.data
    train = (d.x_train, d.y_train)
    omitted = {}
    if (org.spec.classifier.kind, job.method) in SELF_INFLUENCE_OMITTED:
        omitted["mislabel_recall_at_10"] = SELF_INFLUENCE_OMITTED[
            org.spec.classifier.kind, job.method
        ]
    start = time.perf_counter()
    att = attribute_data(
        org.model,
        train,
        (d.x_test, d.y_test),
        method=job.method,
        self_influence="mislabel_recall_at_10" not in omitted,
        seed=job.seed,
    )
    planted = attribute_data(
        org.model, train, (d.x_triggered, d.triggered_labels), method=job.method, seed=job.seed
    )
    seconds = time.perf_counter() - start
    est = {
        "lds": E.lds(att.scores, truth.masks, truth.outputs, seed=job.seed),
        "loo_correlation": E.loo_correlation(
            att.scores, truth.loo_index, truth.loo_effect, seed=job.seed
        ),
        "planted_recall": E.planted_recall(
            planted.scores, d.planted, d.planted_group, d.triggered_group, seed=job.seed
        ),
    }
    rows: list[dict[str, Any]] = [{"metric": m, "value": e.value} for m, e in est.items()]
    if omitted:
        rows.append(
            {
                "metric": "mislabel_recall_at_10",
                "value": None,
                "reason": omitted["mislabel_recall_at_10"],
            }
        )
    elif att.self_influence is None:
        rows.append(
            {
                "metric": "mislabel_recall_at_10",
                "value": None,
                "reason": f"{job.method} has no self-influence (a self-cosine is always 1)",
            }
        )
    else:
        est["mislabel_recall_at_10"] = E.mislabel_recall_at(
            att.self_influence, d.flipped, MISLABEL_FRACTION
        )
        rows.append(
            {"metric": "mislabel_recall_at_10", "value": est["mislabel_recall_at_10"].value}
        )
    rows += [
        {"metric": "method_seconds", "value": seconds},
        {"metric": "n_test", "value": len(d.x_test)},
        {"metric": "n_subsets", "value": len(truth.masks)},
        {"metric": "n_loo", "value": len(truth.loo_index)},
    ]
    artifacts = {
        "estimates": {m: e.to_json() for m, e in est.items()},
        "ground_truth_used": {
            "source": "retraining with the organism's training code (no attribution method)",
            "subsets": len(truth.masks),
            "subset_fraction": org.spec.subset_fraction,
            "loo_points": len(truth.loo_index),
            "test_points": len(d.x_test),
            "flipped": len(d.flipped),
            "planted": len(d.planted),
            "planted_effect": {
                "triggered_margin_with": float(truth.triggered_with.mean()),
                "without_planted": float(truth.triggered_without.mean()),
            },
            "fingerprint": truth.fingerprint,
        },
        "example_top10_test0": att.top(0, 10),
    }
    if omitted:
        artifacts["omitted"] = dict(omitted)
    return JobOutput(rows=rows, artifacts=artifacts)


TRACK = module_track(
    globals(),
    name="data_attribution",
    metrics=(
        Metric("lds", headline=True),
        Metric("loo_correlation"),
        Metric("mislabel_recall_at_10"),
        Metric("planted_recall"),
        Metric("method_seconds", better="lower", bookkeeping=True),
        Metric("n_test", better=None, bookkeeping=True),
        Metric("n_subsets", better=None, bookkeeping=True),
        Metric("n_loo", better=None, bookkeeping=True),
    ),
    section="interplab.report.data_attribution:section",
)
