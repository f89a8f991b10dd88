"""Circuit-discovery track: score edge-ranking methods against organisms' true circuits.

Every truth here is independent of the scored methods: none is computed with their code
(``interplab.methods``) nor on the pairs they are scored on.

Organisms and their truth
    compiled-<program>   a compiled RASP library program (the same model as in every other
                         track); task pairs from the program's semantics. Designed truth: the
                         compiler's dataflow (which block reads which variable from which).
                         Per-ablation truth: the designed edges that matter under that ablation,
                         decided in the RASP evaluator on 64 held-out pairs whose inputs appear in
                         no scoring pair (:mod:`interplab.compile.dataflow_truth`)
    trained-<name>       small transformers trained here with a planted circuit, verified by
                         ablation in tests (:mod:`interplab.zoo.organisms`); designed truth: the
                         union of the per-ablation truths
    siit-<program>       SIIT-trained organisms: the alignment they were trained to, checked on
                         held-out pairs by interchange (a failed check is an error), per-ablation
                         subsets from the RASP program on held-out pairs
                         (:mod:`interplab.zoo.siit_truth`)

Rows per job: ``edge_auroc`` (vs the per-ablation truth of the job's ablation),
``edge_auroc_designed`` (vs the designed circuit), ``edge_auroc_mismatched`` (vs the per-ablation
truth of the *other* of zero/resample: Miller et al.'s point that scores flip with the ablation),
``edge_auroc_pessimistic``, ``node_auroc`` (only with ≥ :data:`MIN_NODES_PER_CLASS` heads/MLPs
in and out of the truth), ``cpr`` and ``cmd`` (MIB faithfulness over circuit sizes),
``forward_passes``. A metric whose truth has no positive (or no negative) edge is omitted and
the reason recorded in the ``omitted`` artifact. Artifacts: the ROC curve, the faithfulness
curve, the truths used (and where they came from), the recovered circuit.
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

COMPILED_PROGRAMS = ("reverse", "frac_prevs", "hist", "sort_unique", "length", "shift_by",
                     # decoders (attention masked to earlier positions); full suite only
                     "causal-frac_prevs", "causal-shift_by", "causal-induction", "causal-sum_prev")
TRAINED = ("prevtoken", "modadd", "induction")
SIIT = ("siit-reverse", "siit-shift_by", "siit-shift_by_1", "siit-shift_by_2", "siit-hist", "siit-first_token",
        "siit-mod_sum", "siit-sum_prev")

ORGANISMS = tuple(f"compiled-{p}" for p in COMPILED_PROGRAMS) + tuple(f"trained-{t}" for t in TRAINED) + SIIT
METHODS = ("patch_edges", "acdc", "eap", "eap_ig", "random", "weight_norm", "activation_norm")
#: controls, never ranked as the best method
BASELINES = ("random", "weight_norm", "activation_norm")
ABLATIONS = ("zero", "mean", "resample")
SUITES = {
    "quick": {"organisms": ["compiled-reverse", "compiled-frac_prevs", "compiled-shift_by",
                            "siit-shift_by", "trained-prevtoken", "trained-modadd", "trained-induction"],
              "methods": ["patch_edges", "acdc", "eap", "eap_ig", "random"],
              "ablations": ["zero", "mean", "resample"]},
    "full": {"organisms": list(ORGANISMS), "methods": list(METHODS), "ablations": list(ABLATIONS)},
}
N_PAIRS = 32
N_TRUTH_PAIRS = 64
MIN_NODES_PER_CLASS = 3


@dataclass(frozen=True)
class CircuitOrganism:
    """What the track needs: a model, a task, the true circuit per ablation, the designed
    circuit, and where the truth came from (``source``, shown in the report)."""

    name: str
    model: Any
    task: Any  # interplab.methods.circuits.CircuitTask
    truth: dict[str, Circuit]
    kind: str  # "compiled" | "trained" | "siit"
    designed: Circuit | None = None
    source: str = ""
    #: the inputs of the scoring pairs (compiled and SIIT organisms), which the truth avoids
    task_inputs: tuple = ()


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
    from interplab.compile import derive_circuit
    from interplab.compile.programs import get_program
    from interplab.methods.circuits import CircuitTask

    spec = get_program(program)
    model = spec.compile()
    pairs = spec.task_pairs(N_PAIRS, seed=seed, length=spec.max_len)
    held = held_out_pairs(spec, pairs, N_TRUTH_PAIRS, seed)
    derived = derive_circuit(model, held)
    clean = model.encode([c for c, _ in pairs])
    corrupted = model.encode([x for _, x in pairs])
    labels, wrong = _predictions(model, clean), _predictions(model, corrupted)
    task = CircuitTask(clean, corrupted, labels=labels, wrong_labels=wrong, metric="l2",
                       name=f"compiled-{program}")
    truth = {a: derived.for_ablation(a) for a in ABLATIONS}
    return CircuitOrganism(f"compiled-{program}", model, task, truth, "compiled",
                           model.ground_truth.designed,
                           f"RASP dataflow on {len(held)} held-out pairs; designed: compiler dataflow",
                           tuple(tuple(x) for pair in pairs for x in pair))


def held_out_pairs(spec: Any, scoring: list, n: int, seed: int) -> list:
    """``n`` task pairs whose inputs appear in no scoring pair (drawn from another seed)."""
    used = {tuple(x) for pair in scoring for x in pair}
    out: list = []
    for attempt in range(1, 6):
        for c, x in spec.task_pairs(4 * n, seed=10_000 * attempt + seed, length=spec.max_len):
            if tuple(c) not in used and tuple(x) not in used and len(out) < n:
                out.append((c, x))
        if len(out) == n:
            return out
    if len(out) < n // 4:
        raise ConfigError(f"{spec.name}: only {len(out)} task pairs avoid the {len(scoring)} scoring "
                          "pairs' inputs; the truth needs held-out pairs: score on fewer pairs")
    return out


def _predictions(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """The model's own answers at positions 1..: class ids [b, p-1] (float values when numerical)."""
    with torch.no_grad():
        out = model.run(tokens)[:, 1:]
    return out[..., 0] if out.shape[-1] == 1 else out.argmax(-1)


