"""Circuit-discovery track: score edge-ranking methods against organisms' true circuits.

Every organism comes through the one contract (:func:`interplab.zoo.loader.organism`): its truth
is computed with no method code (``interplab.methods``) on rows disjoint from the scoring pairs,
and verified in the weights before any job scores against it (a failed check raises
:class:`~interplab.errors.VerificationError`; the job fails with that message, nothing is scored).

Organisms and their truth
    compiled-<program>   a compiled RASP library program (the same model as in every other
                         track); task pairs from the program's semantics. Designed truth: the
                         compiler's dataflow (which block reads which variable from which).
                         Per-ablation truth: the designed edges that matter under that ablation,
                         decided in the RASP evaluator on 64 held-out pairs whose inputs appear in
                         no scoring pair (:mod:`interplab.compile.dataflow_truth`), checked by
                         single-edge ablation in the compiled weights on those pairs
    trained-<name>       small transformers trained here with a planted circuit, checked edge by
                         edge in the weights on held-out rows (:mod:`interplab.zoo.organisms`);
                         designed truth: the union of the per-ablation truths
    siit-<program>       SIIT-trained organisms: the alignment they were trained to, checked on
                         held-out pairs by interchange (a failed check is an error), per-ablation
                         subsets from the RASP program on held-out pairs, checked edge by edge
                         (:mod:`interplab.zoo.siit_truth`)

Rows per job: ``edge_auroc`` (vs the per-ablation truth of the job's ablation),
``edge_auroc_designed`` (vs the designed circuit), ``edge_auroc_mismatched`` (vs the per-ablation
truth of the *other* of zero/resample: Miller et al.'s point that scores flip with the ablation),
``edge_auroc_pessimistic``, ``node_auroc`` (only with ≥ :data:`MIN_NODES_PER_CLASS` heads/MLPs
in and out of the truth), ``cpr`` and ``cmd`` (MIB faithfulness over circuit sizes, on held-out
pairs the method did not rank edges on), ``forward_passes``. A metric whose truth has no positive (or no negative) edge is omitted and
the reason recorded in the ``omitted`` artifact. Artifacts: the ROC curve, the faithfulness
curve, the truths used (and where they came from), the method's own circuit at
:data:`SHOWN_FAITHFULNESS` (never cut to the truth's size), and ``provenance``: how many rows
the scoring task and the truth used, digests of each, and their overlap (0, or the job fails).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any, cast

from interplab.bench.track import Job, JobOutput, Metric, Row, module_track
from interplab.errors import ConfigError, VerificationError, unknown_name
from interplab.zoo.contract import CircuitTruth, Organism

COMPILED_PROGRAMS = (
    "reverse",
    "frac_prevs",
    "hist",
    "sort_unique",
    "length",
    "shift_by",
    # decoders (attention masked to earlier positions); full suite only
    "causal-frac_prevs",
    "causal-shift_by",
    "causal-induction",
    "causal-sum_prev",
)
TRAINED = ("prevtoken", "modadd", "induction")
SIIT = (
    "siit-reverse",
    "siit-shift_by",
    "siit-shift_by_1",
    "siit-shift_by_2",
    "siit-hist",
    "siit-first_token",
    "siit-mod_sum",
    "siit-sum_prev",
)

#: a deeper compiled organism for the quick suite, chosen by a rule stated before any method ran
#: on it: the first generated program (seed 0) with 3 layers and 2 heads per layer
GENERATED = ("generated-0-17",)
ORGANISMS = (
    tuple(f"compiled-{p}" for p in COMPILED_PROGRAMS)
    + tuple(f"trained-{t}" for t in TRAINED)
    + SIIT
    + GENERATED
)
#: registry names (family "circuits"; which are baselines is the registry's kind)
METHODS = (
    "patch_edges",
    "acdc",
    "eap",
    "eap_ig",
    "edge_pruning",
    "random",
    "weight_norm",
    "activation_norm",
)
ABLATIONS = ("zero", "mean", "resample")
SUITES = {
    "quick": {
        "organisms": [
            "compiled-reverse",
            "compiled-frac_prevs",
            "compiled-shift_by",
            "siit-shift_by",
            "trained-prevtoken",
            "trained-modadd",
            "trained-induction",
            "generated-0-17",
        ],
        "methods": ["patch_edges", "acdc", "eap", "eap_ig", "random"],
        "ablations": ["zero", "mean", "resample"],
    },
    "full": {"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": list(ABLATIONS)},
}
MIN_NODES_PER_CLASS = 3
#: the circuit a job shows is the method's smallest top-k whose faithfulness on held-out pairs
#: reaches this share (MIB's curve, read at one level); never the truth's size
SHOWN_FAITHFULNESS = 0.8


def load(organism: str, seed: int = 0) -> Organism:
    """The circuits-track organism (one contract for every family: :mod:`interplab.zoo.contract`),
    its truth verified in the weights and independent of the scoring pairs."""
    from interplab.zoo.loader import organism as load_organism

    if organism not in ORGANISMS:
        raise unknown_name("circuits-track organism", organism, ORGANISMS)
    return load_organism(organism, seed)


def refused(organism: str, ablation: str | None) -> str | None:
    """Why the bench leaves (organism, ablation) out: its truth is refused by the check in the
    weights (measured; :data:`interplab.zoo.circuit_organisms.REFUSED`), or None."""
    from interplab.zoo.circuit_organisms import refused as why

    return why(organism, ablation)


def metric_for(method: str, organism: Organism) -> str:
    """The metric the track runs ``method`` with on ``organism``. Gradient methods need a
    metric whose gradient at the clean run is not zero (logit_diff); patching methods compare
    with the clean output (L2 for compiled models, whose outputs are not calibrated
    probabilities and may be numerical, and for compiled weights perturbed and fine-tuned back,
    which keep the compiled read-out; KL for trained ones)."""
    if method in ("eap", "eap_ig"):
        return "logit_diff"
    return "l2" if organism.info.get("kind") in ("compiled", "perturbed") else "kl"


def _circuit_truth(org: Organism) -> CircuitTruth:
    """The organism's true circuit (a circuits-track organism has one)."""
    if not isinstance(org.truth, CircuitTruth):
        raise ConfigError(f"{org.name} has a {org.truth.kind} truth, not a circuit")
    return org.truth


