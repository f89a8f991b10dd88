"""Zoo track: the circuit methods over hundreds of generated organisms (``generated-<seed>-<i>``).

Each organism is a seeded random RASP program compiled and checked against the evaluator on
every input (:mod:`interplab.zoo.generated`). The job is the circuits track's job
(:func:`interplab.bench.tracks.circuits.score_job`: ``edge_auroc`` against the per-ablation
truth, ``edge_auroc_designed`` against the compiler's dataflow, ...), with one change forced by
the small input spaces of generated programs: the inputs of length ``max_len`` are split by a
seeded shuffle into two halves (:func:`split_inputs`); the scoring pairs are drawn inside one half and the truth is
derived in the RASP evaluator on pairs drawn inside the other, so no input of a scoring pair is
ever used by the truth.

Each job also stores the organism's shape (``organism_shape`` artifact: depth, width, number of
operations, constructs) so the report can show how the ranking changes with them.

The ``zoo`` suite also holds :data:`TWINS`, SIIT-trained twins of five of those programs
(:mod:`interplab.zoo.siit_generated`), scored like the circuits track's SIIT organisms (truth:
the training alignment, verified by interchange on held-out pairs); their ``organism_shape``
says ``kind: siit`` and names the compiled sibling (``program``), so a method's ranking on the
twins and on their compiled siblings can be compared.

The ``zoo`` suite is every organism × every circuit method (baselines included) × the three
ablations; it is not in the quick or full suite (run it with ``interplab bench --suite zoo``,
and spread it with ``--jobs``, ``--cluster`` or ``--shard``).
"""

from __future__ import annotations

import functools
import random
from typing import Any

from interplab.bench.tracks import Job, JobOutput
from interplab.bench.tracks.circuits import (ABLATIONS, BASELINES, METHODS, CircuitOrganism,
                                             _predictions, score_job)
from interplab.errors import ConfigError, unknown_name

#: the generator seed and number of organisms in the suite
ZOO_SEED = 0
ZOO_COUNT = 210  # ≥ 200 scored even if a few organisms fail with a recorded error
ORGANISMS = tuple(f"generated-{ZOO_SEED}-{i}" for i in range(ZOO_COUNT))
#: SIIT-trained twins of the first five generated programs the twin rule admits
#: (:func:`interplab.zoo.siit_generated.siit_generated_names`; a test checks this list against it):
#: a method's ranking on these and on their compiled siblings (in ORGANISMS) can be compared
TWINS = ("siit-generated-0-5", "siit-generated-0-18", "siit-generated-0-20",
         "siit-generated-0-22", "siit-generated-0-33")
SUITES = {"zoo": {"organisms": list(ORGANISMS) + list(TWINS), "methods": list(METHODS),
                  "ablations": list(ABLATIONS)}}
N_PAIRS = 32
N_TRUTH_PAIRS = 64

__all__ = ["ORGANISMS", "TWINS", "METHODS", "BASELINES", "ABLATIONS", "SUITES", "run_job", "load"]


@functools.lru_cache(maxsize=4)
def load(organism: str, seed: int = 0) -> CircuitOrganism:
    """The generated organism with scoring pairs and a per-ablation truth on disjoint inputs."""
    from interplab.compile import derive_circuit
    from interplab.methods.circuits import CircuitTask
    from interplab.zoo.generated import load_generated

    org = load_generated(organism)
    spec, model = org.spec, org.model
    half_score, half_truth = split_inputs(spec, seed)
    pairs = spec.task_pairs(N_PAIRS, seed=seed, length=spec.max_len, within=half_score)
    held = spec.task_pairs(N_TRUTH_PAIRS, seed=seed + 1, length=spec.max_len, within=half_truth)
    derived = derive_circuit(model, held)
    clean = model.encode([c for c, _ in pairs])
    corrupted = model.encode([x for _, x in pairs])
    task = CircuitTask(clean, corrupted, labels=_predictions(model, clean),
                       wrong_labels=_predictions(model, corrupted), metric="l2", name=organism)
    truth = {a: derived.for_ablation(a) for a in ABLATIONS}
    return CircuitOrganism(organism, model, task, truth, "compiled", model.ground_truth.designed,
                           f"RASP dataflow on {len(held)} pairs from the other half of the inputs; "
                           "designed: compiler dataflow",
                           tuple(tuple(x) for pair in pairs for x in pair))


def split_inputs(spec: Any, seed: int) -> tuple[list[tuple], list[tuple]]:
    """Every input of length ``max_len``, shuffled with ``seed`` and cut in two halves; where the
    program's output is the same on every input of a half (no task pair there), the shuffled
    inputs are dealt alternately within each output value instead, so that both halves hold
    every output that two or more inputs give."""
    import itertools

    from interplab.compile import rasp

    xs = list(itertools.product(spec.vocab, repeat=spec.max_len))
    random.Random(f"zoo-split-{seed}").shuffle(xs)
    halves = xs[: len(xs) // 2], xs[len(xs) // 2:]
    program = spec.program()
    out = {x: repr(rasp.evaluate(program, list(x))) for x in xs}
    if all(len({out[x] for x in h}) > 1 for h in halves):
        return halves
    by_output: dict[str, list[tuple]] = {}
    for x in xs:
        by_output.setdefault(out[x], []).append(x)
    dealt = [x for group in by_output.values() for x in group]
    return dealt[0::2], dealt[1::2]


def run_job(job: Job) -> JobOutput:
    from interplab.bench.tracks.circuits import _siit
    from interplab.zoo.generated import load_generated
    from interplab.zoo.siit_generated import resolve, sibling

    twin = resolve(job.organism) is not None
    if not twin and job.organism not in ORGANISMS and not job.organism.startswith("generated-"):
        raise unknown_name("zoo-track organism", job.organism, ORGANISMS[:5] + TWINS + ("...",))
    if job.method not in METHODS:
        raise unknown_name("zoo-track method", job.method, METHODS)
    if job.ablation not in ABLATIONS:
        raise ConfigError(f"the zoo track needs an ablation in {ABLATIONS}, got {job.ablation!r}")
    # a twin: the circuits track's SIIT organism (truth: its alignment, verified by interchange)
    output = score_job(job, _siit(job.organism, job.seed) if twin else load(job.organism, job.seed))
    program = sibling(job.organism) if twin else job.organism
    c = load_generated(program).spec.candidate
    output.artifacts["organism_shape"] = {"depth": c.depth, "width": c.width, "n_ops": c.n_ops,
                                          "constructs": list(c.constructs),
                                          "vocab": len(c.vocab), "max_len": c.max_len,
                                          "kind": "siit" if twin else "compiled",
                                          "program": program}
    return output
