"""Causal track: do explanations predict the model? (issue 6)

Organisms: ``compiled-<prog>`` (a compiled RASP program; ground truth from the compiler) and the
SIIT-trained organisms of :mod:`interplab.zoo.siit` (ground truth = the verified training
alignment). Methods (each a hypothesis or a tool scored against the ground truth):

    ground_truth    the true hypothesis            counterfactual_accuracy, iia, loss_recovered
    misaligned      control: variables misplaced   counterfactual_accuracy, iia, loss_recovered
    shuffled        control: variables swapped     (needs ≥2 located variables)
    circuit_eap     EAP's top edges as a circuit + "everything else irrelevant"
                                                   counterfactual_accuracy, loss_recovered
    replacement     aligned components swapped for the explanation's part (SIIT organisms)
                    replacement_fidelity (ablation None) and the mean-ablation baseline
                    (ablation "mean")
    probe           linear probe on a located variable at its component's output
                    probe_selectivity (and probe accuracy)
    dictionary_replacement
                    each compiled MLP block replaced by a TopK transcoder (mlp_in -> mlp_out)
                    trained on half the inputs; method ``dictionary_replacement:<variables>``:
                    replacement_fidelity (position accuracy vs the RASP evaluator, relative to
                    the original; ablation None), its mean-ablation baseline (ablation "mean"),
                    kl_recovered, l2_recovered, mmcs (decoder vs the block's true written
                    directions), feature_recall, n_positions. Compiled organisms only; also run
                    on library programs with several input lengths (``library-<program>``).

``run_causal_job(organism, method, seed)`` returns rows ``{"organism", "method", "ablation",
"metric", "value", "seconds"}``; :data:`QUICK` lists the jobs cheap enough for the quick suite
(SIIT organisms there train in ~20–40 s on first use, then load from the cache).
"""

from __future__ import annotations

import functools
import itertools
import time
from typing import Any

from interplab.errors import ConfigError, unknown_name

COMPILED = {
    # name: (program builder name in interplab.zoo.siit, vocab, length, distinct)
    "compiled-hist": ("program_hist", tuple(range(4)), 5, False),
    "compiled-sort_unique": ("program_sort_unique", tuple(range(6)), 4, True),
    "compiled-sum_prev": ("program_sum_prev", tuple(range(3)), 5, False),
    "compiled-shift_by": ("program_shift_by_1", tuple(range(4)), 5, False),
}
#: library programs (interplab.compile.programs) run by dictionary_replacement only
LIBRARY = {"library-mod_sum": "mod_sum", "library-frac_prevs": "frac_prevs",
           "library-sort_unique": "sort_unique"}
METHODS = ("ground_truth", "misaligned", "shuffled", "circuit_eap", "replacement", "probe",
           "dictionary_replacement")
METRICS = ("counterfactual_accuracy", "iia", "loss_recovered", "replacement_fidelity",
           "probe_selectivity", "mmcs")
N_PAIRS = 200


def organisms() -> list[str]:
    from interplab.zoo.siit import verified_names

    return sorted(COMPILED) + sorted(verified_names()) + sorted(LIBRARY)


#: (organism, method) jobs for a ≤5-minute quick suite.
QUICK = tuple((o, m) for o in ("compiled-hist", "compiled-sum_prev", "siit-shift_by")
              for m in ("ground_truth", "misaligned", "replacement", "probe")
              if not (m == "replacement" and o.startswith("compiled")))


@functools.lru_cache(maxsize=8)
def _compiled(name: str) -> tuple[Any, list]:
    from interplab.compile.compiler import compile_program
    from interplab.zoo import siit

    builder, vocab, length, distinct = COMPILED[name]
    model = compile_program(getattr(siit, builder)(), list(vocab), length, name=name)
    inputs = (list(itertools.permutations(vocab, length)) if distinct
              else list(itertools.product(vocab, repeat=length)))
    return model, inputs


@functools.lru_cache(maxsize=8)
def _library(name: str) -> tuple[Any, list]:
    from interplab.compile.programs import get_program

    spec = get_program(LIBRARY[name])
    return spec.compile(), spec.inputs()


