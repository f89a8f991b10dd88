"""Copyright track: which fine-tuning documents made SmolLM2 reproduce a passage, state a fact,
or write in a style? (full suite only)

Organism (:mod:`interplab.zoo.copyright`): ``smollm2-ft``, SmolLM2-135M fine-tuned with LoRA on
~250 short documents with planted passages, facts and letter styles, each planted item verified
by retraining (its ``sources``: the documents that planted it). ``smollm2-ft-tiny`` (the same
pipeline on a tiny random Llama) is known to the track for tests and is in no suite.

Queries and scores: :mod:`interplab.eval.copyright`. Per planted item, the prompt and the
model's greedy continuation (as many tokens as the target); the attributed quantity is the
continuation's loss given the prompt; the training examples are the documents with the
fine-tune's loss.

Methods: trak, ekfac, grad_cos, tracin through the any-module attribution API over the
adapter parameters (trak and tracin over :data:`~interplab.eval.copyright.CHECKPOINTS` of the
organism's checkpoints; the API's ekfac puts every adapter parameter on its diagonal, as it
factors nn.Linear layers only), and ekfac_lora, EK-FAC over each adapter's A and B maps
(:func:`interplab.eval.copyright.lora_ekfac`). Baselines (registry
baselines of the ``text_attribution`` family, never ranked best): word 3-gram overlap, BM25,
MiniLM embedding nearest neighbour, loss-based membership inference (query-independent), random.

Rows per job:
    recall_at_10_passage / _fact / _style   mean over the kind's items of the share of the item's
                            source documents among the top 10 (top |sources| when an item has
                            more than 10; ties at the cut share its places)
    lds                     the linear datamodeling score: per query, the Spearman correlation
                            across the organism's subset retrainings (the recipe re-run on
                            seeded halves of the documents: 8 for smollm2-ft) between the sum
                            of the query's scores over a subset's documents and minus the
                            query's continuation loss after that retraining; mean over queries
    seconds_per_query       the method's wall time over the number of queries (all its passes
                            over the documents included)
    n_queries, n_docs
The ``estimates`` artifact holds each recall's 95% bootstrap interval over items and n.
"""

from __future__ import annotations

import functools
from typing import Any

from interplab.bench.track import Job, JobOutput, Metric, module_track
from interplab.errors import ConfigError, MissingExtraError, unknown_name
from interplab.eval.copyright import BASELINES, KINDS
from interplab.eval.copyright import METHODS as GRADIENT_METHODS

# registers the text baselines (family text_attribution) before the track reads their kinds
from interplab.methods.data_attribution import text_baselines as _text_baselines  # noqa: F401

ORGANISMS = ("smollm2-ft", "smollm2-ft-tiny")
METHODS = GRADIENT_METHODS + BASELINES
ABLATIONS = (None,)
SUITES = {
    "full": [{"organisms": ["smollm2-ft"], "methods": list(METHODS), "ablations": [None]}],
}
RECALL = tuple(f"recall_at_10_{k}" for k in KINDS)
#: documents per batch of per-example gradients (memory: one batch of adapter gradients)
BATCH_SIZE = 8


@functools.lru_cache(maxsize=2)
def load(organism: str) -> tuple[Any, Any]:
    """(organism, its queries), built or read from the cache on first use."""
    from interplab.eval.copyright import build_queries
    from interplab.zoo.copyright import load as load_organism

    if organism not in ORGANISMS:
        raise unknown_name("copyright organism", organism, ORGANISMS)
    org = load_organism(organism)
    return org, build_queries(org, "generated")


@functools.lru_cache(maxsize=2)
def lds_data(organism: str) -> tuple[Any, Any]:
    """(subset masks [m, n_docs], outputs [m, n_queries]) of the organism's subset retrainings
    (trained once and cached with the organism; see :meth:`CopyrightOrganism.subset_runs`)."""
    from interplab.eval.copyright import subset_outputs

    org, queries = load(organism)
    masks, adapters = org.subset_runs()
    return masks, subset_outputs(org, queries, adapters)


def run_job(job: Job) -> JobOutput:
    from interplab.eval import copyright as E

    if job.method not in METHODS:
        raise unknown_name("copyright method", job.method, METHODS)
    if job.ablation is not None:
        raise ConfigError(f"the copyright track takes no ablation, got {job.ablation!r}")
    org, queries = load(job.organism)
    n_docs = len(org.corpus.docs)
    counts: list[dict[str, Any]] = [
        {"metric": "n_queries", "value": len(queries)},
        {"metric": "n_docs", "value": n_docs},
    ]
    try:
        if job.method in GRADIENT_METHODS:
            run = E.run_method(org, queries, job.method, seed=job.seed, batch_size=BATCH_SIZE)
        else:
            run = E.run_baseline(org, queries, job.method, seed=job.seed)
    except MissingExtraError as exc:  # MiniLM not installed: say so in every row
        reason = str(exc).splitlines()[0]
        missing: list[dict[str, Any]] = [
            {"metric": m, "value": None, "reason": reason} for m in RECALL
        ]
        missing.append({"metric": "seconds_per_query", "value": None, "reason": reason})
        return JobOutput(rows=missing + counts)
    est = E.recall_by_kind(run.scores, queries, E.K, seed=job.seed)
    rows: list[dict[str, Any]] = []
    for kind, metric in zip(KINDS, RECALL):
        if kind in est:
            rows.append({"metric": metric, "value": est[kind].value})
        else:
            rows.append({"metric": metric, "value": None, "reason": f"no verified {kind} item"})
    masks, outputs = lds_data(job.organism)
    lds = E.lds(run.scores, masks, outputs, seed=job.seed)
    rows.append({"metric": "lds", "value": lds.value})
    rows.append({"metric": "seconds_per_query", "value": run.seconds_per_query})
    rows += counts
    per_item = E.recall_at_k(run.scores, queries.sources, E.K)
    artifacts = {
        "estimates": {
            **{metric: est[k].as_dict() for k, metric in zip(KINDS, RECALL) if k in est},
            "lds": {**lds.as_dict(), "n_subsets": int(masks.shape[0])},
        },
        "per_item": {
            key: {
                "kind": kind,
                "recall": float(r),
                "sources": list(src),
                "top10": run.scores[i].topk(min(10, n_docs)).indices.tolist(),
            }
            for i, (key, kind, src, r) in enumerate(
                zip(queries.keys, queries.kinds, queries.sources, per_item)
            )
        },
        "cost": {
            "seconds": run.seconds,
            "seconds_per_query": run.seconds_per_query,
            "peak_mb": run.peak_mb,
            "settings": run.settings,
        },
        "queries": {
            "continuation": queries.continuation,
            "matches_target": sum(queries.matches_target),
            "n": len(queries),
            "notes": list(queries.notes),
        },
    }
    return JobOutput(rows=rows, artifacts=artifacts)


TRACK = module_track(
    globals(),
    name="copyright",
    families=("data_attribution", "text_attribution", "lora_attribution"),
    metrics=(
        Metric("recall_at_10_passage", headline=True),
        Metric("recall_at_10_fact"),
        Metric("recall_at_10_style"),
        Metric("lds"),
        Metric("seconds_per_query", better="lower", bookkeeping=True),
        Metric("n_queries", better=None, bookkeeping=True),
        Metric("n_docs", better=None, bookkeeping=True),
    ),
    section="interplab.report.copyright:section",
)