def _auroc_rows(scores: Any, org: Organism, ablation: str) -> tuple[list[Row], dict]:
    """AUROC rows against each truth that has both classes among the scored edges; the
    reasons for the ones left out."""
    from interplab.eval.circuits import edge_auroc, node_auroc

    truth_of = _circuit_truth(org)
    per_ablation, designed = truth_of.per_ablation, truth_of.designed
    truth = per_ablation.get(ablation)
    other = {"zero": "resample", "resample": "zero", "mean": "zero"}[ablation]
    scored = set(scores.scores)
    rows, omitted = [], {}
    if truth is None:  # designed-only (see score_job): the per-ablation truth was refused
        why = truth_of.checks.get("refused", {}).get(ablation, "refused")
        for metric in ("edge_auroc", "edge_auroc_pessimistic", "edge_auroc_mismatched"):
            omitted[metric] = (
                f"the {ablation} truth was refused by its check in the weights ({why})"
            )
        truth = designed
    if truth is None:
        raise ConfigError(f"{org.name} has no {ablation} truth and no designed truth to score")

    def both_classes(edges: set) -> bool:
        return bool(edges & scored) and bool(scored - edges)

    if other not in per_ablation:
        omitted["edge_auroc_mismatched"] = (
            f"the {other} truth was refused by its check in the weights"
        )
    for metric, circuit in (
        ("edge_auroc", truth),
        ("edge_auroc_designed", designed),
        ("edge_auroc_mismatched", per_ablation.get(other)),
    ):
        if circuit is None or metric in omitted:
            continue
        if metric == "edge_auroc_mismatched" and circuit.edges == truth.edges:
            omitted[metric] = f"the {other} truth equals the {ablation} truth"
        elif both_classes(set(circuit.edges)):
            rows.append(Row(metric, edge_auroc(scores, circuit)))
            if metric == "edge_auroc":
                rows.append(
                    Row("edge_auroc_pessimistic", edge_auroc(scores, circuit, pessimistic=True))
                )
        else:
            omitted[metric] = (
                f"{len(set(circuit.edges) & scored)} true and "
                f"{len(scored - set(circuit.edges))} false edges: AUROC needs both"
            )
    nodes = {n for e in scored for n in (e.sender, e.receiver) if n.kind in ("head", "mlp")}
    inside, outside = len(nodes & truth.nodes), len(nodes - truth.nodes)
    if min(inside, outside) >= MIN_NODES_PER_CLASS:
        rows.append(Row("node_auroc", node_auroc(scores, truth)))
    else:
        omitted["node_auroc"] = (
            f"{inside} heads/MLPs in the truth and {outside} outside; node "
            f"AUROC needs ≥ {MIN_NODES_PER_CLASS} of each"
        )
    return rows, omitted


def run_job(job: Job) -> JobOutput:
    if job.method not in METHODS:
        raise unknown_name("circuits-track method", job.method, METHODS)
    if job.ablation not in ABLATIONS:
        raise ConfigError(
            f"the circuits track needs an ablation in {ABLATIONS}, got {job.ablation!r}"
        )
    return score_job(job, load(job.organism, job.seed))