def load(organism: str, seed: int = 0) -> tuple[Any, Any, list]:
    """(model, ground-truth hypothesis, inputs) for an organism of this track."""
    from interplab.methods.causal import from_ground_truth
    from interplab.zoo import siit

    if organism in COMPILED:
        model, inputs = _compiled(organism)
        return model, from_ground_truth(model), inputs
    if organism in LIBRARY:
        model, inputs = _library(organism)
        return model, from_ground_truth(model), inputs
    if organism in siit.SPECS:
        org = siit.load_or_train(organism, seed)
        return org.model, org.hypothesis(), org.inputs
    raise unknown_name("causal-track organism", organism, organisms())


def _row(organism: str, method: str, metric: str, value: float, seconds: float,
         ablation: str | None = None) -> dict:
    return {"organism": organism, "method": method, "ablation": ablation, "metric": metric,
            "value": float(value), "seconds": round(seconds, 3)}


def run_causal_job(organism: str, method: str, seed: int = 0) -> list[dict]:
    """Run one (organism, method) job; see the module docstring for the rows."""
    from interplab.eval.counterfactuals import score_hypothesis
    from interplab.methods.causal import misaligned, shuffled

    if method not in METHODS:
        raise unknown_name("causal-track method", method, METHODS)
    if method == "dictionary_replacement":
        return _dictionary_rows(organism, seed)
    if organism in LIBRARY:
        raise ConfigError(f"{organism} is run by dictionary_replacement only (its inputs have "
                          f"several lengths); use a compiled-* organism for {method}")
    model, truth, inputs = load(organism, seed)
    start = time.perf_counter()
    if method in ("ground_truth", "misaligned", "shuffled", "circuit_eap"):
        if method == "ground_truth":
            hyp = truth
        elif method == "misaligned":
            hyp = misaligned(truth, seed=seed)
        elif method == "shuffled":
            hyp = shuffled(truth)
        else:
            hyp = _eap_hypothesis(model, truth, inputs, seed)
        report = score_hypothesis(model, hyp, inputs, n_pairs=N_PAIRS, seed=seed)
        secs = time.perf_counter() - start
        rows = [_row(organism, method, k, v, secs) for k, v in report.rows().items()]
        rows.append(_row(organism, method, "n_pairs", report.counterfactual_accuracy.n, secs))
        return rows
    if method == "replacement":
        from interplab.eval.replacement import replacement_fidelity

        rows = []
        for var in sorted(truth.alignment):
            if not truth.alignment[var].nodes:
                continue
            r = replacement_fidelity(model, truth, var, inputs, seed=seed)
            secs = time.perf_counter() - start
            rows += [_row(organism, f"replacement:{var}", "replacement_fidelity", r.fidelity, secs),
                     _row(organism, f"replacement:{var}", "replacement_fidelity",
                          r.mean_fidelity, secs, ablation="mean"),
                     _row(organism, f"replacement:{var}", "kl_recovered", r.kl_recovered, secs)]
        if not rows:
            raise ConfigError(f"{organism}: replacement needs components aligned to variables "
                              "(SIIT organisms have them; compiled ground truth is subspace-level)")
        return rows
    return _probe_rows(organism, model, truth, inputs, seed, start)


def _dictionary_rows(organism: str, seed: int) -> list[dict]:
    from interplab.eval.dictionary_replacement import dictionary_replacement, mlp_blocks

    if organism in COMPILED:
        model, inputs = _compiled(organism)
    elif organism in LIBRARY:
        model, inputs = _library(organism)
    else:
        raise ConfigError(f"dictionary_replacement needs a compiled organism (its blocks' true "
                          f"directions are known); {organism} is not one of "
                          f"{sorted(COMPILED) + sorted(LIBRARY)}")
    if model.program is None:
        raise ConfigError(f"{organism}: the compiled model carries no RASP program to evaluate")
    rows = []
    for layer, labels in mlp_blocks(model).items():
        start = time.perf_counter()
        r = dictionary_replacement(model, model.program, inputs, layer, seed=seed)
        secs = time.perf_counter() - start
        method = f"dictionary_replacement:{'+'.join(labels)}"
        rows += [_row(organism, method, "replacement_fidelity", r.fidelity, secs),
                 _row(organism, method, "replacement_fidelity", r.mean_fidelity, secs, ablation="mean"),
                 _row(organism, method, "mmcs", r.mmcs, secs),
                 _row(organism, method, "feature_recall", r.recall, secs),
                 _row(organism, method, "n_positions", r.n_positions, secs)]
        rows += [_row(organism, method, k, v, secs)
                 for k, v in (("kl_recovered", r.kl_recovered), ("l2_recovered", r.l2_recovered))
                 if v == v]  # NaN when mean ablation changes nothing / numerical output
    return rows


