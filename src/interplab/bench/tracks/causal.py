"""Causal track: do explanations predict the model? (issues 6, 10)

Organisms: ``compiled-<program>``, the library program compiled with its defaults
(``interplab.compile.programs.get_program(program).compile()``: the very model the circuits
track and the zoo call by that name; ground truth from the compiler), scored on every valid
input of length ``max_len`` (interchanges align by position), and the SIIT-trained organisms of
:mod:`interplab.zoo.siit` (ground truth = the verified training alignment). Methods (each a
hypothesis or a tool scored against the ground truth):

    ground_truth    the true hypothesis: a SCORER SELF-CHECK, not a result. It is right by
                    construction on compiled organisms (anything below 1.0 is a scorer or
                    compiler bug) and by verified training on SIIT ones, so every metric it
                    emits is prefixed ``selfcheck_`` (``selfcheck_counterfactual_accuracy_
                    interchange``, ...) and never shares a table with the hypotheses below
    misaligned      control: variables misplaced (random subspaces at the true sites)
    shuffled        control: variables swapped (needs ≥2 located variables)
    das             a discovered alignment: distributed alignment search over the residual
                    stream (:func:`interplab.methods.causal.das_training.das_alignment`). Every computed
                    variable of the program (not tokens/indices) that varies on the pool gets a
                    k-dimensional subspace, k = its number of distinct values - 1 (read from the
                    high-level program), at the residual site where DAS's held-out IIA on its
                    own pairs is highest (ties: the later site). DAS's pairs skip the
                    interchange pairs it is scored on. Artifact ``alignment``: per variable the
                    chosen site, k and the held-out IIA at every site. Caveat: for the
                    program's *output* variable an interchange at every position is also
                    realised by any site that carries the whole input (the token embedding
                    included), so its IIA does not localise it; per-variable IIA is in the
                    ``by_target`` artifact (every hypothesis has one)
    random          control for das: the same variables and k, each at a uniformly drawn
                    residual site in a uniformly drawn subspace (no training, no truth)
    circuit_eap     EAP's top edges as a circuit + "everything else irrelevant" (locates no
                    variable: no interchange pairs). Size rule (truth-free): the smallest k
                    such that the top-k edges by EAP score, all other edges resample-ablated,
                    recover ≥ :data:`EAP_RECOVERY` of the KL that ablating every edge causes,
                    on EAP's own 64 task pairs (drawn from a stream of their own, not the
                    scoring pairs). Artifact ``eap_circuit``: k, the number of edges, the recovery
                    at k and the nodes kept
    replacement     aligned components swapped for the explanation's part (SIIT organisms)
                    replacement_fidelity (ablation None) and the mean-ablation baseline
                    (ablation "mean"), kl_recovered
    probe           linear probe on a located variable at its component's output:
                    probe_accuracy, and probe_selectivity / probe_control_accuracy against a
                    Hewitt–Liang control task over (token, position) types; when that control is
                    degenerate selectivity is not emitted and the reason goes to the job's
                    ``omitted`` artifact
    dictionary_replacement
                    each compiled MLP block replaced by a TopK transcoder (mlp_in -> mlp_out)
                    trained on half the inputs (every valid input, all lengths); method
                    ``dictionary_replacement:<variables>``: replacement_fidelity (position
                    accuracy vs the RASP evaluator, relative to the original; ablation None),
                    its mean-ablation baseline (ablation "mean"), kl_recovered, l2_recovered,
                    mmcs_written_directions (decoder vs the block's true written directions; not
                    the features track's ``mmcs``), feature_recall, n_positions. Compiled only.

Hypothesis metrics (see :mod:`interplab.eval.counterfactuals`), per pair kind, never pooled:
``counterfactual_accuracy_interchange`` (= IIA), ``counterfactual_accuracy_ablation``,
``counterfactual_accuracy_new_input``, each with ``n_<kind>``, and
``hypothesis_loss_recovered``. Every hypothesis on one organism and seed is scored on the same
sampled pairs (equal n); a kind that does not apply to a hypothesis is left out of its rows and
its reason recorded in the ``omitted`` artifact. The ``estimates`` artifact holds each metric's
value, 95% interval and n.

The hypothesis builders (all but ``das``, whose placement rule needs this track's scoring
pairs) are registered in the method registry's ``causal`` family
(:mod:`interplab.methods.causal.hypotheses`); this track scores what they propose.
``job_output(organism, method, seed)`` returns a JobOutput (:class:`~interplab.bench.track.Row`
rows and artifacts); ``run_causal_job`` its rows. ``SUITES["quick"]`` lists the jobs cheap
enough for the quick suite (SIIT organisms there train in ~20–40 s on first use, then load from
the cache).
"""

from __future__ import annotations

import functools
import itertools
import random
import time
from typing import Any