def shown_circuit(scores: Any, faith: Any) -> Any:
    """The circuit a job shows: the method's smallest top-k whose faithfulness on held-out pairs
    reaches :data:`SHOWN_FAITHFULNESS` (the most faithful size on the curve if none does); with
    no curve, the edges the method scored above zero. Nothing here reads the truth."""
    if faith is None:
        return scores.to_circuit(threshold=0.0)
    reached = [k for k, f in zip(faith.n_edges, faith.f) if f >= SHOWN_FAITHFULNESS and k > 0]
    best = max(zip(faith.f, faith.n_edges))[1]
    return scores.to_circuit(top_k=max(1, min(reached) if reached else best))


def score_job(job: Job, org: Organism) -> JobOutput:
    """Run ``job.method`` on ``org`` under ``job.ablation`` and score it (the rows and artifacts
    described in the module docstring; also used by the ``zoo`` track). The method sees
    ``org.tasks["score"]``; faithfulness (CPR/CMD) is measured on ``org.tasks["heldout"]``,
    pairs the method did not rank edges on."""
    from interplab.eval.circuits import roc_points
    from interplab.eval.faithfulness import faithfulness
    from interplab.methods.circuits import find_circuit

    provenance = org.check_independent()
    known = _circuit_truth(org)
    refused = known.checks.get("refused", {})
    designed_only = known.checks.get("designed_only")
    if job.ablation is None or (
        job.ablation not in known.per_ablation and not (designed_only and known.designed)
    ):
        raise VerificationError(
            f"{org.name}: its {job.ablation} truth was refused by its check in "
            f"the weights ({refused.get(job.ablation, 'no truth')}); nothing is "
            "scored against it"
        )
    # an organism whose designed truth is verified on its own (a SIIT alignment, by
    # interchange) is scored against it alone where its per-ablation truth was refused
    designed = known.designed
    truth = known.per_ablation.get(job.ablation) or designed
    assert truth is not None
    task, heldout = org.tasks["score"], org.tasks.get("heldout")
    metric = metric_for(job.method, org)
    start = time.perf_counter()
    options = {"seed": job.seed} if job.method == "random" else {}
    scores = find_circuit(
        job.method, org.model, task, ablation=job.ablation, metric=metric, **options
    )
    seconds = time.perf_counter() - start
    auc_rows, omitted = _auroc_rows(scores, org, job.ablation)
    faith = None
    if heldout is None:
        omitted["cpr"] = omitted["cmd"] = (
            "the organism has no held-out pairs to measure faithfulness on"
        )
    else:
        try:
            faith = faithfulness(
                org.model, heldout, scores, ablation=job.ablation, metric=metric_for("acdc", org)
            )
        except ConfigError as exc:  # e.g. ablating every edge leaves the metric unchanged
            omitted["cpr"] = omitted["cmd"] = str(exc)
    rows = auc_rows + [
        Row("cpr", faith.cpr if faith else None, None if faith else omitted["cpr"]),
        Row("cmd", faith.cmd if faith else None, None if faith else omitted["cmd"]),
        Row("forward_passes", scores.cost.forward),
        Row("method_seconds", seconds),
    ]
    roc_kind = next(
        (
            k
            for k, m in (("per_ablation", "edge_auroc"), ("designed", "edge_auroc_designed"))
            if m not in omitted
        ),
        None,
    )
    roc_truth = {"per_ablation": truth, "designed": designed, None: None}[roc_kind]
    edge_scores = cast("Mapping[Hashable, float]", scores.scores)  # edges are hashable
    points = roc_points(edge_scores, roc_truth.edges) if roc_truth is not None else []
    artifacts = {
        "roc": {"fpr": [p[0] for p in points], "tpr": [p[1] for p in points], "truth": roc_kind},
        "true_circuit": truth.to_json(),
        "designed_circuit": designed.to_json() if designed is not None else None,
        "circuit": shown_circuit(scores, faith).to_json(),
        "ground_truth_used": {
            "ablation": job.ablation,
            "edges": len(truth.edges),
            "designed_edges": len(designed.edges) if designed else None,
            "source": known.source,
        },
        "provenance": provenance,
        "truth_check": {k: v for k, v in known.checks.items() if k != "interchange"},
        "omitted": omitted,
    }
    if faith is not None:
        artifacts["faithfulness"] = {
            "percent": [100 * s for s in faith.sizes],
            "f": list(faith.f),
            "cpr": faith.cpr,
            "cmd": faith.cmd,
            "pairs": "held-out",
        }
    return JobOutput(rows=rows, artifacts=artifacts)


#: the circuits track's metrics, headline first (directions for the report)
METRICS = (
    Metric("edge_auroc", headline=True),
    Metric("edge_auroc_mismatched"),
    Metric("cpr"),
    Metric("cmd", better="lower"),
    Metric("node_auroc"),
    Metric("edge_auroc_pessimistic"),
    Metric("edge_auroc_designed"),
    Metric("forward_passes", better="lower", bookkeeping=True),
    Metric("method_seconds", better="lower", bookkeeping=True),
)

TRACK = module_track(
    globals(),
    name="circuits",
    metrics=METRICS,
    section="interplab.report.circuits:section",
    refused_fn=refused,
)
