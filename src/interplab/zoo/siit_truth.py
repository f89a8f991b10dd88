"""The circuit truth of a SIIT organism: the alignment it was trained to, checked on held-out data.

    siit_truth(name, seed, exclude) -> SIITTruth(designed, per_ablation, check, n_pairs)

* **designed**: the alignment read against the program (which aligned component reads which
  variable from which, :func:`interplab.compile.dataflow_truth.alignment_reads`);
* **check**: before the truth is used, each aligned variable's components are interchanged
  (their outputs patched in from a source input) on held-out (base, source) pairs, and the model
  must then give the program's interchange output (IIA ≥ ``min_iia``, plus task accuracy ≥
  ``min_iia``). A failed check raises :class:`VerificationError`; there is no fallback;
* **per_ablation**: the designed edges that matter under each ablation, decided in the RASP
  evaluator on held-out pairs (:func:`interplab.compile.dataflow_truth.reads_to_circuit`).

Held-out means: drawn from the inputs in no scoring pair (``exclude``). Deriving the truth
imports nothing from ``interplab.methods``: the truth never shares code with the methods it scores
(a test runs :func:`siit_truth` with ``interplab.methods`` blocked).

Then the per-ablation truth is *checked* in the weights (:func:`check_edges`, which may use the
edge-patching engine because it only checks): on the truth's own held-out pairs every edge of the
full graph is ablated alone, and every truth edge must matter and every edge that matters must be
in the truth (the rule and its tolerance: :mod:`interplab.zoo.verify`).
:func:`verified_siit_truth` is :func:`siit_truth` plus that check, raising VerificationError
naming the organism, the ablation, the edges and their effects when it fails; the outcome is
stored beside the weights keyed by their SHA-256.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.compile import rasp
from interplab.compile.dataflow_truth import alignment_reads, evaluate_with_values, reads_to_circuit
from interplab.compile.ground_truth import decode_json_value
from interplab.core.circuit import ABLATIONS, Circuit, Node
from interplab.core.interventions import Patch
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError
from interplab.models.io import load_model
from interplab.zoo import siit_generated
from interplab.zoo.siit import (
    GT_NAME,
    SPECS,
    SIITSpec,
    VerificationError,
    fingerprint,
    organism_dir,
)

N_TRUTH_PAIRS = 64
N_CHECK_PAIRS = 256


@dataclass(frozen=True)
class SIITTruth:
    """designed: the alignment's circuit; per_ablation: {ablation: Circuit}; check: the held-out
    IIA per variable and task accuracy; n_pairs: held-out pairs the per-ablation truth used;
    truth_inputs: every input the truth read; pairs: the (clean, corrupted) held-out pairs the
    per-ablation truth was derived on (the single-edge check runs on them too)."""

    designed: Circuit
    per_ablation: Mapping[str, Circuit]
    check: Mapping[str, Any]
    n_pairs: int
    truth_inputs: frozenset[tuple[Any, ...]]
    pairs: tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...] = ()


def siit_truth(
    name: str, seed: int = 0, exclude: Iterable[Sequence[Any]] = (), *, min_iia: float = 0.95
) -> SIITTruth:
    """The truth of the trained, cached SIIT organism ``name`` (train it first with
    :func:`interplab.zoo.siit.load_or_train`), from inputs outside ``exclude``."""
    spec = _spec(name)
    model, values = _load(spec, seed)
    held = _held_out(spec, exclude)
    rng = random.Random(f"siit-truth/{name}/{seed}")
    check_pairs = [(rng.choice(held), rng.choice(held)) for _ in range(N_CHECK_PAIRS)]
    check = check_alignment(model, spec, values, check_pairs)
    worst = min([check["task_accuracy"], *check["iia"].values()])
    if worst < min_iia:
        raise VerificationError(
            f"{name} (seed {seed}) fails its alignment check on {len(check_pairs)} held-out pairs "
            f"(IIA {check['iia']}, task accuracy {check['task_accuracy']:.3f}; need ≥ {min_iia}): "
            "its ground truth cannot be trusted. Retrain it (load_or_train(..., retrain=True); "
            "for a generated twin, siit_generated.load_twin(..., retrain=True))."
        )
    program = spec.program()
    reads = alignment_reads(program, {v: spec.nodes(v) for v in spec.alignment})
    pairs = [(rng.choice(held), rng.choice(held)) for _ in range(N_TRUTH_PAIRS)]
    flagged = reads_to_circuit(program, reads, reads, pairs, name=f"{name} (alignment dataflow)")
    designed = Circuit.from_edges(reads, name=f"{name} (designed from the alignment)")
    used = frozenset(tuple(x) for pair in check_pairs + pairs for x in pair)
    return SIITTruth(
        designed,
        {a: flagged.for_ablation(a) for a in ABLATIONS},
        check,
        len(pairs),
        used,
        tuple((tuple(c), tuple(x)) for c, x in pairs),
    )


def verified_siit_truth(
    name: str, seed: int = 0, exclude: Iterable[Sequence[Any]] = (), *, min_iia: float = 0.95
) -> tuple[SIITTruth, Any]:
    """(:func:`siit_truth`, its single-edge check): the truth only when the check passes under
    every ablation; raises VerificationError otherwise (the check's message names the failing
    ablations, edges and effects). The check is a :class:`interplab.zoo.verify.TruthCheck`."""
    truth = siit_truth(name, seed, exclude, min_iia=min_iia)
    return truth, check_edges(name, seed, truth).raise_if_failed()


def check_edges(name: str, seed: int, truth: SIITTruth) -> Any:
    """Single-edge check of ``truth.per_ablation`` in the weights of ``name`` (seed ``seed``) on
    the truth's own held-out pairs (effects on the logit margin of the model's own answers at
    positions 1..length); stored beside the weights keyed by their SHA-256. Never raises on a
    failed check: see :meth:`TruthCheck.raise_if_failed`."""
    from interplab.tasks import Task
    from interplab.zoo import verify

    spec = _spec(name)
    model, _ = _load(spec, seed)
    if not truth.pairs:
        raise ConfigError(
            f"{name}: this SIITTruth records no pairs to check it on; build it with siit_truth()"
        )
    encode = _encoder(spec)
    task = Task(
        encode([c for c, _ in truth.pairs]),
        encode([x for _, x in truth.pairs]),
        metric="kl",
        name=f"{name} (held-out truth pairs)",
    )
    label = f"{name} (seed {seed})"
    directory = organism_dir(spec.name, seed)
    key = verify.check_key(dict(truth.per_ablation), task, verify.weights_sha256(directory))
    return verify.cached_check(
        directory,
        key,
        lambda: verify.check_truth(model, dict(truth.per_ablation), task, name=label),
    )


def _encoder(spec: SIITSpec) -> Any:
    index = {v: i + 1 for i, v in enumerate(spec.vocab)}
    return lambda xs: torch.tensor([[0] + [index[v] for v in x] for x in xs])


def _spec(name: str) -> SIITSpec:
    """A library SIIT spec, or a generated program's twin (``siit-generated-<seed>-<i>``)."""
    if name in SPECS:
        return SPECS[name]
    if siit_generated.resolve(name) is not None:
        return siit_generated.spec_for(name)
    raise ConfigError(
        f"no SIIT organism {name!r}; choose one of {sorted(SPECS)} or a generated "
        "program's twin, siit-generated-<seed>-<index>"
    )