from interplab.bench.track import Job, JobOutput, Metric, Row, module_track
from interplab.errors import ConfigError, unknown_name
from interplab.methods import registry

#: library programs whose compiled models are causal-track organisms (``compiled-<program>``)
COMPILED_PROGRAMS = ("hist", "sort_unique", "sum_prev", "shift_by")
#: further library programs, run by dictionary_replacement only in the suites
DICTIONARY_PROGRAMS = ("mod_sum", "frac_prevs")
COMPILED = tuple(f"compiled-{p}" for p in COMPILED_PROGRAMS)
DICTIONARY_ONLY = tuple(f"compiled-{p}" for p in DICTIONARY_PROGRAMS)
HYPOTHESES = ("ground_truth", "misaligned", "shuffled", "random", "das", "circuit_eap")
#: registry names (family "causal"; which are controls is the registry's kind)
METHODS = HYPOTHESES + ("replacement", "probe", "dictionary_replacement")
METRICS = (
    "counterfactual_accuracy_interchange",
    "counterfactual_accuracy_ablation",
    "counterfactual_accuracy_new_input",
    "hypothesis_loss_recovered",
    "replacement_fidelity",
    "probe_selectivity",
    "mmcs_written_directions",
)
#: prefix of every metric the ground_truth method emits (a scorer self-check, not a result)
SELFCHECK = "selfcheck_"
#: the methods that check the scorer (right by construction): their metrics carry SELFCHECK
SELF_CHECKS = ("ground_truth",)
N_PAIRS = 200
#: at most this many inputs are enumerated (else a seeded sample of this many)
MAX_INPUTS = 10_000


def organisms() -> list[str]:
    from interplab.zoo.siit import verified_names

    return sorted(COMPILED) + sorted(verified_names()) + sorted(DICTIONARY_ONLY)


def fixed_length_inputs(spec: Any, seed: int = 0) -> list[list]:
    """Every valid input of length ``spec.max_len`` (a seeded sample of :data:`MAX_INPUTS`
    when there are more): the pool hypotheses are scored on."""
    if len(spec.vocab) ** spec.max_len <= MAX_INPUTS:
        return [
            list(x) for x in itertools.product(spec.vocab, repeat=spec.max_len) if spec.valid(x)
        ]
    rng = random.Random(seed)
    return [spec.sample(rng, spec.max_len) for _ in range(MAX_INPUTS)]


@functools.lru_cache(maxsize=8)
def _compiled(name: str) -> tuple[Any, Any]:
    """(the library's compiled model, its ProgramSpec) for ``compiled-<program>``."""
    from interplab.compile.programs import get_program

    if name not in COMPILED + DICTIONARY_ONLY:
        raise unknown_name("causal-track organism", name, organisms())
    spec = get_program(name.removeprefix("compiled-"))
    return spec.compile(), spec


def load(organism: str, seed: int = 0) -> tuple[Any, Any, list]:
    """(model, ground-truth hypothesis, inputs of one length) for an organism of this track."""
    from interplab.methods.causal import from_ground_truth
    from interplab.zoo import siit

    if organism in COMPILED + DICTIONARY_ONLY:
        model, spec = _compiled(organism)
        return model, from_ground_truth(model), fixed_length_inputs(spec)
    if organism in siit.SPECS:
        org = siit.load_or_train(organism, seed)
        return org.model, org.hypothesis(), org.inputs
    raise unknown_name("causal-track organism", organism, organisms())


def job_output(organism: str, method: str, seed: int = 0) -> JobOutput:
    """Run one (organism, method) job: rows and artifacts (see the module docstring)."""
    if method not in METHODS:
        raise unknown_name("causal-track method", method, METHODS)
    if method == "dictionary_replacement":
        return JobOutput(rows=_dictionary_rows(organism, seed))
    model, truth, inputs = load(organism, seed)
    start = time.perf_counter()
    if method in HYPOTHESES:
        return _hypothesis_output(organism, method, model, truth, inputs, seed, start)
    if method == "replacement":
        return JobOutput(rows=_replacement_rows(organism, model, truth, inputs, seed, start))
    return _probe_output(organism, model, truth, inputs, seed, start)


def run_causal_job(organism: str, method: str, seed: int = 0) -> list[Row]:
    """The rows of :func:`job_output`."""
    return job_output(organism, method, seed).rows


def _output_values(organism: str, model, seed: int) -> tuple:
    """Class i -> output value of a categorical organism (what DAS trains its labels on)."""
    from interplab.zoo import siit

    values = getattr(model, "output_values", None)
    if values is None and organism in siit.SPECS:
        values = siit.load_or_train(organism, seed).output_values
    if values is None:
        raise ConfigError(
            f"{organism}: das needs a categorical output (class ids to train on); "
            "this organism's output is numerical"
        )
    return tuple(values)