@functools.lru_cache(maxsize=4)
def _trained(name: str) -> CircuitOrganism:
    from interplab.zoo.organisms import load_organism

    org = load_organism(name)
    designed = Circuit.from_edges(set().union(*(c.edges for c in org.ground_truth.values())),
                                  name=f"trained-{name} (planted)")
    return CircuitOrganism(f"trained-{name}", org.model, org.task, dict(org.ground_truth), "trained",
                           designed, "planted by training, verified by ablation in tests")


@functools.lru_cache(maxsize=4)
def _siit(name: str, seed: int) -> CircuitOrganism:
    import random

    from interplab.methods.circuits import CircuitTask
    from interplab.zoo.siit import load_or_train
    from interplab.zoo.siit_generated import load_twin, resolve
    from interplab.zoo.siit_truth import siit_truth

    # a generated program's twin (siit-generated-<seed>-<i>, scored by the zoo track) or a library one
    org = load_twin(name, seed) if resolve(name) is not None else load_or_train(name, seed)
    rng = random.Random(seed)
    inputs = org.inputs
    clean_in = [rng.choice(inputs) for _ in range(N_PAIRS)]
    corrupt_in = [rng.choice(inputs) for _ in range(N_PAIRS)]
    clean, corrupted = org.encode(clean_in), org.encode(corrupt_in)
    task = CircuitTask(clean, corrupted, labels=_predictions(org.model, clean),
                       wrong_labels=_predictions(org.model, corrupted), metric="kl", name=name)
    truth = siit_truth(name, seed, exclude=clean_in + corrupt_in)
    return CircuitOrganism(name, org.model, task, dict(truth.per_ablation), "siit", truth.designed,
                           f"SIIT alignment (held-out IIA {_fmt(truth.check['iia'])}); per ablation: "
                           f"RASP dataflow on {truth.n_pairs} held-out pairs",
                           tuple(tuple(x) for x in clean_in + corrupt_in))


def _fmt(iia: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(iia.items()))


def _metric(method: str, organism: CircuitOrganism) -> str:
    """Gradient methods need a metric whose gradient at the clean run is not zero (logit_diff);
    patching methods compare with the clean output (L2 for compiled models, whose outputs are
    not calibrated probabilities and may be numerical; KL for trained ones)."""
    if method in ("eap", "eap_ig"):
        return "logit_diff"
    return "l2" if organism.kind == "compiled" else "kl"


