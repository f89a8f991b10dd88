"""Circuit-discovery track: score edge-ranking methods against organisms' true circuits.

Organisms
    compiled-<program>   a compiled RASP library program; task pairs from the program's own
                         semantics; ground truth measured on exactly those pairs, per ablation
    trained-<name>       small transformers trained here with a verified circuit
                         (:mod:`interplab.zoo.organisms`)
    siit-<program>       SIIT-trained organisms (:mod:`interplab.zoo.siit`); the edges among
                         their aligned components that measurably matter, per ablation
                         (:func:`measured_truth`)

Rows per job: ``edge_auroc`` (vs the ground truth matching the ablation),
``edge_auroc_mismatched`` (vs the ground truth of the *other* of zero/resample, Miller et al.'s
point that scores flip with the ablation choice), ``edge_auroc_pessimistic``, ``node_auroc``,
``cpr`` and ``cmd`` (MIB faithfulness over circuit sizes), ``forward_passes``.
Artifacts: the ROC curve, the faithfulness curve, the true and the recovered circuit.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import torch

from interplab.bench.tracks import Job, JobOutput
from interplab.core.circuit import Circuit
from interplab.errors import ConfigError, unknown_name

COMPILED_PROGRAMS = ("reverse", "frac_prevs", "hist", "sort_unique", "length", "shift_by")
TRAINED = ("prevtoken", "modadd", "induction")
SIIT = ("siit-reverse", "siit-shift_by", "siit-shift_by_2", "siit-hist", "siit-first_token",
        "siit-mod_sum", "siit-sum_prev")

ORGANISMS = tuple(f"compiled-{p}" for p in COMPILED_PROGRAMS) + tuple(f"trained-{t}" for t in TRAINED) + SIIT
METHODS = ("patch_edges", "acdc", "eap", "eap_ig", "random", "weight_norm", "activation_norm")
ABLATIONS = ("zero", "mean", "resample")
SUITES = {
    "quick": {"organisms": ["compiled-reverse", "compiled-frac_prevs", "compiled-shift_by",
                            "siit-shift_by", "trained-prevtoken", "trained-modadd", "trained-induction"],
              "methods": ["patch_edges", "acdc", "eap", "eap_ig", "random"],
              "ablations": ["zero", "mean", "resample"]},
    "full": {"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": list(ABLATIONS)},
}
N_PAIRS = 32


@dataclass(frozen=True)
class CircuitOrganism:
    """What the track needs: a model, a task, and the true circuit per ablation."""

    name: str
    model: Any
    task: Any  # interplab.methods.circuits.CircuitTask
    truth: dict[str, Circuit]
    kind: str  # "compiled" | "trained" | "siit"


def load(organism: str, seed: int = 0) -> CircuitOrganism:
    if organism not in ORGANISMS:
        raise unknown_name("circuits-track organism", organism, ORGANISMS)
    if organism.startswith("compiled-"):
        return _compiled(organism.removeprefix("compiled-"), seed)
    if organism.startswith("trained-"):
        return _trained(organism.removeprefix("trained-"))
    return _siit(organism, seed)


@functools.lru_cache(maxsize=8)
def _compiled(program: str, seed: int) -> CircuitOrganism:
    from interplab.compile.programs import get_program
    from interplab.methods.circuits import CircuitTask

    spec = get_program(program)
    pairs = spec.task_pairs(N_PAIRS, seed=seed, length=spec.max_len)
    model = spec.compile(pairs=pairs)  # ground truth measured on exactly these pairs
    clean = model.encode([c for c, _ in pairs])
    corrupted = model.encode([x for _, x in pairs])
    labels, wrong = _predictions(model, clean), _predictions(model, corrupted)
    task = CircuitTask(clean, corrupted, labels=labels, wrong_labels=wrong, metric="l2",
                       name=f"compiled-{program}")
    truth = {a: model.ground_truth.circuit.for_ablation(a) for a in ABLATIONS}
    return CircuitOrganism(f"compiled-{program}", model, task, truth, "compiled")


def _predictions(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """The model's own answers at positions 1..: class ids [b, p-1] (float values when numerical)."""
    with torch.no_grad():
        out = model.run(tokens)[:, 1:]
    return out[..., 0] if out.shape[-1] == 1 else out.argmax(-1)


@functools.lru_cache(maxsize=4)
def _trained(name: str) -> CircuitOrganism:
    from interplab.zoo.organisms import load_organism

    org = load_organism(name)
    return CircuitOrganism(f"trained-{name}", org.model, org.task, dict(org.ground_truth), "trained")


