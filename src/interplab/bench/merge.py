"""``interplab bench merge OUT IN...``: combine the result stores of one spec's shards.

Every input must be an interplab results store (``DIR/results.sqlite`` or the file itself)
written by the same spec (the ``spec`` fingerprint the runner records: the whole spec's job
keys, so every shard of ``--shard i/N`` carries the same one). Stores of different specs are
refused, naming both, and so is an input holding jobs outside its spec (a store an older
interplab let two specs share: checked against the job keys the runner records). A job present
in several inputs is taken from the input where it is ``done`` (failed only where no input has
it done); rows and artifacts travel with their job. Inputs are only read (read-only stores
too). The output is written to a temporary file and renamed (atomic); ``OUT/results.json``
follows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from interplab.bench.results import write_results_json
from interplab.bench.runner import DB_NAME
from interplab.bench.store import ResultsStore
from interplab.errors import ConfigError, ResultsStoreError
from interplab.models.io import atomic_output


@dataclass(frozen=True)
class MergeSummary:
    inputs: int
    jobs: int
    done: int
    failed: int
    out: Path


def _store_path(path: str | Path) -> Path:
    p = Path(path)
    db = p / DB_NAME if p.is_dir() else p
    if not db.is_file():
        raise ConfigError(
            f"{path}: no results store there (expected a directory holding "
            f"{DB_NAME}, written by `interplab bench --out`)"
        )
    return db


def merge_stores(out_dir: str | Path, inputs: list[str | Path]) -> MergeSummary:
    """Merge ``inputs`` into ``out_dir/results.sqlite`` (which must not exist yet)."""
    if not inputs:
        raise ConfigError("bench merge needs at least one input store")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"{out_dir} is an existing file; bench merge writes into a directory: pass a new one"
        )
    target = out_dir / DB_NAME
    if target.exists():
        raise ConfigError(f"{target} already exists; merge into a new directory")
    paths = [_store_path(p) for p in inputs]
    specs: dict[str, list[Path]] = {}
    meta: dict[str, str | None] = {}
    for path in paths:
        with ResultsStore(path) as store:  # validates (and migrates) every input first
            fingerprint = store.get_meta("spec")
            jobs = store.jobs()
            if fingerprint is None:
                raise ResultsStoreError(
                    f"{path} holds no jobs yet; leave it out of the merge"
                    if not jobs
                    else f"{path} records no spec fingerprint (written by an older "
                    "interplab); rerun it with this version to resume and record it"
                )
            keys = store.get_meta("spec_keys")
            if keys is not None:
                allowed = set(keys.split("\n"))
                foreign = sorted(j.key for j in jobs if j.key not in allowed)
                if foreign:
                    raise ConfigError(
                        f"{path} holds {len(foreign)} job(s) of another spec than its own "
                        f"(spec {fingerprint}; e.g. {foreign[0]}); merge refuses foreign jobs: "
                        "rerun that part into its own --out directory"
                    )
            if fingerprint not in specs:
                meta = meta or {k: store.get_meta(k) for k in ("spec_name", "seed", "spec_keys")}
        specs.setdefault(fingerprint, []).append(path)
    if len(specs) > 1:
        listed = "; ".join(f"spec {k}: {', '.join(map(str, v))}" for k, v in specs.items())
        raise ConfigError(
            f"cannot merge stores from different specs ({listed}); merge only the "
            "shards of one spec (the same suite or spec file, seed and options)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as tmp:
        tmp.unlink()  # the store creates its own file
        with ResultsStore(tmp) as out:
            out.set_meta("spec", next(iter(specs)))
            for key, value in meta.items():
                if value is not None:
                    out.set_meta(key, value)
        _copy_all(tmp, paths)
    with ResultsStore(target) as store:
        write_results_json(store, out_dir / "results.json")
        jobs = store.jobs()
    done = sum(j.status == "done" for j in jobs)
    return MergeSummary(len(paths), len(jobs), done, len(jobs) - done, out_dir)


def _copy_all(tmp: Path, paths: list[Path]) -> None:
    db = sqlite3.connect(tmp.resolve().as_uri(), uri=True)
    try:
        for path in paths:
            # read-only: an input in a read-only folder is read as it is
            db.execute("ATTACH DATABASE ? AS src", (path.resolve().as_uri() + "?mode=ro",))
            with db:
                # a job's best record: done beats failed; a job already taken done stays
                db.execute("""CREATE TEMP TABLE take AS SELECT key FROM src.jobs s WHERE NOT EXISTS (
                                  SELECT 1 FROM main.jobs m WHERE m.key = s.key
                                  AND (m.status = 'done' OR s.status <> 'done'))""")
                db.execute("DELETE FROM main.rows WHERE job_key IN (SELECT key FROM take)")
                db.execute("DELETE FROM main.artifacts WHERE job_key IN (SELECT key FROM take)")
                db.execute(
                    "INSERT OR REPLACE INTO main.jobs SELECT * FROM src.jobs "
                    "WHERE key IN (SELECT key FROM take)"
                )
                db.execute(
                    "INSERT INTO main.rows SELECT * FROM src.rows "
                    "WHERE job_key IN (SELECT key FROM take)"
                )
                db.execute(
                    "INSERT OR REPLACE INTO main.artifacts SELECT * FROM src.artifacts "
                    "WHERE job_key IN (SELECT key FROM take)"
                )
                db.execute("DROP TABLE take")
            db.execute("DETACH DATABASE src")
    finally:
        db.close()