def _probe_rows(organism, model, truth, inputs, seed, start) -> list[dict]:
    from interplab.core.sites import Component, Site
    from interplab.methods.causal import run_program
    from interplab.methods.probing import probe_selectivity

    var = sorted(v for v in truth.alignment if v not in ("tokens", "indices"))[-1]
    real = truth.alignment[var]
    if real.nodes:
        site = real.sites[-1]
    else:  # compiled: the component that writes the variable
        writers = model.ground_truth.variables[var].sites
        site = writers[-1]
        if site.component is Component.ATTN_RESULT and site.head is None:
            site = Site(Component.ATTN_RESULT, site.layer, 0)
    pool = inputs[:2048]
    _, cache = model.run_with_cache(truth.encode(pool), [site])
    X = cache[site][:, 1:].reshape(-1, cache[site].shape[-1])
    y = [v for xs in pool for v in run_program(truth.program, xs)[var]]
    types = [t for xs in pool for t in xs]
    result = probe_selectivity(X, y, types, seed=seed)
    secs = time.perf_counter() - start
    return [_row(organism, f"probe:{var}", "probe_selectivity", result.selectivity, secs),
            _row(organism, f"probe:{var}", "probe_accuracy", result.accuracy, secs)]


def _eap_hypothesis(model, truth, inputs, seed):
    """EAP (resample ablation, KL) on random clean/corrupted pairs; keep as many top edges as
    the true circuit has; read its heads/MLPs as a circuit hypothesis."""
    import random

    from interplab.methods.causal import from_circuit
    from interplab.methods.circuits import CircuitTask, find_circuit

    rng = random.Random(seed)
    clean = [rng.choice(inputs) for _ in range(64)]
    corrupt = [rng.choice(inputs) for _ in range(64)]
    task = CircuitTask(truth.encode(clean), truth.encode(corrupt), metric="kl")
    scores = find_circuit("eap", model, task, ablation="resample")
    true_edges = getattr(getattr(model, "ground_truth", None), "circuit", None)
    k = len(true_edges.edges) if true_edges is not None else 3 * max(1, len(truth.circuit or ()))
    circuit = scores.to_circuit(top_k=k)
    return from_circuit("EAP circuit", truth.program, circuit.nodes, truth.all_nodes,
                        truth.encode, truth.decode, numerical=truth.numerical)


# ----------------------------------------------------------------- bench track interface
from interplab.zoo.siit import SPECS as _siit_specs, UNVERIFIED as _siit_unverified  # noqa: E402

ABLATIONS = (None,)
_MAIN = tuple(sorted(COMPILED)) + tuple(sorted(n for n in _siit_specs if n not in _siit_unverified))
ORGANISMS = _MAIN + tuple(sorted(LIBRARY))
SUITES = {
    "quick": [{"organisms": ["compiled-hist", "compiled-sum_prev", "siit-shift_by"],
               "methods": ["ground_truth", "misaligned", "probe"]},
              {"organisms": ["siit-shift_by"], "methods": ["replacement"]}],
    "full": [{"organisms": list(_MAIN),
              "methods": ["ground_truth", "misaligned", "shuffled", "circuit_eap", "probe"]},
             {"organisms": [o for o in _MAIN if o.startswith("siit-")], "methods": ["replacement"]},
             {"organisms": sorted(COMPILED) + sorted(LIBRARY), "methods": ["dictionary_replacement"]}],
}


def run_job(job):  # -> interplab.bench.tracks.JobOutput
    from interplab.bench.tracks import JobOutput

    return JobOutput(rows=run_causal_job(job.organism, job.method, job.seed))
