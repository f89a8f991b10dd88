"""The organism contract: one value for every model organism, whatever its family.

    Organism(name, family, seed, model, tasks, truth, info)

``truth`` is typed by what the organism knows about itself:

    CircuitTruth     which edges matter: the designed circuit and one circuit per ablation
    VariableTruth    where each program variable lives (an SIIT alignment), checked by interchange
    UnitTruth        which units carry a behaviour (a trojan's trigger, target and units)
    PlantedTruth     a planted rule or planted features (tabular, digits, a spurious cue)
    RetrainingTruth  what retraining without some training data changes (data attribution)

Every truth carries two records besides its content:

* ``inputs`` — a digest of every input row the truth was computed on, taken from the values
  actually used (the pairs handed to the RASP evaluator, the rows a trained model was run on
  while its roles were read), never regenerated afterwards. :meth:`Organism.check_independent`
  compares them with the digests of the rows the methods are scored on (``tasks["score"]``), so
  a truth that reads a scored row is refused however it came to read it.
* ``checks`` — the verification that was run *in the weights* before the truth was released,
  per claim (e.g. per ablation), with its outcome. A truth whose check failed is never returned:
  the loader raises :class:`~interplab.errors.VerificationError` naming what failed.

``tasks`` holds the organism's task data by role: ``"score"`` (what methods are run and scored
on) and, where the family has one, ``"heldout"`` (disjoint rows for faithfulness and other
measurements that must not reuse the rows a method chose its answer on).

Load organisms with :func:`interplab.zoo.loader.organism` (exported as ``interplab.organism``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.errors import VerificationError

__all__ = [
    "CircuitTruth",
    "Organism",
    "PlantedTruth",
    "RetrainingTruth",
    "Truth",
    "UnitTruth",
    "VariableTruth",
    "digest_of",
    "recording_inputs",
    "row_digests",
]


def _row_key(row: Any) -> str:
    if isinstance(row, torch.Tensor):
        row = row.tolist()
    return repr([repr(v) for v in row]) if isinstance(row, (list, tuple)) else repr(row)


def row_digests(rows: Iterable[Any]) -> frozenset[str]:
    """One short SHA-256 per row (a token tensor row, a list of RASP values, a feature vector):
    the identity of an input, comparable across families. Tensors are digested as the list of
    their values, so ``[1, 2]`` and ``torch.tensor([1, 2])`` are the same row."""
    out = set()
    for row in rows:
        out.add(hashlib.sha256(_row_key(row).encode()).hexdigest()[:16])
    return frozenset(out)


def tensor_rows(*tensors: torch.Tensor) -> frozenset[str]:
    """Digests of every row of 2-d (or higher: first axis = rows) tensors."""
    rows: list = []
    for t in tensors:
        rows.extend(t.reshape(t.shape[0], -1) if t.dim() > 1 else t[:, None])
    return row_digests(rows)


def digest_of(digests: Iterable[str]) -> str:
    """One SHA-256 over a set of row digests (order-free): what a job records."""
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:16]


class recording_inputs:
    """Context manager recording every input row a torch module is run on (a forward pre-hook),
    so a truth's ``inputs`` are the rows it really read::

        with recording_inputs(model.model) as seen:
            truth = read_roles(model)
        seen.digests   # frozenset of row digests
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.digests: frozenset[str] = frozenset()
        self._rows: list[torch.Tensor] = []
        self._handle: Any = None

    def __enter__(self) -> recording_inputs:
        def hook(_module: Any, args: tuple) -> None:
            if args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 1:
                self._rows.append(args[0].detach().clone())

        self._handle = self.module.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()
        self.digests = tensor_rows(*self._rows) if self._rows else frozenset()


@dataclass(frozen=True)
class CircuitTruth:
    """The true circuit: ``designed`` (by construction) and ``per_ablation`` {ablation: Circuit}
    (the designed edges that matter under that ablation), ``source`` in words, the ``inputs`` it
    used and the ``checks`` run in the weights."""

    per_ablation: Mapping[str, Circuit]
    designed: Circuit | None
    source: str
    inputs: frozenset[str] = frozenset()
    checks: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "circuit"


@dataclass(frozen=True)
class VariableTruth:
    """Where each variable of a program is computed: {variable: [(layer, head or None)]}, with
    the circuit it implies and the interchange check (IIA per variable) that verified it."""

    alignment: Mapping[str, Any]
    circuit: CircuitTruth | None
    source: str
    inputs: frozenset[str] = frozenset()
    checks: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "variable"


@dataclass(frozen=True)
class UnitTruth:
    """Units that carry a behaviour (a trojan): the trigger, the target class and the units."""

    units: tuple
    trigger: Any
    target: int | None
    source: str
    inputs: frozenset[str] = frozenset()
    checks: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "units"


@dataclass(frozen=True)
class PlantedTruth:
    """A planted rule or planted features (tabular scorecards, planted pixels, spurious cues)."""

    content: Mapping[str, Any]
    source: str
    inputs: frozenset[str] = frozenset()
    checks: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "planted"


@dataclass(frozen=True)
class RetrainingTruth:
    """What retraining without parts of the training data does (LDS subsets, leave-one-out,
    planted memorised examples)."""

    content: Mapping[str, Any]
    source: str
    inputs: frozenset[str] = frozenset()
    checks: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "retraining"


Truth = CircuitTruth | VariableTruth | UnitTruth | PlantedTruth | RetrainingTruth


@dataclass(frozen=True, eq=False)
class Organism:
    """A model organism: its model, its task data by role, its verified truth.

    Attributes:
        name: registry name, e.g. ``compiled-reverse``.
        family: the zoo module that builds it (``interplab.zoo.compiled``).
        seed: the seed the tasks (and, for seeded families, the model) were drawn with.
        model: what methods run on (a HookedModel / CompiledModel / torch module).
        tasks: task data by role: ``"score"`` and, where present, ``"heldout"``.
        truth: the typed, verified truth (None only for controls such as ``random-2l``).
        info: everything else (training facts, roles, the family's own object as ``"source"``).
    """

    name: str
    family: str
    seed: int
    model: Any
    tasks: Mapping[str, Any]
    truth: Truth
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scoring_inputs(self) -> frozenset[str]:
        """Digests of the rows methods are scored on: the clean and corrupted inputs of
        ``tasks["score"]`` (whatever the task type, read from the task itself)."""
        task = self.tasks.get("score")
        if task is None:
            return frozenset()
        if isinstance(task, torch.Tensor):  # rows scored directly (tabular test rows)
            return tensor_rows(task)
        rows = [
            getattr(task, a)
            for a in ("clean", "corrupted")
            if isinstance(getattr(task, a, None), torch.Tensor)
        ]
        return tensor_rows(*rows) if rows else frozenset()

    def check_independent(self) -> dict[str, Any]:
        """Raise VerificationError when the truth used a row the methods are scored on; else the
        provenance record a job stores (counts and digests of both sides, overlap 0)."""
        if self.truth is None:
            raise VerificationError(f"{self.name} is a control: it has no truth to score against")
        scoring, used = self.scoring_inputs, self.truth.inputs
        overlap = scoring & used
        if overlap:
            raise VerificationError(
                f"{self.name}: its truth was computed on {len(overlap)} of the {len(scoring)} rows "
                "methods are scored on; a truth must use held-out rows only (rebuild it on rows "
                "drawn apart from the scoring task)"
            )
        return {
            "scoring_rows": len(scoring),
            "scoring_digest": digest_of(scoring),
            "truth_rows": len(used),
            "truth_digest": digest_of(used),
            "overlap": 0,
        }