def _auroc_rows(scores: Any, org: CircuitOrganism, ablation: str) -> tuple[list[dict], dict]:
    """AUROC rows against each truth that has both classes among the scored edges; the
    reasons for the ones left out."""
    from interplab.eval.circuits import edge_auroc, node_auroc

    truth = org.truth[ablation]
    other = {"zero": "resample", "resample": "zero", "mean": "zero"}[ablation]
    scored = set(scores.scores)
    rows, omitted = [], {}

    def both_classes(edges: set) -> bool:
        return bool(edges & scored) and bool(scored - edges)

    for metric, circuit in (("edge_auroc", truth), ("edge_auroc_designed", org.designed),
                            ("edge_auroc_mismatched", org.truth[other])):
        if circuit is None:
            continue
        if metric == "edge_auroc_mismatched" and circuit.edges == truth.edges:
            omitted[metric] = f"the {other} truth equals the {ablation} truth"
        elif both_classes(set(circuit.edges)):
            rows.append({"metric": metric, "value": edge_auroc(scores, circuit)})
            if metric == "edge_auroc":
                rows.append({"metric": "edge_auroc_pessimistic",
                             "value": edge_auroc(scores, circuit, pessimistic=True)})
        else:
            omitted[metric] = (f"{len(set(circuit.edges) & scored)} true and "
                               f"{len(scored - set(circuit.edges))} false edges: AUROC needs both")
    nodes = {n for e in scored for n in (e.sender, e.receiver) if n.kind in ("head", "mlp")}
    inside, outside = len(nodes & truth.nodes), len(nodes - truth.nodes)
    if min(inside, outside) >= MIN_NODES_PER_CLASS:
        rows.append({"metric": "node_auroc", "value": node_auroc(scores, truth)})
    else:
        omitted["node_auroc"] = (f"{inside} heads/MLPs in the truth and {outside} outside; node "
                                 f"AUROC needs ≥ {MIN_NODES_PER_CLASS} of each")
    return rows, omitted


def run_job(job: Job) -> JobOutput:
    if job.method not in METHODS:
        raise unknown_name("circuits-track method", job.method, METHODS)
    if job.ablation not in ABLATIONS:
        raise ConfigError(f"the circuits track needs an ablation in {ABLATIONS}, got {job.ablation!r}")
    return score_job(job, load(job.organism, job.seed))


def score_job(job: Job, org: CircuitOrganism) -> JobOutput:
    """Run ``job.method`` on ``org`` under ``job.ablation`` and score it (the rows and artifacts
    described in the module docstring; also used by the ``zoo`` track)."""
    from interplab.eval.circuits import roc_points
    from interplab.eval.faithfulness import faithfulness
    from interplab.methods.circuits import find_circuit

    truth = org.truth[job.ablation]
    metric = _metric(job.method, org)
    start = time.perf_counter()
    options = {"seed": job.seed} if job.method == "random" else {}
    scores = find_circuit(job.method, org.model, org.task, ablation=job.ablation, metric=metric, **options)
    seconds = time.perf_counter() - start
    auc_rows, omitted = _auroc_rows(scores, org, job.ablation)
    try:
        faith = faithfulness(org.model, org.task, scores, ablation=job.ablation,
                             metric=_metric("acdc", org))
    except ConfigError as exc:  # e.g. ablating every edge leaves the metric unchanged
        faith, omitted["cpr"], omitted["cmd"] = None, str(exc), str(exc)
    rows = auc_rows + [
        {"metric": "cpr", "value": faith.cpr if faith else None, "reason": None if faith else omitted["cpr"]},
        {"metric": "cmd", "value": faith.cmd if faith else None, "reason": None if faith else omitted["cmd"]},
        {"metric": "forward_passes", "value": scores.forward_passes},
        {"metric": "method_seconds", "value": seconds},
    ]
    roc_kind = next((k for k, m in (("per_ablation", "edge_auroc"), ("designed", "edge_auroc_designed"))
                     if m not in omitted), None)
    roc_truth = {"per_ablation": truth, "designed": org.designed, None: None}[roc_kind]
    points = roc_points(scores.scores, roc_truth.edges) if roc_truth is not None else []
    recovered = scores.to_circuit(top_k=max(1, len(truth.edges)))
    artifacts = {
        "roc": {"fpr": [p[0] for p in points], "tpr": [p[1] for p in points],
                "truth": roc_kind},
        "true_circuit": truth.to_json(),
        "designed_circuit": org.designed.to_json() if org.designed is not None else None,
        "circuit": recovered.to_json(),
        "ground_truth_used": {"ablation": job.ablation, "edges": len(truth.edges),
                              "designed_edges": len(org.designed.edges) if org.designed else None,
                              "source": org.source},
        "omitted": omitted,
    }
    if faith is not None:
        artifacts["faithfulness"] = {"percent": [100 * s for s in faith.sizes], "f": list(faith.f),
                                     "cpr": faith.cpr, "cmd": faith.cmd}
    return JobOutput(rows=rows, artifacts=artifacts)
