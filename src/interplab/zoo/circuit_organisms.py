"""Circuit organisms under the one contract: compiled, trained, SIIT-trained and generated models
as :class:`~interplab.zoo.contract.Organism` values with a verified :class:`CircuitTruth`.

    circuit_organism(name, seed) -> Organism

For every family the same steps, in this order:

1. build the model (compile, train or load from cache);
2. draw the scoring pairs (``tasks["score"]``, :data:`N_PAIRS`) and, apart from them, the truth's
   pairs (:data:`N_TRUTH_PAIRS`) and the held-out pairs faithfulness is measured on
   (``tasks["heldout"]``);
3. derive the truth without any method code (RASP evaluator; planted design and roles read from
   attention; the SIIT alignment), recording the rows it used;
4. verify it in the weights on held-out pairs under every ablation it claims (single-edge
   ablation agrees with it; the SIIT alignment by interchange). The per-ablation truths that
   fail are refused (:func:`release`: ``truth.checks["refused"]`` says why, and a job asking for
   one fails with that reason); when every one fails the organism raises
   :class:`~interplab.errors.VerificationError`. A refused truth is never used;
5. check independence on the rows actually used (:meth:`Organism.check_independent`).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from typing import Any

import torch

from interplab.core.circuit import ABLATIONS, Circuit
from interplab.errors import VerificationError, unknown_name
from interplab.tasks.rasp import held_out_pairs, pair_task, predictions
from interplab.zoo.contract import CircuitTruth, Organism, recording_inputs, tensor_rows

N_PAIRS = 32
N_TRUTH_PAIRS = 64
#: seed offset of the held-out pairs faithfulness is measured on (apart from scoring and truth)
HELDOUT_OFFSET = 7919

__all__ = [
    "N_PAIRS",
    "N_TRUTH_PAIRS",
    "REFUSED",
    "circuit_organism",
    "compiled_organism",
    "held_out_pairs",
    "perturbed_organism",
    "predictions",
    "refused",
    "refused_truth",
    "siit_organism",
    "trained_organism",
]


def circuit_organism(name: str, seed: int = 0) -> Organism:
    """The circuit organism ``name`` (compiled-*, trained-*, siit-*, generated-*, perturbed-*)
    under ``seed``."""
    if name.startswith("compiled-"):
        return compiled_organism(name.removeprefix("compiled-"), seed)
    if name.startswith("trained-"):
        return trained_organism(name.removeprefix("trained-"), seed)
    if name.startswith("siit-"):
        return siit_organism(name, seed)
    if name.startswith("generated-"):
        return generated_organism(name, seed)
    if name.startswith("perturbed-"):
        return perturbed_organism(name, seed)
    raise unknown_name(
        "circuit organism",
        name,
        [
            "compiled-<program>",
            "trained-<task>",
            "siit-<program>",
            "generated-<seed>-<i>",
            "perturbed-<seed>-<i>",
        ],
    )


def _encoded_rows(encode: Callable, pairs: list) -> frozenset[str]:
    return tensor_rows(encode([c for c, _ in pairs]), encode([x for _, x in pairs]))


# ------------------------------------------------------------------------------- compiled
@functools.lru_cache(maxsize=8)
def compiled_organism(program: str, seed: int = 0) -> Organism:
    """``compiled-<program>``: the library program compiled with its defaults; truth from the RASP
    evaluator on held-out pairs of full length, verified by single-edge ablation in the weights."""
    from interplab.compile.programs import get_program

    spec = get_program(program)
    pairs = spec.task_pairs(N_PAIRS, seed=seed, length=spec.max_len)
    held = held_out_pairs(spec, pairs, N_TRUTH_PAIRS, seed)
    faith = held_out_pairs(spec, pairs, N_PAIRS, seed + HELDOUT_OFFSET)
    return _rasp_organism(
        f"compiled-{program}",
        "interplab.zoo.compiled",
        seed,
        spec.compile(),
        (pairs, held, faith),
        f"{len(held)} held-out pairs of length {spec.max_len}",
        {"kind": "compiled", "program": program},
    )


def _rasp_organism(
    name: str,
    family: str,
    seed: int,
    model: Any,
    pairs: tuple[list, list, list],
    where: str,
    info: dict,
) -> Organism:
    """A compiled model under the contract: (scoring, truth, faithfulness) pairs; the truth derived
    in the RASP evaluator on the truth pairs and checked in the weights there."""
    from interplab.compile import derive_circuit

    scoring, held, faith = pairs
    derived = derive_circuit(model, held)
    per_ablation, checks = _check_compiled(
        name, model, {a: derived.for_ablation(a) for a in ABLATIONS}, held
    )
    truth = CircuitTruth(
        per_ablation,
        model.ground_truth.designed,
        f"RASP dataflow on {where}, verified by single-edge ablation in the "
        "weights; designed: compiler dataflow",
        _encoded_rows(model.encode, held),
        checks,
    )
    tasks = {
        "score": pair_task(model, model.encode, scoring, "l2", name),
        "heldout": pair_task(model, model.encode, faith, "l2", name),
    }
    return _released(Organism(name, family, seed, model, tasks, truth, info))


def _check_compiled(
    name: str, model: Any, per_ablation: dict[str, Circuit], pairs: list
) -> tuple[dict[str, Circuit], dict]:
    """Single-edge ablation in the compiled weights on the truth's own held-out pairs, under every
    ablation: the truths that agree are released, the others refused (:func:`release`)."""
    from interplab.compile.truth_check import disagreements

    problems = disagreements(model, per_ablation, pairs)
    record = {
        "check": "single-edge ablation in the compiled weights (interplab.compile.truth_check)",
        "pairs": len(pairs),
        "lengths": sorted({len(c) for c, _ in pairs}),
    }
    return release(name, per_ablation, problems, record)


_ALL = ("zero", "mean", "resample")
#: (organism, ablation) truths that fail their check in the weights, as measured (seed 0) — so a
#: bench does not expand jobs that would only fail; ``tests/zoo/test_circuit_refusals.py`` checks
#: that this list is exactly what the checks refuse. Library programs' refusals come from
#: :func:`interplab.compile.truth_check.unverified_ablations`.
REFUSED: dict[str, dict[str, str]] = {
    "trained-induction": {
        a: "two layer-0 heads outside the planted circuit matter alone and three "
        "planted K-composition edges are each below 5% of the whole effect "
        "(redundant heads); the design cannot be corrected without retraining"
        for a in _ALL
    },
    "siit-shift_by": {
        "zero": "L0.MLP->logits matters alone but is outside the SIIT truth",
        "mean": "L0.H0->L0.MLP matters alone but is outside the SIIT truth",
    },
    "siit-first_token": {"zero": "tokens->L0.H0[q] matters alone but is outside the SIIT truth"},
    "perturbed-0-12": {
        "zero": "off-circuit tokens->head edges matter alone in the perturbed weights"
    },
    **{
        n: {
            a: "edges outside the SIIT truth (parts the alignment does not constrain) matter alone"
            for a in _ALL
        }
        for n in (
            "siit-shift_by_1",
            "siit-shift_by_2",
            "siit-hist",
            "siit-mod_sum",
            "siit-sum_prev",
        )
    },
}


def refused_truth(name: str, ablation: str | None) -> str | None:
    """Why the ``ablation`` truth of circuit organism ``name`` is refused by its check in the
    weights (measured: see :data:`REFUSED`), or None."""
    if name.startswith("compiled-"):
        from interplab.compile.truth_check import unverified_ablations

        return unverified_ablations(name).get(ablation or "") or None
    return REFUSED.get(name, {}).get(ablation or "")


def refused(name: str, ablation: str | None) -> str | None:
    """Why no job of ``name`` under ``ablation`` is run, or None; used to leave such jobs out of
    a bench. A SIIT organism is never left out: where its per-ablation truth is refused it is
    scored against its designed truth alone (its alignment, verified by interchange; see
    :func:`release`)."""
    if name.startswith("siit-"):
        return None
    why = refused_truth(name, ablation)
    return (
        f"the {ablation} truth of {name} is refused by its check in the weights: {why}"
        if why
        else None
    )


def release(
    name: str,
    per_ablation: dict[str, Circuit],
    problems: dict[str, list[str]],
    record: dict,
    designed_check: str | None = None,
) -> tuple[dict[str, Circuit], dict]:
    """The per-ablation truths whose check found no problem, and the checks record: which were
    verified, which refused and why. Raises VerificationError when every claim is refused,
    unless ``designed_check`` says how the designed truth was verified on its own (a SIIT
    alignment, by interchange on held-out inputs): then the record says ``designed_only`` and
    the organism is scored against its designed truth alone. A refused ablation is never scored
    (a job asking for it fails with the reason, or scores only the designed truth)."""
    refused = {
        a: "; ".join(p[:3]) + (f"; and {len(p) - 3} more" if len(p) > 3 else "")
        for a, p in problems.items()
        if p
    }
    if designed_check and refused:
        record = {**record, "designed_only": designed_check}
    elif len(refused) == len(per_ablation):
        raise VerificationError(
            f"{name}: its circuit truth disagrees with its weights under every "
            f"ablation it claims, so it is refused: " + " | ".join(refused.values())
        )
    kept = {a: c for a, c in per_ablation.items() if a not in refused}
    return kept, {**record, "verified": sorted(kept), "refused": refused}


# ------------------------------------------------------------------------------- trained
@functools.lru_cache(maxsize=4)
def trained_organism(task_name: str, seed: int = 0) -> Organism:
    """``trained-<task>``: a transformer trained here with a planted circuit (roles read from
    attention on fresh rows), verified edge by edge in the weights on held-out rows."""
    from interplab.zoo import organisms

    name = f"trained-{task_name}"
    org = organisms.load_organism(task_name, verify=False)  # checked here, per ablation
    # what the truth reads: its roles are read off the model on rows of its own; run the same
    # truth code again under a recorder of every row the model is given, and keep it only if it
    # is the truth the organism carries (a truth that reads other rows each time is refused)
    with recording_inputs(_module(org.model)) as seen:
        again, _ = organisms.read_truth(task_name, org.model, org.task)
    if {a: c.edges for a, c in again.items()} != {a: c.edges for a, c in org.ground_truth.items()}:
        raise VerificationError(
            f"{name}: reading its truth twice gave two different circuits; "
            "a truth must be a deterministic function of the model"
        )
    check = organisms.check_organism_truth(
        task_name, org.model, dict(org.ground_truth), organisms.organism_directory(task_name)
    )
    per_ablation, checks = _release_checked(name, dict(org.ground_truth), check)
    designed = Circuit.from_edges(
        set().union(*(c.edges for c in org.ground_truth.values())), name=f"{name} (planted)"
    )
    truth = CircuitTruth(
        per_ablation,
        designed,
        "planted by training, roles read from attention on fresh rows; verified "
        "by single-edge ablation in the weights on held-out rows",
        seen.digests,
        checks,
    )
    tasks = {"score": org.task, "heldout": organisms.heldout_task(task_name)}
    return _released(
        Organism(
            name,
            "interplab.zoo.organisms",
            seed,
            org.model,
            tasks,
            truth,
            {**org.info, "kind": "trained", "description": org.description},
        )
    )


def _release_checked(
    name: str, per_ablation: dict[str, Circuit], check: Any, designed_check: str | None = None
) -> tuple[dict, dict]:
    """:func:`release` from a :class:`interplab.zoo.verify.TruthCheck` (trained and SIIT)."""
    problems = {a: ([c.describe()] if not c.ok else []) for a, c in check.ablations.items()}
    problems.update({a: ["not checked"] for a in per_ablation if a not in check.ablations})
    record = {
        "check": f"single-edge ablation in the weights, effect = change of the "
        f"{check.metric} (interplab.zoo.verify)",
        "pairs": check.n_pairs,
        "rel_tol": check.rel_tol,
    }
    return release(name, per_ablation, problems, record, designed_check)


def _module(model: Any) -> torch.nn.Module:
    return getattr(model, "model", model)


# ---------------------------------------------------------------------------------- SIIT
@functools.lru_cache(maxsize=4)
def siit_organism(name: str, seed: int = 0) -> Organism:
    """``siit-<program>`` (or a generated twin ``siit-generated-<s>-<i>``): the alignment it was
    trained to, checked by interchange on held-out pairs, and per-ablation subsets from the RASP
    program on held-out inputs, checked by single-edge ablation in the weights."""
    from interplab.zoo.siit import load_or_train
    from interplab.zoo.siit_generated import load_twin, resolve
    from interplab.zoo.siit_truth import check_edges, siit_truth

    org = load_twin(name, seed) if resolve(name) is not None else load_or_train(name, seed)
    rng = random.Random(seed)
    inputs = org.inputs
    clean_in = [rng.choice(inputs) for _ in range(N_PAIRS)]
    corrupt_in = [rng.choice(inputs) for _ in range(N_PAIRS)]
    scoring = {tuple(x) for x in clean_in + corrupt_in}
    t = siit_truth(name, seed, exclude=clean_in + corrupt_in)  # raises below IIA 0.95
    per_ablation, checks = _release_checked(
        name,
        dict(t.per_ablation),
        check_edges(name, seed, t),
        f"SIIT alignment: interchange IIA {_fmt(t.check['iia'])} on held-out pairs",
    )
    rest = [x for x in inputs if tuple(x) not in scoring] or inputs
    rng_h = random.Random(seed + HELDOUT_OFFSET)
    faith = [(rng_h.choice(rest), rng_h.choice(rest)) for _ in range(N_PAIRS)]
    truth = CircuitTruth(
        per_ablation,
        t.designed,
        f"SIIT alignment (held-out IIA {_fmt(t.check['iia'])}); per ablation: RASP "
        f"dataflow on {t.n_pairs} held-out pairs, verified in the weights",
        tensor_rows(org.encode(list(t.truth_inputs))),
        {**checks, "interchange": dict(t.check)},
    )
    pairs = list(zip(clean_in, corrupt_in))
    tasks = {
        "score": pair_task(org.model, org.encode, pairs, "kl", name),
        "heldout": pair_task(org.model, org.encode, faith, "kl", name),
    }
    return _released(
        Organism(
            name,
            "interplab.zoo.siit",
            seed,
            org.model,
            tasks,
            truth,
            {
                "kind": "siit",
                "program": org.spec.name,
                "scoring_inputs": tuple(tuple(x) for x in clean_in + corrupt_in),
            },
        )
    )


def _fmt(iia: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(iia.items()))


# ----------------------------------------------------------------------------- generated
@functools.lru_cache(maxsize=4)
def generated_organism(name: str, seed: int = 0) -> Organism:
    """``generated-<s>-<i>``: scoring pairs inside one half of the inputs, the truth derived (and
    verified in the weights) on pairs inside the other (:mod:`interplab.zoo.generated`)."""
    from interplab.compile.generate import scoring_and_truth_pairs
    from interplab.zoo.generated import load_generated

    org = load_generated(name)
    pairs, held = scoring_and_truth_pairs(org.spec, seed)
    # faithfulness on the truth's half (never the pairs a method ranked edges on)
    return _rasp_organism(
        name,
        "interplab.zoo.generated",
        seed,
        org.model,
        (pairs, held, held[:N_PAIRS]),
        f"{len(held)} pairs from the other half of the inputs",
        {"kind": "compiled", "shape": org.spec.describe()},
    )


@functools.lru_cache(maxsize=4)
def perturbed_organism(name: str, seed: int = 0) -> Any:
    """``perturbed-<s>-<i>`` under the compiled organisms' contract: scoring pairs in the
    training half, the truth (the compiled sibling's, from the RASP evaluator) derived on pairs
    of the held-out half and released only where single-edge ablation in the perturbed weights
    agrees with it, designed edges and every edge outside the design alike."""
    from interplab.compile.generate import scoring_and_truth_pairs
    from interplab.zoo.generated import load_generated
    from interplab.zoo.perturbed import load_perturbed, offcircuit_problems, parse_name, sibling

    parse_name(name)
    model, report = load_perturbed(name, seed)
    spec = load_generated(sibling(name)).spec
    pairs, held = scoring_and_truth_pairs(spec, seed)
    org = _rasp_organism(
        name,
        "interplab.zoo.perturbed",
        seed,
        model,
        (pairs, held, held[:N_PAIRS]),
        f"{len(held)} pairs from the held-out half of the inputs (never trained on)",
        {"kind": "perturbed", "sibling": sibling(name), "shape": spec.describe(), **report},
    )
    truth = org.truth
    assert isinstance(truth, CircuitTruth)
    first = dict(truth.checks)
    problems = offcircuit_problems(model, held, truth.per_ablation)
    try:
        kept, second = release(name, dict(truth.per_ablation), problems, {})
    except VerificationError as exc:
        raise VerificationError(
            f"{exc}; refused before by the designed-edge check: {first.get('refused') or 'none'}"
        ) from None
    checks = {
        **first,
        "check": first.get("check", "")
        + "; every edge outside the designed circuit ablated alone in the perturbed weights "
        "(interplab.compile.edge_measure)",
        "verified": second["verified"],
        "refused": {**first.get("refused", {}), **second["refused"]},
    }
    truth = dataclasses.replace(truth, per_ablation=kept, checks=checks)
    org = dataclasses.replace(org, truth=truth)
    org.check_independent()
    return org


def _released(org: Organism) -> Organism:
    """The organism, after its truth passed the independence check on the rows it used."""
    org.check_independent()
    return org
