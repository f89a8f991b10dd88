"""SIIT-trained twins of generated programs: ``siit-generated-<seed>-<i>`` is a small native
transformer trained from random init, with strict interchange-intervention training
(:func:`interplab.zoo.siit.train_siit`), to implement the program of ``generated-<seed>-<i>``
(:mod:`interplab.zoo.generated`) on the same vocabulary at its full length.

The alignment is read off the compiled sibling: each RASP variable is aligned to the heads and
MLPs that compute it in the compiled model (``GroundTruth.variables[v].sites``), and the twin has
the sibling's number of layers (and at least two heads per layer, so that some head lies outside
the circuit for the strict loss). The twin's designed circuit
(:func:`interplab.compile.dataflow_truth.alignment_reads`) is then the compiled sibling's
designed circuit on the same nodes, less the edges that carry only the compiler's constant
signals (``one``, ``bos``), which a trained model has no designed reason to use.

Which programs get a twin is a rule on the program, stated in :func:`ineligible` and applied
before any training (never chosen by which ones verify): depth ≤ :data:`MAX_DEPTH` (a
numerical output is trained as one class per value it takes), no head or MLP computing two variables (an interchange of one would also
swap the other), compiled in ≤ :data:`MAX_LAYERS` layers, and ≥ :data:`MIN_INPUTS` inputs at full
length (so that there are held-out pairs for verification and for the truth).
:func:`siit_generated_names` lists the first ``k`` eligible programs by index. A twin that does
not verify (IIA or task accuracy < 0.95 on held-out pairs) raises
:class:`~interplab.zoo.siit.VerificationError` with the numbers; :func:`interplab.zoo.twin_zoo.train_zoo` records it
as a failure with that reason.

    from interplab.zoo.siit_generated import load_twin, siit_generated_names
    siit_generated_names(0, 5)            # ['siit-generated-0-5', ...]
    org = load_twin("siit-generated-0-5")  # a SIITOrganism, trained once and cached
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, cast

from interplab.compile.generate import DRAW_VERSION
from interplab.core.circuit import Node
from interplab.core.sites import Component
from interplab.errors import ConfigError
from interplab.zoo.generated import parse_seed_index
from interplab.zoo.registry import ZooEntry
from interplab.zoo.siit import SIITOrganism, SIITSpec, VerificationError, load_spec

_NAME = re.compile(r"^siit-generated-(\d+)-(\d+)$")
#: the eligibility rule (see the module docstring)
MAX_DEPTH = 2
MAX_LAYERS = 2
MIN_INPUTS = 200
#: how many generated programs :func:`siit_generated_names` scans for eligible ones
SCAN_LIMIT = 2000
#: the training recipe of every twin: steps, batch (base inputs per step; each step also runs
#: them patched twice), learning rate, and the share of inputs held out of training
STEPS = 1000
BATCH = 64
LR = 3e-3
HELDOUT = 0.2
MIN_IIA = 0.95
#: a twin that failed verification is recorded here (beside where its weights would be), so that
#: it is reported again with its reason rather than retrained by every job
FAILED_NAME = "siit_failed.json"


def parse_name(name: str) -> tuple[int, int]:
    """``siit-generated-<seed>-<i>`` -> (seed, i); UnknownNameError otherwise."""
    return parse_seed_index(name, "siit-generated", "SIIT twin", "siit-generated-0-5")


def sibling(name: str) -> str:
    """The compiled sibling's name: ``siit-generated-0-5`` -> ``generated-0-5``."""
    seed, i = parse_name(name)
    return f"generated-{seed}-{i}"


def compiled_alignment(model: Any) -> dict[str, tuple[Node, ...]]:
    """Variable label -> the heads/MLPs computing it in a compiled model (embeddings left out)."""
    out = {}
    for label, var in model.ground_truth.variables.items():
        nodes = []
        for site in var.sites:
            if site.component == Component.ATTN_RESULT:
                nodes.append(Node.attn_head(site.layer, site.head))
            elif site.component == Component.MLP_OUT:
                nodes.append(Node.mlp(site.layer))
        if nodes:
            out[label] = tuple(sorted(set(nodes), key=lambda n: n.order))
    return out


def ineligible(org: Any) -> str | None:
    """Why the generated organism ``org`` gets no twin under the rule, or None if it does."""
    c, model = org.spec.candidate, org.model
    align = compiled_alignment(model)
    owners: dict[Node, list[str]] = {}
    for label, nodes in align.items():
        for n in nodes:
            owners.setdefault(n, []).append(label)
    shared = sorted(f"{n} computes {sorted(v)}" for n, v in owners.items() if len(v) > 1)
    problems = []
    if c.depth > MAX_DEPTH:
        problems.append(f"depth {c.depth} > {MAX_DEPTH}")
    if shared:
        problems.append("shared components: " + "; ".join(shared))
    if model.cfg.n_layers > MAX_LAYERS:
        problems.append(f"{model.cfg.n_layers} layers > {MAX_LAYERS}")
    if len(c.vocab) ** c.max_len < MIN_INPUTS:
        problems.append(f"{len(c.vocab) ** c.max_len} inputs < {MIN_INPUTS}")
    return "; ".join(problems) or None


