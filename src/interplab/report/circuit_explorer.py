"""The bench report's interactive circuit explorer: every circuit the circuits track recovered,
chosen from a menu and drawn by the offline viewer. Edges also in the ground truth for that
ablation score 2, the others 1, so the threshold slider at its top shows the true positives
alone. Reads the store's artifacts; runs nothing."""

from __future__ import annotations

from typing import Any

from interplab.bench.store import ResultsStore
from interplab.core.circuit import Circuit, Edge
from interplab.report.viewer import circuit_options, viewer_fragment


def _edges(found: Circuit, truth: Circuit | None) -> list[dict[str, Any]]:
    true = set(truth.edges) if truth is not None else set()
    return [
        {
            "sender": str(e.sender),
            "receiver": str(e.receiver),
            "channel": e.channel,
            "score": 2.0 if e in true else 1.0,
            "edge": str(e),
        }
        for e in sorted(found.edges, key=_key)
    ]


def _key(e: Edge) -> tuple:
    return (e.receiver.order, e.channel, e.sender.order)


def section(store: ResultsStore) -> str:
    """HTML of the explorer, or "" when the run recovered no circuits."""
    jobs = {j.key: j for j in store.jobs()}
    truths: dict[tuple[str, str], Circuit] = {}
    for key, arts in store.artifacts("true_circuit").items():
        job = jobs.get(key)
        if job is not None and arts.get("true_circuit"):
            truths[(job.organism, job.ablation or "-")] = Circuit.from_json(arts["true_circuit"])
    named = []
    for key, arts in sorted(store.artifacts("circuit").items(), key=lambda kv: str(kv[0])):
        job = jobs.get(key)
        if job is None or not arts.get("circuit"):
            continue
        found = Circuit.from_json(arts["circuit"])
        if not found.edges:
            continue
        where = (job.organism, job.ablation or "-")
        named.append(
            (f"{job.organism} · {job.ablation} · {job.method}", _edges(found, truths.get(where)))
        )
    if not named:
        return ""
    return (
        "<h2 id='explorer'>Circuit explorer</h2><p class='muted'>Pick a recovered circuit; "
        "edges also in the ground truth score 2 (drag the slider right to see only them), "
        "the rest 1.</p>" + viewer_fragment(circuit=circuit_options(named), css=False)
    )
