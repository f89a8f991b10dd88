"""The zoo of SIIT-trained twins at scale: training many twins on a process pool or a Dask
cluster, the manifest that records every attempt, and the shipped weights.

**Which twins.** :func:`attempted_names` is the selection rule: the first ``count`` generated
programs of ``seed`` that the twin rule admits (:func:`interplab.zoo.siit_generated.ineligible`,
decided on the program and its compiled sibling before any training), in index order. Whether a
twin verifies never changes which twins are attempted.

**One twin** (:func:`train_one`, what a worker runs): SIIT training of the twin's spec at the
shipped recipe, then the held-out verification (IIA of every aligned variable and task accuracy,
each ≥ 0.95 on pairs whose base input was never trained on). The result is a record: the twin's
numbers, ``verified`` and, when it verified, its files (weights, sidecar with their SHA-256, the
ground-truth JSON) as bytes, so a remote worker needs no shared disk. A twin that fails is
recorded with its numbers and reason, never dropped.

**The run** (:func:`train_zoo`): the driver writes each record as it arrives (atomically): the
files under ``OUT/<name>/``, the record under ``OUT/records/<name>.json``, then
``OUT/manifest.json`` again (every record so far, the share verified); and it streams each
verified twin into the zoo cache, where ``interplab.organism`` finds it. A twin with a record is
never trained again: a killed run resumes where it stopped.

**Shipped twins** (:data:`SHIPPED`, package data): the verified twins' files and the manifest of
every attempt. :func:`load_shipped` loads one after checking its files' SHA-256 against the
manifest and re-running a quick held-out verification; a missing or corrupt file, or a twin
whose recipe changed since it was shipped, gives a warning and None, and the caller rebuilds it
(:func:`interplab.zoo.siit_generated.load_twin`).

Listing the shipped twins (:func:`shipped_rows`) reads the manifest only: no torch import.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from interplab.zoo.twin_shipped import (  # noqa: F401 (re-exported: the shipped twins)
    FILES,
    MANIFEST,
    QUICK_PAIRS,
    SHIPPED,
    SHIPPED_SEED,
    listing,
    load_shipped,
    shipped_manifest,
    shipped_rows,
)

RECORDS = "records"


def attempted_names(seed: int, count: int) -> list[str]:
    """The selection rule: the twins of the first ``count`` programs of generator ``seed`` that
    the twin rule admits, in index order (fewer if the scan runs out)."""
    from interplab.zoo.siit_generated import siit_generated_names

    return siit_generated_names(seed, count)


PLAN = "plan.json"


def planned_names(out: Path, seed: int, count: int) -> list[str]:
    """:func:`attempted_names`, remembered in ``out/plan.json`` so that a resumed run does not
    scan the programs again (a plan for another seed or count is replaced)."""
    from interplab.models.io import atomic_write_text
    from interplab.zoo.siit_generated import MAX_DEPTH, MAX_LAYERS, MIN_INPUTS

    rule = {"max_depth": MAX_DEPTH, "max_layers": MAX_LAYERS, "min_inputs": MIN_INPUTS}
    path = Path(out) / PLAN
    try:
        plan = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        plan = {}
    if plan.get("seed") == seed and plan.get("count") == count and plan.get("rule") == rule:
        return list(plan["names"])
    names = attempted_names(seed, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path, json.dumps({"seed": seed, "count": count, "rule": rule, "names": names}, indent=1)
    )
    return names


# ------------------------------------------------------------------------------ one twin
def train_one(name: str, seed: int = 0) -> dict[str, Any]:
    """Train twin ``name`` at training seed ``seed`` and verify it on held-out inputs. Returns
    its record (see the module docstring); never raises for a twin that fails to verify."""
    import tempfile

    from interplab.core.threads import one_thread
    from interplab.zoo.siit import fingerprint, train_siit, write_organism
    from interplab.zoo.siit_generated import MIN_IIA, sibling, spec_for

    spec = spec_for(name)
    from interplab.zoo.generated import load_generated

    c = load_generated(sibling(name)).spec.candidate
    start = time.perf_counter()
    with one_thread():
        model, report = train_siit(spec, seed)
    worst = min(report["iia"].values()) if report["iia"] else 0.0
    verified = worst >= MIN_IIA and report["task_accuracy"] >= MIN_IIA
    record: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "sibling": sibling(name),
        "constructs": list(c.constructs),
        "depth": c.depth,
        "width": c.width,
        "n_ops": c.n_ops,
        "n_layers": spec.n_layers,
        "n_inputs": len(spec.all_inputs()),
        "iia": report["iia"],
        "task_accuracy": report["task_accuracy"],
        "strict_accuracy": report["strict_accuracy"],
        "n_heldout_pairs": report["n_heldout_pairs"],
        "train_seconds": report["train_seconds"],
        "train_cpu_seconds": report["train_cpu_seconds"],
        "seconds": round(time.perf_counter() - start, 2),
        "fingerprint": fingerprint(spec),
        "verified": verified,
    }
    if not verified:
        record["reason"] = (
            f"held-out IIA {_fmt(report['iia'])}, task accuracy "
            f"{report['task_accuracy']:.3f}; each needs ≥ {MIN_IIA}"
        )
        return record
    with tempfile.TemporaryDirectory() as tmp:
        write_organism(Path(tmp), spec, seed, model, report, MIN_IIA)
        files = {f: (Path(tmp) / f).read_bytes() for f in FILES}
    record["sha256"] = {f: hashlib.sha256(b).hexdigest() for f, b in files.items()}
    record["files"] = files
    return record


def _fmt(iia: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(iia.items()))


# ------------------------------------------------------------------------------- the run
def done(out: Path) -> dict[str, dict[str, Any]]:
    """The records already in ``out`` (the resume point), by name."""
    rows = {}
    directory = Path(out) / RECORDS
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            try:
                row = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue  # a torn record: that twin is trained again
            if isinstance(row, dict) and "name" in row:
                rows[row["name"]] = row
    return rows


def write_record(out: Path, record: dict[str, Any], *, to_cache: bool = True) -> dict[str, Any]:
    """Write one record into ``out`` (files first, then the record, then the manifest) and,
    with ``to_cache``, stream a verified twin's files into the zoo cache. Returns the record
    without its file bytes."""
    from interplab.models.io import atomic_write_bytes, atomic_write_text

    out = Path(out)
    files = record.pop("files", None) or {}
    for directory in [out / record["name"]] + ([_cache_dir(record)] if to_cache else []):
        for fname, data in files.items():
            atomic_write_bytes(directory / fname, data)
    atomic_write_text(
        out / RECORDS / f"{record['name']}.json", json.dumps(record, indent=1, sort_keys=True)
    )
    write_manifest(out)
    return record


def _cache_dir(record: dict[str, Any]) -> Path:
    from interplab.zoo.twin_shipped import cache_dir_of

    return cache_dir_of(record)


def write_manifest(out: Path) -> dict[str, Any]:
    """``out/manifest.json`` from every record in ``out/records``: the attempts in name order
    and the share that verified."""
    from interplab.models.io import atomic_write_text

    rows = sorted(done(out).values(), key=_order)
    for r in rows:
        r["listing"] = listing(r)
    n_ok = sum(1 for r in rows if r.get("verified"))
    manifest = {
        "version": 1,
        "attempted": len(rows),
        "verified": n_ok,
        "share_verified": round(n_ok / len(rows), 4) if rows else None,
        "twins": rows,
    }
    atomic_write_text(Path(out) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _order(row: dict[str, Any]) -> tuple[int, int]:
    from interplab.zoo.siit_generated import parse_name

    return parse_name(row["name"])


def process_pool(jobs: int) -> Callable[[Callable[..., Any], list[tuple]], Iterator[Any]]:
    """A ``submit`` for :func:`train_zoo`: ``jobs`` spawned worker processes, results as they
    finish."""

    def submit(fn: Callable[..., Any], calls: list[tuple]) -> Iterator[Any]:
        import concurrent.futures as cf
        import multiprocessing

        from interplab.core.workers import exit_with_parent

        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=ctx,
            initializer=exit_with_parent,  # a worker never outlives this process
            initargs=(os.getpid(),),
        ) as pool:
            futures = [pool.submit(fn, *args) for args in calls]
            for fut in cf.as_completed(futures):
                yield fut.result()

    return submit


def train_zoo(
    names: Iterable[str],
    out: Path,
    *,
    seed: int = 0,
    submit: Callable[[Callable[..., Any], list[tuple]], Iterator[Any]] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    to_cache: bool = True,
) -> dict[str, Any]:
    """Train every twin in ``names`` that has no record in ``out`` yet (``submit``: where the
    work runs, default this process), writing each record as it arrives. Returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    finished = done(out)
    todo = [n for n in names if n not in finished]
    run = submit or (lambda fn, calls: (fn(*args) for args in calls))
    for record in run(train_one, [(n, seed) for n in todo]):
        row = write_record(out, record, to_cache=to_cache)
        if progress is not None:
            progress(row)
    return write_manifest(out)


__all__ = [
    "MANIFEST",
    "SHIPPED",
    "SHIPPED_SEED",
    "attempted_names",
    "done",
    "listing",
    "load_shipped",
    "planned_names",
    "process_pool",
    "shipped_manifest",
    "shipped_rows",
    "train_one",
    "train_zoo",
    "write_manifest",
    "write_record",
]
