"""Generated organisms: ``generated-<seed>-<i>``, the ``i``-th program the generator accepts for
``seed`` (:mod:`interplab.compile.generate`), compiled and verified against the RASP evaluator,
and kept only when its per-ablation circuit truth, on the pairs the zoo track derives it on
(:func:`scoring_and_truth_pairs`), agrees with single-edge ablation in its weights under zero,
mean and resample ablation (a program whose truth fails is dropped and counted as ``truth`` in
the generation index's ``rejected``).

Which candidates were accepted is computed once per seed and cached in
``cache_dir()/generated/v<GENERATOR_VERSION>-seed<seed>.json`` (written atomically), so any
process rebuilds organism ``i`` by drawing and compiling candidate ``j`` alone. Rebuilding
re-runs the agreement check; a program that no longer passes raises
:class:`~interplab.errors.VerificationError` rather than being used.

    from interplab.zoo.generated import load_generated, write_generated
    org = load_generated("generated-0-17")      # .spec (a GeneratedProgram), .model (compiled)
    write_generated("zoo/", count=200, seed=0)   # safetensors + ground truth, and index.json
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interplab._config import cache_dir
from interplab.compile.generate import (
    GENERATOR_VERSION,
    GeneratedProgram,
    Rejections,
    draw,
    generate,
    scoring_and_truth_pairs,
    split_inputs,
    verify,
)
from interplab.errors import ConfigError, UnknownNameError, VerificationError
from interplab.models import weights_cache
from interplab.models.io import atomic_write_text
from interplab.zoo.registry import ZooEntry, register

_NAME = re.compile(r"^generated-(\d+)-(\d+)$")


@dataclass(frozen=True)
class GeneratedOrganism:
    name: str
    spec: GeneratedProgram
    model: Any  # CompiledModel


def parse_seed_index(name: str, prefix: str, what: str, example: str) -> tuple[int, int]:
    """``<prefix>-<seed>-<i>`` -> (seed, i); UnknownNameError naming ``what`` otherwise."""
    m = re.match(rf"^{re.escape(prefix)}-(\d+)-(\d+)$", name)
    if not m:
        raise UnknownNameError(
            f"unknown {what} {name!r}: names read {prefix}-<seed>-<index>, e.g. {example}"
        )
    return int(m.group(1)), int(m.group(2))


def parse_name(name: str) -> tuple[int, int]:
    """``generated-<seed>-<i>`` -> (seed, i); UnknownNameError otherwise."""
    return parse_seed_index(name, "generated", "generated organism", "generated-0-17")


def _cache_path(seed: int) -> Path:
    return cache_dir() / "generated" / f"v{GENERATOR_VERSION}-seed{seed}.json"


def accepted_candidates(
    seed: int, count: int, progress: Callable[[int], None] | None = None
) -> list[int]:
    """The candidate numbers of the first ``count`` accepted programs of ``seed`` (cached; a
    search runs under the entry's lock, so two processes asking at once search once)."""
    with weights_cache.entry_lock(_cache_path(seed)):
        return _accepted_entry(seed, count, progress)


def _accepted_entry(seed: int, count: int, progress: Callable[[int], None] | None) -> list[int]:
    path = _cache_path(seed)
    known: list[int] = []
    if path.is_file():
        try:
            known = list(json.loads(path.read_text())["candidates"])
        except (ValueError, KeyError, TypeError):
            known = []  # a damaged cache is recomputed, never trusted
    if len(known) >= count:
        return known[:count]
    # the list is the same prefix whatever its length: extend it at least twofold, so asking for
    # organisms 0, 1, 2, ... one by one costs linear, not quadratic, time
    target = max(count, 2 * len(known))
    rejections = Rejections()
    found = []
    for spec, _ in generate(target, seed, rejections=rejections):
        found.append(spec.candidate.index)
        if progress is not None and len(found) <= count:
            progress(len(found))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        json.dumps(
            {
                "version": GENERATOR_VERSION,
                "seed": seed,
                "candidates": found,
                "rejected": rejections.to_json(),
            }
        ),
    )
    return found[:count]


@functools.lru_cache(maxsize=4)
def load_generated(name: str) -> GeneratedOrganism:
    """Rebuild ``generated-<seed>-<i>``: draw its candidate, compile and check it again."""
    seed, i = parse_name(name)
    if i > 100_000:
        raise ConfigError(f"{name}: index {i} is too large (at most 100000 per seed)")
    candidates = accepted_candidates(seed, i + 1)
    outcome = verify(draw(seed, candidates[i]), name)
    if isinstance(outcome, str):
        raise VerificationError(
            f"{name} (candidate {candidates[i]}) failed its check when "
            f"rebuilt: {outcome}; delete {_cache_path(seed)} and rerun"
        )
    spec, model = outcome
    return GeneratedOrganism(name, spec, model)


def write_generated(
    out: str | Path, count: int, seed: int = 0, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Generate ``count`` organisms into ``out/<name>/`` (``model.safetensors`` + ``model.json``
    holding the ground truth, via :func:`interplab.compile.save_compiled`) and ``out/index.json``
    listing each with its shape, agreement and inputs checked. Returns the index."""
    from interplab.compile import save_compiled

    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is an existing file; pass a directory with --out")
    start = time.perf_counter()
    rejections = Rejections()
    rows = []
    for spec, model in generate(count, seed, rejections=rejections):
        save_compiled(out / spec.name, model)
        rows.append(spec.describe())
        if progress is not None:
            progress(len(rows))
    index = {
        "version": GENERATOR_VERSION,
        "seed": seed,
        "count": len(rows),
        "seconds": round(time.perf_counter() - start, 2),
        "rejected": rejections.to_json(),
        "organisms": rows,
    }
    atomic_write_text(out / "index.json", json.dumps(index, indent=1))
    cache = _cache_path(seed)
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            cache,
            json.dumps(
                {
                    "version": GENERATOR_VERSION,
                    "seed": seed,
                    "candidates": [r["candidate"] for r in rows],
                    "rejected": rejections.to_json(),
                }
            ),
        )
    return index


def _entry(name: str) -> ZooEntry:
    return ZooEntry(
        name,
        "compiled",
        "generated RASP program (verified against the evaluator)",
        lambda: load_generated(name).model,
        frozenset({"generated", "circuits"}),
        family=__name__,
    )


def entries() -> list[ZooEntry]:
    """None listed: the family is unbounded; :func:`resolve` builds entries by name."""
    return []


def resolve(name: str) -> ZooEntry | None:
    """The registry entry for ``generated-<seed>-<i>`` (nothing is drawn until it is built);
    None for any other name."""
    return _entry(name) if _NAME.match(name) else None


def register_generated(seed: int, count: int) -> list[str]:
    """List ``generated-<seed>-0 .. count-1`` in the zoo registry (each built on first use)."""
    names = [f"generated-{seed}-{i}" for i in range(count)]
    for name in names:
        register(_entry(name))
    return names


__all__ = [
    "GeneratedOrganism",
    "VerificationError",
    "accepted_candidates",
    "entries",
    "load_generated",
    "parse_name",
    "register_generated",
    "resolve",
    "scoring_and_truth_pairs",
    "split_inputs",
    "write_generated",
]