def _scoring_pairs(inputs, seed: int) -> list[tuple]:
    """The interchange (base, source) pairs every hypothesis is scored on (what a method that
    trains on pairs must not train on)."""
    from interplab.eval.counterfactuals import sample_pairs

    bases, sources = sample_pairs(inputs, N_PAIRS, seed, "interchange")
    return list(zip(bases, sources))


def _das_hypothesis(organism, model, truth, inputs, seed):
    """(the DAS alignment as a hypothesis, its ``alignment`` artifact)."""
    from interplab.methods.causal import from_subspaces
    from interplab.methods.causal.das_training import das_alignment

    found = das_alignment(
        model,
        truth.program,
        inputs,
        truth.encode,
        _output_values(organism, model, seed),
        exclude=_scoring_pairs(inputs, seed),
        seed=seed,
    )
    if not found:
        raise ConfigError(
            f"{organism}: das found no computed variable that varies on the "
            "inputs, so it proposes no alignment"
        )
    hyp = from_subspaces(
        "DAS alignment",
        truth.program,
        {v: (c.site, r.basis) for v, (c, r) in found.items()},
        None,
        truth.all_nodes,
        truth.encode,
        truth.decode,
        kind="discovered",
        numerical=truth.numerical,
        description="DAS subspaces at the residual sites it chose",
    )
    return hyp, {"alignment": {v: c.as_dict() for v, (c, _) in found.items()}}


def _hypothesis(organism: str, method: str, model, truth, inputs, seed):
    """(the hypothesis ``method`` proposes, extra artifacts): ``das`` here, every other builder
    from the registry's causal family."""
    if method == "das":
        return _das_hypothesis(organism, model, truth, inputs, seed)
    proposal = registry.run("causal", method, model, truth, inputs, seed=seed)
    return proposal.hypothesis, dict(proposal.extra)


def _hypothesis_output(organism, method, model, truth, inputs, seed, start):
    """Score one hypothesis; rows per pair kind (prefixed ``selfcheck_`` for ground_truth)."""
    from interplab.eval.counterfactuals import score_hypothesis

    hyp, extra = _hypothesis(organism, method, model, truth, inputs, seed)
    report = score_hypothesis(model, hyp, inputs, n_pairs=N_PAIRS, seed=seed)
    secs = time.perf_counter() - start
    prefix = SELFCHECK if method in SELF_CHECKS else ""
    rows = [Row(prefix + k, float(v), seconds=round(secs, 3)) for k, v in report.rows().items()]
    artifacts = {
        "estimates": {prefix + k: e.as_dict() for k, e in report.estimates().items()},
        "omitted": {prefix + k: why for k, why in report.omitted.items()},
        "by_target": {k: e.as_dict() for k, e in report.by_target.items()},
        **extra,
    }
    return JobOutput(rows=rows, artifacts=artifacts)


def _replacement_rows(organism, model, truth, inputs, seed, start) -> list[Row]:
    from interplab.eval.replacement import replacement_fidelity

    try:
        parts = registry.run("causal", "replacement", model, truth, inputs, seed=seed).parts
    except ConfigError as exc:
        raise ConfigError(f"{organism}: {exc}") from None
    rows = []
    for var in parts:
        r = replacement_fidelity(model, truth, var, inputs, seed=seed)
        secs = round(time.perf_counter() - start, 3)
        method = f"replacement:{var}"
        rows += [
            Row("replacement_fidelity", float(r.fidelity), seconds=secs, method=method),
            Row(
                "replacement_fidelity",
                float(r.mean_fidelity),
                seconds=secs,
                method=method,
                ablation="mean",
            ),
            Row("kl_recovered", float(r.kl_recovered), seconds=secs, method=method),
        ]
    return rows


def _dictionary_rows(organism: str, seed: int) -> list[Row]:
    from interplab.eval.dictionary_replacement import dictionary_replacement

    if organism not in COMPILED + DICTIONARY_ONLY:
        raise ConfigError(
            f"dictionary_replacement needs a compiled organism (its blocks' true "
            f"directions are known); {organism} is not one of "
            f"{sorted(COMPILED + DICTIONARY_ONLY)}"
        )
    model, spec = _compiled(organism)
    inputs = spec.inputs(limit=MAX_INPUTS, seed=seed)  # per-position scores: any lengths
    rows = []
    blocks = registry.run("causal", "dictionary_replacement", model, seed=seed).parts
    for layer, labels in blocks:
        start = time.perf_counter()
        r = dictionary_replacement(model, model.program, inputs, layer, seed=seed)
        secs = round(time.perf_counter() - start, 3)
        method = f"dictionary_replacement:{'+'.join(labels)}"
        values = [
            ("replacement_fidelity", r.fidelity, None),
            ("replacement_fidelity", r.mean_fidelity, "mean"),
            ("mmcs_written_directions", r.mmcs, None),
            ("feature_recall", r.recall, None),
            ("n_positions", r.n_positions, None),
        ]
        values += [
            (k, v, None)
            for k, v in (("kl_recovered", r.kl_recovered), ("l2_recovered", r.l2_recovered))
            if v == v
        ]  # NaN when mean ablation changes nothing / numerical output
        rows += [Row(k, float(v), seconds=secs, method=method, ablation=a) for k, v, a in values]
    return rows