def _load(spec: SIITSpec, seed: int) -> tuple[Any, tuple[Any, ...]]:
    directory = organism_dir(spec.name, seed)
    path = directory / GT_NAME
    stored = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    if stored.get("fingerprint") != fingerprint(spec):
        raise ConfigError(
            f"{spec.name} (seed {seed}) is not trained in {directory}; train it "
            f"first: interplab.zoo.siit.load_or_train({spec.name!r}, {seed}) "
            f"(a generated twin: interplab.zoo.siit_generated.load_twin)"
        )
    model, _ = load_model(directory, name=spec.name)
    return model, tuple(decode_json_value(v) for v in stored["output_values"])


def _held_out(spec: SIITSpec, exclude: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    banned = {tuple(x) for x in exclude}
    held = [x for x in spec.all_inputs() if tuple(x) not in banned]
    if len(held) < 2:
        raise ConfigError(
            f"{spec.name}: every input is in a scoring pair, so no held-out input is "
            "left to check the truth on; score on fewer pairs"
        )
    return held


def _site(node: Node) -> Site:
    if node.kind == "head":
        return Site(Component.ATTN_RESULT, node.layer, node.head)
    return Site(Component.MLP_OUT, node.layer)


@torch.no_grad()
def check_alignment(
    model: Any,
    spec: SIITSpec,
    values: Sequence[Any],
    pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]],
) -> dict[str, Any]:
    """Interchange each aligned variable's components (outputs patched from the source run) and
    compare the model's decoded output with the program's interchange output; sequence-level
    exact match over the pairs where the program's result is defined."""
    program = spec.program()
    encode = _encoder(spec)
    decode = lambda logits: [[values[i] for i in row] for row in logits[:, 1:].argmax(-1).tolist()]  # noqa: E731
    base = encode([b for b, _ in pairs])
    source = encode([s for _, s in pairs])
    clean = decode(model.run(base))
    task = sum(_same(o, rasp.evaluate(program, b)) for o, (b, _) in zip(clean, pairs)) / len(pairs)
    iia = {}
    for var in sorted(spec.alignment):
        sites = [_site(n) for n in spec.nodes(var)]
        _, cache = model.run_with_cache(source, sites)
        out = decode(model.run_with(base, [Patch(s, value=cache[s]) for s in sites]))
        hits, n = 0, 0
        for o, (b, s) in zip(out, pairs):
            try:
                want = evaluate_with_values(program, b, {var: rasp.evaluate_all(program, s)[var]})
            except (rasp.EvaluationError, TypeError, KeyError, ValueError, ZeroDivisionError):
                continue
            hits, n = hits + _same(o, want), n + 1
        iia[var] = hits / n if n else float("nan")
    return {"iia": iia, "task_accuracy": task, "n_pairs": len(pairs)}


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return [repr(x) for x in a] == [repr(y) for y in b]
