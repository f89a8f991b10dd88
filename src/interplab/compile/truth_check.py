"""Check a compiled model's per-ablation circuit truth against single-edge ablation in its weights.

    check_truth(model, per_ablation, pairs) -> ["<edge> under <ablation>: ...", ...]   ([] = agrees)
    verify_truth(model, per_ablation, pairs, name=...) -> the check's record, or VerificationError
    unverified_ablations(program) -> {ablation: reason}   (library programs whose truth fails)

The truth (:func:`interplab.compile.derive_circuit`) comes from the RASP program; this module only
*checks* it: each designed edge alone is ablated in the compiled weights
(:func:`interplab.compile.edge_measure.measure_circuit`) on the given pairs, and the truth of an
ablation agrees when (a) every edge it lists changes the decoded output on at least one pair
under that ablation and (b) every designed edge that does so is listed. "Changes the decoded
output" is the tolerance: a categorical output decoded to another value (or to none: no logit
above 0.5) at some position, a numerical one moved by more than 1e-3. Edges outside the designed
circuit are not ablated: their receiver's weights read nothing their sender writes, so ablating
them changes nothing under any ablation.

Run the check on the pairs the truth was derived on, at the lengths the bench scores; a truth that
fails is refused (:class:`~interplab.errors.VerificationError`), never used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from interplab.core.circuit import ABLATIONS, Circuit
from interplab.errors import ConfigError, VerificationError

Pairs = Sequence[tuple[Sequence[Any], Sequence[Any]]]

#: library programs (as the circuits track compiles and scores them: full length, held-out pairs)
#: whose per-ablation truth under an ablation disagrees with their weights, and why. Measured, not
#: assumed: ``tests/compile/test_truth_check.py`` checks that each listed (program, ablation)
#: really fails and that every other one the track scores verifies.
UNVERIFIED: dict[str, dict[str, str]] = {}

__all__ = ["UNVERIFIED", "check_truth", "disagreements", "unverified_ablations", "verify_truth"]


def check_truth(
    model: Any,
    per_ablation: Mapping[str, Circuit],
    pairs: Pairs,
    ablations: Iterable[str] | None = None,
) -> list[str]:
    """Each disagreement between ``per_ablation`` (ablation -> true circuit) and single-edge
    ablation in ``model``'s weights on ``pairs``, one string per (edge, ablation), naming which
    way it fails; ``[]`` when they agree. ``ablations``: the ones to check (default: every key
    of ``per_ablation``)."""
    by_ablation = disagreements(model, per_ablation, pairs, ablations)
    return [p for problems in by_ablation.values() for p in problems]


def disagreements(
    model: Any,
    per_ablation: Mapping[str, Circuit],
    pairs: Pairs,
    ablations: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """:func:`check_truth` grouped by ablation: {ablation: its disagreements} for every ablation
    checked (an empty list where the truth agrees with the weights)."""
    from interplab.compile.edge_measure import measure_circuit

    wanted = tuple(per_ablation) if ablations is None else tuple(ablations)
    unknown = [a for a in wanted if a not in ABLATIONS or a not in per_ablation]
    if unknown:
        raise ConfigError(
            f"cannot check ablations {unknown}: the truth has {sorted(per_ablation)}, "
            f"and ablations are {ABLATIONS}"
        )
    rows = [(c, x) for c, x in pairs if len(c) == len(x) and len(c) > 0]
    if not rows:
        raise ConfigError(
            "check_truth needs at least one (clean, corrupted) pair of equal, non-zero length"
        )
    measured = measure_circuit(model, rows)
    out: dict[str, list[str]] = {}
    for ablation in wanted:
        truth = set(per_ablation[ablation].edges)
        effect = {e for e, flags in measured.edge_ablations.items() if ablation in flags}
        out[ablation] = [
            f"{e} under {ablation}: in the truth, but ablating it alone changes no output on the "
            f"{len(rows)} pairs"
            for e in sorted(truth - effect)
        ] + [
            f"{e} under {ablation}: ablating it alone changes the output on some of the "
            f"{len(rows)} pairs, but the truth leaves it out"
            for e in sorted(effect - truth)
        ]
    return out


def verify_truth(
    model: Any,
    per_ablation: Mapping[str, Circuit],
    pairs: Pairs,
    ablations: Iterable[str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """:func:`check_truth`, raising :class:`~interplab.errors.VerificationError` (naming every
    disagreement) when the truth fails; otherwise the record of the check: how it was checked,
    on how many pairs of which lengths, and per ablation the number of true edges."""
    wanted = tuple(per_ablation) if ablations is None else tuple(ablations)
    problems = check_truth(model, per_ablation, pairs, wanted)
    label = name or getattr(model, "name", None) or "compiled model"
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
        )
        raise VerificationError(
            f"{label}: the per-ablation circuit truth disagrees with single-edge ablation in the "
            f"weights on {len(pairs)} pairs ({len(problems)} disagreement(s)): {shown}. The truth "
            "is refused; see interplab.compile.truth_check"
        )
    return {
        "check": "single-edge ablation in the weights (interplab.compile.truth_check)",
        "pairs": len(pairs),
        "lengths": sorted({len(c) for c, _ in pairs}),
        "agrees": {a: True for a in wanted},
        "edges": {a: len(per_ablation[a].edges) for a in wanted},
    }


def unverified_ablations(program: str) -> dict[str, str]:
    """{ablation: why its truth is refused} for the library program ``program`` (a
    :data:`~interplab.compile.programs.LIBRARY` name, ``compiled-`` prefix allowed) as the
    circuits track scores it; ``{}`` when every ablation verifies. A bench can skip those jobs
    and say why."""
    return dict(UNVERIFIED.get(program.removeprefix("compiled-"), {}))