@functools.lru_cache(maxsize=16)
def siit_generated_names(seed: int = 0, k: int = 5) -> list[str]:
    """The twins of the first ``k`` eligible programs of ``seed`` (by index, among the first
    :data:`SCAN_LIMIT`); fewer when fewer are eligible."""
    from interplab.zoo.generated import accepted_candidates, load_generated

    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    names: list[str] = []
    for i in range(SCAN_LIMIT):
        if len(names) == k:
            break
        if i % 40 == 0:  # draw the accepted-candidate list in chunks, not once per index
            accepted_candidates(seed, min(i + 40, SCAN_LIMIT))
        if ineligible(load_generated(f"generated-{seed}-{i}")) is None:
            names.append(f"siit-generated-{seed}-{i}")
    return names


@functools.lru_cache(maxsize=16)
def spec_for(name: str) -> SIITSpec:
    """The SIIT spec of a twin (ConfigError when its program breaks the eligibility rule)."""
    from interplab.zoo.generated import load_generated

    org = load_generated(sibling(name))
    why = ineligible(org)
    if why is not None:
        raise ConfigError(
            f"{name}: {sibling(name)} gets no SIIT twin ({why}); the eligible ones "
            "are listed by siit_generated_names(seed, k)"
        )
    c, cfg = org.spec.candidate, org.model.cfg
    align = compiled_alignment(org.model)
    program = org.spec.program()
    return SIITSpec(
        name,
        lambda: program,
        tuple(c.vocab),
        c.max_len,
        {
            v: tuple(
                # head and mlp nodes always have a layer
                ("head", cast(int, n.layer), n.head)
                if n.kind == "head"
                else ("mlp", cast(int, n.layer), None)
                for n in nodes
            )
            for v, nodes in sorted(align.items())
        },
        n_layers=cfg.n_layers,
        n_heads=max(2, cfg.n_heads),
        steps=STEPS,
        batch=BATCH,
        lr=LR,
        heldout=HELDOUT,
        description=f"twin of {sibling(name)} ({', '.join(c.constructs)}; depth {c.depth})",
        origin=f"generate v{DRAW_VERSION} seed {c.seed} candidate {c.index} "
        f"behaviour {org.spec.behaviour}",
    )


def load_twin(
    name: str, seed: int = 0, *, retrain: bool = False, log: Callable[[str], None] | None = None
) -> SIITOrganism:
    """The verified twin ``name``, trained on first use and cached under
    ``cache_dir()/siit/<name>-s<seed>/`` (safetensors + ground-truth JSON). Raises
    :class:`VerificationError` below IIA or task accuracy :data:`MIN_IIA` on held-out pairs;
    the failure is recorded (:data:`FAILED_NAME`) and raised again without retraining until
    ``retrain=True`` or the spec changes."""
    import json

    from interplab.models.io import atomic_write_text
    from interplab.zoo.siit import fingerprint, organism_dir
    from interplab.zoo.twin_shipped import load_shipped

    spec = spec_for(name)
    if not retrain:
        shipped = load_shipped(name, seed, spec, MIN_IIA)
        if shipped is not None:
            return cast(SIITOrganism, shipped)
    failed = organism_dir(name, seed) / FAILED_NAME
    if failed.is_file() and not retrain:
        stored = json.loads(failed.read_text("utf-8"))
        if stored.get("fingerprint") == fingerprint(spec):
            raise VerificationError(stored["reason"] + f" (recorded in {failed})")
    try:
        return load_spec(
            spec, seed, min_iia=MIN_IIA, retrain=retrain, log=log, min_task_accuracy=MIN_IIA
        )
    except VerificationError as exc:
        failed.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            failed, json.dumps({"fingerprint": fingerprint(spec), "reason": str(exc)})
        )
        raise


def _entry(name: str) -> ZooEntry:
    from interplab.zoo.twin_shipped import shipped_rows

    row = shipped_rows().get(name)
    if row is not None and "listing" in row:
        d = row["listing"]
        return ZooEntry(
            name,
            d["kind"],
            d["description"],
            lambda: load_twin(name),
            frozenset(d["tags"]),
            __name__,
        )
    return ZooEntry(
        name,
        "trained",
        f"SIIT-trained twin of {sibling(name)}",
        lambda: load_twin(name),
        frozenset({"siit", "trained", "circuits", "causal", "generated"}),
        family=__name__,
    )


def entries() -> list[ZooEntry]:
    """The shipped twins (every attempt in the shipped manifest, verified or not: a failed one
    says so in its description and carries the tag "unverified"); any other
    ``siit-generated-<seed>-<i>`` resolves by name (:func:`resolve`)."""
    from interplab.zoo.twin_shipped import shipped_rows

    return [_entry(name) for name in shipped_rows()]


def resolve(name: str) -> ZooEntry | None:
    """The registry entry for ``siit-generated-<seed>-<i>`` (nothing is built until used)."""
    return _entry(name) if _NAME.match(name) else None


__all__ = [
    "MAX_DEPTH",
    "MAX_LAYERS",
    "MIN_INPUTS",
    "compiled_alignment",
    "entries",
    "ineligible",
    "load_twin",
    "parse_name",
    "resolve",
    "sibling",
    "siit_generated_names",
    "spec_for",
]
