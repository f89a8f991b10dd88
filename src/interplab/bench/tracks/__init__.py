"""Benchmark tracks. A track is a module with:

    ORGANISMS: tuple[str, ...]          organisms the track knows
    METHODS: tuple[str, ...]            methods the track knows
    ABLATIONS: tuple[str | None, ...]   ablation types its jobs take (None: not applicable)
    SUITES: dict[str, dict]             {"quick": {"organisms": [...], "methods": [...],
                                                   "ablations": [...]}, "full": {...}}
    run_job(job) -> JobOutput           computes one (organism, method, ablation, seed) job

Tracks are imported lazily by name so listing and spec checking stay cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from interplab.errors import unknown_name

#: track name -> module implementing it (tests may add entries).
TRACK_MODULES: dict[str, str] = {
    "circuits": "interplab.bench.tracks.circuits",
    "features": "interplab.bench.tracks.features",
    "causal": "interplab.bench.tracks.causal",
    "zoo": "interplab.bench.tracks.zoo",
    "failures": "interplab.bench.tracks.failures",
    "data_attribution": "interplab.bench.tracks.data_attribution",
    "rationales": "interplab.bench.tracks.rationales",
    "utility": "interplab.bench.tracks.utility",
}


@dataclass(frozen=True)
class Job:
    """One unit of benchmark work; ``key`` identifies it in the results store."""

    track: str
    organism: str
    method: str
    ablation: str | None
    seed: int = 0

    @property
    def key(self) -> str:
        return f"{self.track}/{self.organism}/{self.method}/{self.ablation or '-'}/seed{self.seed}"


@dataclass
class JobOutput:
    """What a job returns: result rows (see ``interplab.bench.results``) and JSON artifacts
    for the report (curves, circuits)."""

    rows: list[dict[str, Any]]
    artifacts: dict[str, Any] = field(default_factory=dict)


def track(name: str) -> ModuleType:
    if name not in TRACK_MODULES:
        raise unknown_name("track", name, list(TRACK_MODULES))
    return importlib.import_module(TRACK_MODULES[name])
