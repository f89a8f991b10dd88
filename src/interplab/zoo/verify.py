"""Check a native transformer's per-ablation circuit truth edge by edge in its weights.

    check_truth(model, truth, task) -> TruthCheck          (a structured result, never raises)
    verify_truth(name, model, truth, task) -> TruthCheck   (raises VerificationError on failure)
    cached_check(directory, key, compute) -> TruthCheck    (outcome stored beside the weights)

For each ablation the truth claims (``truth``: {"zero" | "mean" | "resample": Circuit}), every
edge of the model's full graph is ablated **alone** on held-out pairs (``task``: rows the methods
are not scored on) and its *effect* is measured on the **logit margin** of the clean answer:

    margin(run) = mean over rows and scored positions of  logit[a] - mean_v logit[v]
                  (a = the clean run's own answer at that position)
    effect(e)   = | margin(clean run) - margin(run with e alone ablated) |
    whole       = | margin(clean run) - margin(run with every edge ablated at once) |

and the rule is

    tolerance = REL_TOL × whole                        (REL_TOL = 0.05; at least ABS_TOL)
    every truth edge has effect  > tolerance           (else: an *inert* truth edge)
    every edge with effect > tolerance is in the truth (else: a *missing* edge)

Why 5 % of the whole: an edge the model's answer flows through carries, removed alone, a share
of the whole effect (all of it on a single path, about 1/k of it on one of k parallel paths),
while float noise is ~1e-6; one twentieth of the whole separates the two with a wide margin and
leaves room for up to ~20 parallel paths. An edge whose removal costs less than a twentieth of
removing everything is not a part a circuit explanation is scored on. REL_TOL was fixed before
any organism was measured and is not tuned per organism. ``ABS_TOL`` (1e-3 logits) only guards
an ablation under which nothing matters at all.

Why the logit margin and not KL: the margin is linear in every direct write to the logits, so
each of several parallel heads keeps its share of the whole. KL (and probabilities) saturate: on
a confident model, removing one of three parallel previous-token heads costs 0.05–0.7 nats while
removing everything costs 3–20 nats, so every head of a redundant circuit would look inert. The
check was first run with KL and this 5 % rule; it called every edge of the trained organisms'
circuits inert for that reason (the numbers are in the issue-21 report), and the metric was
changed to the margin — the rule and REL_TOL were not.

Ablated values are the edge-patching engine's (:class:`interplab.methods.circuits.EdgePatcher`):
zero -> 0; mean -> the sender's per-position mean over the check's clean rows; resample -> the
sender's output on the paired corrupted row. This module *checks* a truth; the truth itself is
derived elsewhere (from the design and roles read from attention, or in the RASP evaluator) and
never from these effects, which are what edge-patching methods compute.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interplab.core.circuit import ABLATIONS, Circuit
from interplab.errors import VerificationError
from interplab.models import weights_cache
from interplab.models.io import atomic_write_text

Tensor = torch.Tensor
#: an edge matters when its effect alone exceeds this share of the whole model's (fixed a priori)
REL_TOL = 0.05
#: floor of the tolerance in logits (an ablation under which even the whole model changes nothing)
ABS_TOL = 1e-3
METRIC = "logit_margin"
#: bump when the rule, the metric or the stored format changes (stored checks are then redone)
CHECK_VERSION = 1
SIDECAR = "truth_check.json"
_SHOWN = 6  # edges named per list in an error message


@dataclass(frozen=True)
class AblationCheck:
    """The single-edge check under one ablation.

    Attributes:
        ablation: "zero", "mean" or "resample".
        whole: effect (change of the clean answer's logit margin) of ablating every edge at once.
        tolerance: the bar an edge's effect must exceed to matter (REL_TOL × whole, ≥ ABS_TOL).
        truth: the edges the truth claims under this ablation (names, sorted).
        inert: truth edges whose effect alone is ≤ tolerance, as (edge, effect), largest first.
        missing: edges outside the truth whose effect alone is > tolerance, largest first.
        effects: every edge of the full graph -> its effect alone.
    """

    ablation: str
    whole: float
    tolerance: float
    truth: tuple[str, ...]
    inert: tuple[tuple[str, float], ...]
    missing: tuple[tuple[str, float], ...]
    effects: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.inert and not self.missing

    @property
    def n_truth(self) -> int:
        return len(self.truth)

    def margins(self) -> dict[str, float | None]:
        """Smallest truth-edge effect and largest other effect, each divided by the tolerance
        (> 1 and ≤ 1 when the check passes): how far from the bar the verdict is."""
        claimed = set(self.truth)
        inside = [self.effects.get(e, 0.0) for e in claimed]
        outside = [v for e, v in self.effects.items() if e not in claimed]
        return {
            "min_truth_over_tol": min(inside) / self.tolerance if inside else None,
            "max_other_over_tol": max(outside) / self.tolerance if outside else None,
        }

    def describe(self) -> str:
        parts = []
        if self.inert:
            parts.append(
                f"{len(self.inert)} of {self.n_truth} truth edges are inert ("
                + _listing(self.inert)
                + ")"
            )
        if self.missing:
            parts.append(
                f"{len(self.missing)} edges outside the truth matter ("
                + _listing(self.missing)
                + ")"
            )
        body = "; ".join(parts) if parts else f"all {self.n_truth} truth edges agree"
        return (
            f"{self.ablation}: {body} [tolerance {self.tolerance:.4f} = {REL_TOL:g} × "
            f"whole-model effect {self.whole:.4f}]"
        )


@dataclass(frozen=True)
class TruthCheck:
    """The check of one organism's per-ablation truth.

    Attributes:
        name: the organism.
        metric: the effect measure ("logit_margin": change of the clean answer's logit margin).
        n_pairs: held-out (clean, corrupted) rows the effects were measured on.
        rel_tol: REL_TOL at the time of the check.
        seconds: wall time of the check (0 for a check read back from its sidecar: see
            ``info["measured_seconds"]``).
        ablations: {ablation: AblationCheck} for every ablation the truth claims.
        info: where the rows came from, whether the result was read from a sidecar, ...
    """

    name: str
    metric: str
    n_pairs: int
    rel_tol: float
    seconds: float
    ablations: Mapping[str, AblationCheck]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.ablations.values())

    def failures(self) -> list[str]:
        return [c.describe() for c in self.ablations.values() if not c.ok]

    def raise_if_failed(self) -> TruthCheck:
        if not self.ok:
            raise VerificationError(
                f"{self.name}: the per-ablation circuit truth disagrees with single-edge ablation "
                f"in the weights on {self.n_pairs} held-out pairs (effect = change of the clean "
                "answer's logit margin): "
                + " | ".join(self.failures())
                + ". The truth is not used; correct the "
                "design reasoning it is derived from (or retrain the organism), never the tolerance."
            )
        return self

    def summary(self) -> dict[str, Any]:
        """A compact record (no per-edge effects): what a job or a report shows."""
        return {
            "ok": self.ok,
            "metric": self.metric,
            "n_pairs": self.n_pairs,
            "rel_tol": self.rel_tol,
            "seconds": round(self.seconds, 3),
            **{
                a: {
                    "ok": c.ok,
                    "n_truth": c.n_truth,
                    "tolerance": c.tolerance,
                    "whole": c.whole,
                    "inert": [list(x) for x in c.inert],
                    "missing": [list(x) for x in c.missing],
                    **c.margins(),
                }
                for a, c in self.ablations.items()
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "n_pairs": self.n_pairs,
            "rel_tol": self.rel_tol,
            "seconds": self.seconds,
            "info": dict(self.info),
            "ablations": {
                a: {
                    "whole": c.whole,
                    "tolerance": c.tolerance,
                    "truth": list(c.truth),
                    "inert": [list(x) for x in c.inert],
                    "missing": [list(x) for x in c.missing],
                    "effects": dict(c.effects),
                }
                for a, c in self.ablations.items()
            },
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> TruthCheck:
        abl = {
            a: AblationCheck(
                a,
                c["whole"],
                c["tolerance"],
                tuple(c["truth"]),
                tuple((e, float(v)) for e, v in c["inert"]),
                tuple((e, float(v)) for e, v in c["missing"]),
                dict(c["effects"]),
            )
            for a, c in data["ablations"].items()
        }
        return TruthCheck(
            data["name"],
            data["metric"],
            data["n_pairs"],
            data["rel_tol"],
            data["seconds"],
            abl,
            dict(data.get("info", {})),
        )


def _listing(rows: tuple[tuple[str, float], ...]) -> str:
    shown = ", ".join(f"{e} {v:.4f}" for e, v in rows[:_SHOWN])
    return shown + (f", … {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else "")


# ----------------------------------------------------------------------------- measuring
def logit_margin(out: Tensor, ctx: Any) -> Tensor:
    """Mean over rows and scored positions of logit[a] - mean logit, a = the clean run's answer
    (``out`` [b, n, v]; ``ctx.clean_out`` the clean run's outputs there)."""
    answer = ctx.clean_out.argmax(-1, keepdim=True)
    return (out.gather(-1, answer)[..., 0] - out.mean(-1)).mean()


@torch.no_grad()
def edge_effects(model: Any, task: Any, ablation: str) -> tuple[dict[str, float], float]:
    """({edge: effect of ablating it alone}, effect of ablating every edge) on ``task``'s rows,
    over every edge of the model's full graph (effect: |change of the logit margin|). Runs on
    one thread: these are many tiny forwards, which thread contention slows ~15×."""
    from interplab.methods.circuits import EdgePatcher

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        eng = EdgePatcher(model, task, ablation, metric=logit_margin)
        n = eng.n_edges
        clean = float(eng.score(None))
        effects = {}
        for i, edge in enumerate(eng.index.edges):
            strength = torch.zeros(n)
            strength[i] = 1.0
            effects[str(edge)] = abs(clean - float(eng.score(strength)))
        return effects, abs(clean - float(eng.score(torch.ones(n))))
    finally:
        torch.set_num_threads(threads)


def check_truth(
    model: Any,
    truth: Mapping[str, Circuit],
    task: Any,
    *,
    name: str = "",
    info: Mapping[str, Any] | None = None,
) -> TruthCheck:
    """Measure every edge's single-ablation effect on ``task`` (held-out rows) under each
    ablation in ``truth`` and compare with the truth by the rule in the module docstring."""
    start = time.perf_counter()
    out = {}
    for ablation in (a for a in ABLATIONS if a in truth):
        effects, whole = edge_effects(model, task, ablation)
        out[ablation] = compare(ablation, effects, whole, truth[ablation])
    return TruthCheck(
        name or getattr(task, "name", ""),
        METRIC,
        int(task.clean.shape[0]),
        REL_TOL,
        time.perf_counter() - start,
        out,
        dict(info or {}),
    )


def compare(
    ablation: str, effects: Mapping[str, float], whole: float, truth: Circuit
) -> AblationCheck:
    """Apply the rule to measured ``effects`` ({edge: effect}) and the ``truth`` under one
    ablation. A truth edge that is not in the measured graph counts as inert (effect 0)."""
    tol = max(REL_TOL * whole, ABS_TOL)
    claimed = {str(e) for e in truth.edges}
    inert = [(e, effects.get(e, 0.0)) for e in claimed if effects.get(e, 0.0) <= tol]
    missing = [(e, v) for e, v in effects.items() if v > tol and e not in claimed]
    order = lambda rows: tuple(sorted(rows, key=lambda r: (-r[1], r[0])))  # noqa: E731
    return AblationCheck(
        ablation, whole, tol, tuple(sorted(claimed)), order(inert), order(missing), dict(effects)
    )


def verify_truth(
    name: str,
    model: Any,
    truth: Mapping[str, Circuit],
    task: Any,
    *,
    info: Mapping[str, Any] | None = None,
) -> TruthCheck:
    """:func:`check_truth`, raising :class:`VerificationError` naming every inert truth edge and
    every missing edge (with effects, tolerance and ablation) when the truth fails."""
    return check_truth(model, truth, task, name=name, info=info).raise_if_failed()


# ------------------------------------------------------------------------------- caching
def check_key(truth: Mapping[str, Circuit], task: Any, weights_sha256: str) -> str:
    """What a stored check is valid for: the weights' SHA-256, the truth's edges per ablation,
    the rows checked on, the rule (REL_TOL, ABS_TOL, metric) and CHECK_VERSION."""
    rows = hashlib.sha256()
    for t in (task.clean, task.corrupted):
        rows.update(t.contiguous().numpy().tobytes())
    data = {
        "weights_sha256": weights_sha256,
        "rows": rows.hexdigest(),
        "positions": list(task.scored_positions),
        "rule": [REL_TOL, ABS_TOL, METRIC],
        "version": CHECK_VERSION,
        "truth": {a: sorted(str(e) for e in c.edges) for a, c in sorted(truth.items())},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def weights_sha256(directory: Path) -> str:
    """SHA-256 of ``directory``'s saved weights (``model.safetensors``)."""
    return hashlib.sha256((Path(directory) / "model.safetensors").read_bytes()).hexdigest()


def cached_check(directory: Path | None, key: str, compute: Callable[[], TruthCheck]) -> TruthCheck:
    """The check stored in ``directory/truth_check.json`` under ``key``, else ``compute()``-d and
    stored there (passing or failing: the outcome is a fact about these weights and this truth).
    ``directory`` None: always computed, nothing stored. A stored check read back has
    ``info["cached"] = True``. Runs under the entry's ``check`` lock
    (:func:`interplab.models.weights_cache.entry_lock`), so two processes measure it once."""
    if directory is None:
        return compute()
    with weights_cache.entry_lock(Path(directory), "check"):
        return _cached_check_entry(Path(directory), key, compute)


def _cached_check_entry(directory: Path, key: str, compute: Callable[[], TruthCheck]) -> TruthCheck:
    path = directory / SIDECAR
    if path.is_file():
        try:
            stored = json.loads(path.read_text("utf-8"))
            if stored.get("key") == key:
                check = TruthCheck.from_json(stored["check"])
                return TruthCheck(
                    check.name,
                    check.metric,
                    check.n_pairs,
                    check.rel_tol,
                    0.0,
                    check.ablations,
                    {**check.info, "cached": True, "measured_seconds": check.seconds},
                )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            pass  # unreadable or stale: measure again and overwrite
    check = compute()
    atomic_write_text(
        path, json.dumps({"key": key, "check": check.to_json()}, indent=1, sort_keys=True)
    )
    return check