def _probe_output(organism, model, truth, inputs, seed, start):
    """probe_accuracy always; probe_selectivity and probe_control_accuracy only when the
    (token, position) control task passes its checks, else the reason in ``omitted``."""
    proposal = registry.run("causal", "probe", model, truth, inputs, seed=seed)
    secs = round(time.perf_counter() - start, 3)
    info = dict(proposal.extra["probe"])
    method = f"probe:{info['variable']}"
    names = ("selectivity", "accuracy", "control_accuracy")
    rows = [
        Row(f"probe_{k}", float(info.pop(k)), seconds=secs, method=method)
        for k in names
        if k in info
    ]
    artifacts = {"probe": info}
    if "omitted" in proposal.extra:
        artifacts["omitted"] = proposal.extra["omitted"]
    return JobOutput(rows=rows, artifacts=artifacts)


# ----------------------------------------------------------------- bench track interface
from interplab.zoo.siit import SPECS as _siit_specs  # noqa: E402
from interplab.zoo.siit import UNVERIFIED as _siit_unverified  # noqa: E402

ABLATIONS = (None,)
_MAIN = COMPILED + tuple(sorted(n for n in _siit_specs if n not in _siit_unverified))
ORGANISMS = _MAIN + DICTIONARY_ONLY
SUITES = {
    "quick": [
        {
            "organisms": ["compiled-hist", "compiled-sum_prev", "siit-shift_by"],
            "methods": ["ground_truth", "misaligned", "random", "das", "circuit_eap", "probe"],
        },
        {"organisms": ["compiled-hist", "compiled-sum_prev"], "methods": ["shuffled"]},
        {"organisms": ["siit-shift_by"], "methods": ["replacement"]},
    ],
    "full": [
        {
            "organisms": list(_MAIN),
            "methods": [
                "ground_truth",
                "misaligned",
                "shuffled",
                "random",
                "das",
                "circuit_eap",
                "probe",
            ],
        },
        {"organisms": [o for o in _MAIN if o.startswith("siit-")], "methods": ["replacement"]},
        {"organisms": list(COMPILED + DICTIONARY_ONLY), "methods": ["dictionary_replacement"]},
    ],
}


def why_not(organism: str, method: str) -> str | None:
    """Why the bench does not expand (organism, method), or None when it applies."""
    one_variable = organism in _siit_specs and len(_siit_specs[organism].alignment) < 2
    if method == "shuffled" and one_variable:
        return (
            f"shuffled swaps located variables among themselves; {organism}'s alignment "
            f"locates one ({', '.join(_siit_specs[organism].alignment)}): misaligned is its "
            "control"
        )
    if method == "replacement" and organism not in _siit_specs:
        return (
            f"replacement rebuilds components aligned to variables; {organism}'s ground "
            "truth is subspace-level (SIIT organisms have aligned components)"
        )
    if method == "dictionary_replacement" and organism not in COMPILED + DICTIONARY_ONLY:
        return (
            f"dictionary_replacement needs a compiled organism (its blocks' true directions "
            f"are known); {organism} is not one"
        )
    return None


def applies(organism: str, method: str) -> bool:
    """Whether the bench expands the job (see :func:`why_not`)."""
    return why_not(organism, method) is None


def run_job(job: Job) -> JobOutput:
    return job_output(job.organism, job.method, job.seed)


TRACK = module_track(
    globals(),
    name="causal",
    metrics=(
        Metric("counterfactual_accuracy_interchange", headline=True),
        Metric("counterfactual_accuracy_ablation"),
        Metric("counterfactual_accuracy_new_input"),
        Metric("hypothesis_loss_recovered"),
        Metric("replacement_fidelity", headline=True),
        Metric("kl_recovered"),
        Metric("probe_selectivity"),
        Metric("probe_accuracy"),
        Metric("mmcs_written_directions"),
        Metric("n_pairs", better=None, bookkeeping=True),
        Metric("n_interchange", better=None, bookkeeping=True),
        Metric("n_ablation", better=None, bookkeeping=True),
        Metric("n_new_input", better=None, bookkeeping=True),
    ),
    section="interplab.report.causal:section",
    self_checks=SELF_CHECKS,
    why_not_fn=why_not,
)
