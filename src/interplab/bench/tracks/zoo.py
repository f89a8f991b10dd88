"""Zoo track: the circuit methods over hundreds of generated organisms (``generated-<seed>-<i>``).

Each organism is a seeded random RASP program compiled and checked against the evaluator on
every input (:mod:`interplab.zoo.generated`). The job is the circuits track's job
(:func:`interplab.bench.tracks.circuits.score_job`: ``edge_auroc`` against the per-ablation
truth, ``edge_auroc_designed`` against the compiler's dataflow, ...), with one change forced by
the small input spaces of generated programs: the inputs of length ``max_len`` are split by a
seeded shuffle into two halves (:func:`split_inputs`); the scoring pairs are drawn inside one half and the truth is
derived in the RASP evaluator on pairs drawn inside the other, so no input of a scoring pair is
ever used by the truth (:func:`interplab.compile.generate.scoring_and_truth_pairs`, the same
function the generator checks the truth with). The truth is verified by single-edge ablation in
the weights on those pairs under every ablation before any job uses it (a failure raises
:class:`~interplab.errors.VerificationError`).

Each job also stores the organism's shape (``organism_shape`` artifact: depth, width, number of
operations, constructs) so the report can show how the ranking changes with them.

The ``zoo`` suite also holds :data:`TWINS`, the shipped SIIT-trained twins of generated programs
that verified (:mod:`interplab.zoo.twin_zoo`), scored like the circuits track's SIIT organisms:
the designed truth is the training alignment, verified by interchange on held-out inputs; the
per-ablation truth is used where it passes its single-edge check in the weights, and where it
does not, the twin is scored against the designed truth alone (``edge_auroc`` omitted with the
reason). Their ``organism_shape`` says ``kind: siit`` and names the compiled sibling
(``program``), so a method's ranking on the twins and on their compiled siblings can be
compared.

The ``zoo`` suite is every organism × every circuit method (baselines included) × the three
ablations; it is not in the quick or full suite (run it with ``interplab bench --suite zoo``,
and spread it with ``--jobs``, ``--cluster`` or ``--shard``).
"""

from __future__ import annotations

from interplab.bench.track import Job, JobOutput, module_track
from interplab.bench.tracks.circuits import TRACK as CIRCUITS
from interplab.bench.tracks.circuits import score_job
from interplab.compile.generate import split_inputs  # the one definition (re-exported here)
from interplab.errors import ConfigError, unknown_name
from interplab.zoo.contract import Organism
from interplab.zoo.twin_shipped import shipped_rows

#: the generator seed and number of organisms in the suite
ZOO_SEED = 0
ABLATIONS = CIRCUITS.ablations
METHODS = CIRCUITS.method_names()
ZOO_COUNT = 210  # ≥ 200 scored even if a few organisms fail with a recorded error
ORGANISMS = tuple(f"generated-{ZOO_SEED}-{i}" for i in range(ZOO_COUNT))
#: the SIIT-trained twins shipped with interplab that verified (:mod:`interplab.zoo.twin_zoo`:
#: the first programs of seed 0 the twin rule admits, each trained and verified on held-out
#: inputs; the failed attempts stay in the manifest with their numbers): a method's ranking on
#: these and on their compiled siblings (in ORGANISMS) can be compared
TWINS = tuple(n for n, r in sorted(shipped_rows().items()) if r.get("verified"))
#: edge pruning trains a mask per organism and ablation (5-30 s a job): over the zoo's 645 jobs
#: that is hours, so the zoo suite leaves it out; a spec file can still ask for it
SUITE_METHODS = tuple(m for m in METHODS if m != "edge_pruning")
#: compiled weights perturbed and fine-tuned back (:mod:`interplab.zoo.perturbed`): the first 20
#: programs of seed 0 its rule admits (a test checks this list against
#: :func:`~interplab.zoo.perturbed.perturbed_names`); one that fails to build or whose every
#: per-ablation truth is refused is a failed job with its reason, never dropped from the list
PERTURBED = tuple(
    f"perturbed-0-{i}"
    for i in (1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 22, 23, 24)
)
#: the twins' compiled siblings that are not among ORGANISMS (scored too, so every twin is
#: compared with its own sibling)
SIBLINGS = tuple(
    s for s in dict.fromkeys(shipped_rows()[t]["sibling"] for t in TWINS) if s not in set(ORGANISMS)
)
SUITES = {
    "zoo": {
        "organisms": list(ORGANISMS) + list(SIBLINGS) + list(TWINS) + list(PERTURBED),
        "methods": list(SUITE_METHODS),
        "ablations": list(ABLATIONS),
    }
}

__all__ = [
    "ABLATIONS",
    "METHODS",
    "ORGANISMS",
    "PERTURBED",
    "SIBLINGS",
    "SUITES",
    "TRACK",
    "TWINS",
    "load",
    "refused",
    "run_job",
    "split_inputs",
]


def refused(organism: str, ablation: str | None) -> str | None:
    """The circuits track's measured refusals: a refused (organism, ablation) truth is left out
    of this track too."""
    return CIRCUITS.refused(organism, ablation)


def load(organism: str, seed: int = 0) -> Organism:
    """The generated organism under the one contract (:func:`interplab.organism`): scoring pairs
    in one half of the inputs, the per-ablation truth derived on pairs in the other
    (:func:`interplab.compile.generate.scoring_and_truth_pairs`, the pairs the generator checked
    it on) and verified in the weights there under every ablation; a failing truth raises
    :class:`~interplab.errors.VerificationError` and is never used."""
    from interplab.zoo.loader import organism as load_organism

    return load_organism(organism, seed)


def run_job(job: Job) -> JobOutput:
    from interplab.zoo import perturbed
    from interplab.zoo.generated import load_generated
    from interplab.zoo.siit_generated import resolve, sibling

    twin = resolve(job.organism) is not None
    noisy = perturbed.resolve(job.organism) is not None
    if not (twin or noisy) and not job.organism.startswith("generated-"):
        raise unknown_name("zoo-track organism", job.organism, ORGANISMS[:5] + TWINS + ("...",))
    if job.method not in METHODS:
        raise unknown_name("zoo-track method", job.method, METHODS)
    if job.ablation not in ABLATIONS:
        raise ConfigError(f"the zoo track needs an ablation in {ABLATIONS}, got {job.ablation!r}")
    # a twin is an SIIT organism (truth: its alignment, verified by interchange), loaded the same way
    output = score_job(job, load(job.organism, job.seed))
    program = (
        sibling(job.organism)
        if twin
        else perturbed.sibling(job.organism)
        if noisy
        else job.organism
    )
    c = load_generated(program).spec.candidate
    output.artifacts["organism_shape"] = {
        "depth": c.depth,
        "width": c.width,
        "n_ops": c.n_ops,
        "constructs": list(c.constructs),
        "vocab": len(c.vocab),
        "max_len": c.max_len,
        "kind": "siit" if twin else "perturbed" if noisy else "compiled",
        "program": program,
    }
    return output


TRACK = module_track(
    globals(),
    name="zoo",
    families=CIRCUITS.families,
    organisms=ORGANISMS + SIBLINGS + TWINS + PERTURBED,
    metrics=CIRCUITS.metrics,
    section="interplab.report.zoo:section",
    leaderboard=False,  # 200 organisms: ranked in its own section, not one table row each
    refused_fn=refused,
)
