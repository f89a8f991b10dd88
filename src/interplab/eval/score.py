"""Score one method's result against one organism's verified truth: ``interplab.score``.

    org = ip.organism("compiled-reverse")
    edges = ip.methods.run("circuits", "eap", org.model, org.tasks["score"], ablation="mean")
    ip.score(org, edges)      # {"edge_auroc": ..., "edge_auroc_pessimistic": ..., "node_auroc": ...}

What is scored follows the kind of truth the organism carries:

- a circuit truth (compiled, trained, SIIT, generated): the edge scores are compared with the
  circuit that is true under the ablation they were computed with (``result.ablation``, or the
  ``ablation`` argument), by AUROC over edges and over heads and MLPs (:mod:`.circuits`);
- a variable truth with a circuit (SIIT): the same, against that circuit;
- a unit truth (a trojan): a {unit: score} ranking is compared with the units verified to carry
  it, by AUROC.

Other truths (planted rules, retraining) are scored by their bench tracks, which need more than
one result (many rows, many retrainings); this function says which track to use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interplab.errors import ConfigError
from interplab.eval.circuits import auroc, edge_auroc, node_auroc

#: the bench track that scores each kind of truth this function does not
_TRACK_OF = {"planted": "rationales or utility", "retraining": "data_attribution"}


def score(organism: Any, result: Any, *, ablation: str | None = None) -> dict[str, float]:
    """Metrics of ``result`` (a method's output) against ``organism.truth``; see the module."""
    truth = getattr(organism, "truth", None)
    if truth is None:
        raise ConfigError(
            f"{getattr(organism, 'name', organism)!r} carries no truth (a control): "
            "there is nothing to score against"
        )
    if truth.kind == "variable":
        if truth.circuit is None:
            raise ConfigError("this variable truth has no circuit; score it with the causal track")
        truth = truth.circuit
    if truth.kind == "circuit":
        return _circuit(truth, result, ablation)
    if truth.kind == "units":
        scores = getattr(result, "scores", result)
        if not isinstance(scores, Mapping):
            raise ConfigError("a unit truth is scored from a {unit: score} mapping")
        return {"unit_auroc": auroc(scores, truth.units)}
    raise ConfigError(
        f"a {truth.kind} truth is scored over many results by the "
        f"{_TRACK_OF.get(truth.kind, 'matching')} bench track (`interplab bench --track ...`)"
    )


def _circuit(truth: Any, result: Any, ablation: str | None) -> dict[str, float]:
    ablation = ablation or getattr(result, "ablation", None)
    if ablation is None:
        raise ConfigError("say which ablation the scores were computed with: ablation=...")
    if ablation not in truth.per_ablation:
        raise ConfigError(
            f"no verified circuit truth under ablation {ablation!r} (verified: "
            f"{', '.join(sorted(truth.per_ablation)) or 'none'}); score under one of those"
        )
    circuit = truth.per_ablation[ablation]
    return {
        "edge_auroc": edge_auroc(result, circuit),
        "edge_auroc_pessimistic": edge_auroc(result, circuit, pessimistic=True),
        "node_auroc": node_auroc(result, circuit),
    }