@functools.lru_cache(maxsize=4)
def _siit(name: str, seed: int) -> CircuitOrganism:
    import random

    from interplab.methods.circuits import CircuitTask
    from interplab.zoo.siit import load_or_train

    org = load_or_train(name, seed)
    rng = random.Random(seed)
    inputs = org.inputs
    clean = org.encode([rng.choice(inputs) for _ in range(N_PAIRS)])
    corrupted = org.encode([rng.choice(inputs) for _ in range(N_PAIRS)])
    task = CircuitTask(clean, corrupted, labels=_predictions(org.model, clean),
                       wrong_labels=_predictions(org.model, corrupted), metric="kl", name=name)
    truth = {a: measured_truth(org.model, task, org.circuit, a) for a in ABLATIONS}
    return CircuitOrganism(name, org.model, task, truth, "siit")


def measured_truth(model: Any, task: Any, candidates: Circuit, ablation: str,
                   tolerance: float = 0.02) -> Circuit:
    """The edges of ``candidates`` that matter on ``task`` under ``ablation``.

    A SIIT organism's alignment names components, and reading it as "every edge between them"
    over-claims (e.g. position edges under resample ablation, where clean and corrupted inputs
    share positions). With every edge outside ``candidates`` ablated, an edge is kept when
    ablating it too lowers task accuracy by more than ``tolerance``. If the candidates alone
    do not keep the task (accuracy < 0.9), or nothing passes, the candidates are returned."""
    from interplab.methods.circuits import EdgePatcher

    patcher = EdgePatcher(model, task, ablation=ablation, metric="accuracy")
    keep = torch.zeros(patcher.n_edges)
    ids = {e: patcher.index.edge_id[e] for e in candidates.edges if e in patcher.index.edge_id}
    keep[list(ids.values())] = 1.0
    base = patcher.score_keep(keep)
    if base < 0.9:
        return candidates
    kept = []
    for edge, i in ids.items():
        without = keep.clone()
        without[i] = 0.0
        if base - patcher.score_keep(without) > tolerance:
            kept.append(edge)
    if not kept:
        return candidates
    return Circuit.from_edges(kept, name=f"{candidates.name} (measured, {ablation})")


def _metric(method: str, organism: CircuitOrganism) -> str:
    """Gradient methods need a metric whose gradient at the clean run is not zero (logit_diff);
    patching methods compare with the clean output (L2 for compiled models, whose outputs are
    not calibrated probabilities and may be numerical; KL for trained ones)."""
    if method in ("eap", "eap_ig"):
        return "logit_diff"
    return "l2" if organism.kind == "compiled" else "kl"


def run_job(job: Job) -> JobOutput:
    from interplab.eval.circuits import edge_auroc, node_auroc, roc_points
    from interplab.eval.faithfulness import faithfulness
    from interplab.methods.circuits import find_circuit

    if job.method not in METHODS:
        raise unknown_name("circuits-track method", job.method, METHODS)
    if job.ablation not in ABLATIONS:
        raise ConfigError(f"the circuits track needs an ablation in {ABLATIONS}, got {job.ablation!r}")
    org = load(job.organism, job.seed)
    truth = org.truth[job.ablation]
    metric = _metric(job.method, org)
    start = time.perf_counter()
    options = {"seed": job.seed} if job.method == "random" else {}
    scores = find_circuit(job.method, org.model, org.task, ablation=job.ablation, metric=metric, **options)
    seconds = time.perf_counter() - start
    other = {"zero": "resample", "resample": "zero", "mean": "zero"}[job.ablation]
    faith = faithfulness(org.model, org.task, scores, ablation=job.ablation, metric=_metric("acdc", org))
    points = roc_points(scores.scores, truth.edges)
    auc = edge_auroc(scores, truth)
    rows = [
        {"metric": "edge_auroc", "value": auc},
        {"metric": "edge_auroc_pessimistic", "value": edge_auroc(scores, truth, pessimistic=True)},
        {"metric": "cpr", "value": faith.cpr},
        {"metric": "cmd", "value": faith.cmd},
        {"metric": "forward_passes", "value": scores.forward_passes},
        {"metric": "method_seconds", "value": seconds},
    ]
    graph_nodes = {n for e in scores.scores for n in (e.sender, e.receiver) if n.kind in ("head", "mlp")}
    if graph_nodes - truth.nodes and graph_nodes & truth.nodes:  # AUROC needs both classes
        rows.append({"metric": "node_auroc", "value": node_auroc(scores, truth)})
    if org.truth[other].edges != truth.edges and org.truth[other].edges:
        rows.append({"metric": "edge_auroc_mismatched", "value": edge_auroc(scores, org.truth[other])})
    recovered = scores.to_circuit(top_k=max(1, len(truth.edges)))
    artifacts = {
        "roc": {"fpr": [p[0] for p in points], "tpr": [p[1] for p in points], "auc": auc},
        "faithfulness": {"percent": [100 * s for s in faith.sizes], "f": list(faith.f),
                         "cpr": faith.cpr, "cmd": faith.cmd},
        "true_circuit": truth.to_json(),
        "circuit": recovered.to_json(),
        "ground_truth_used": {"ablation": job.ablation, "edges": len(truth.edges),
                              "mismatched_against": other},
    }
    return JobOutput(rows=rows, artifacts=artifacts)
