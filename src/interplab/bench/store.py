"""The results store: one SQLite file holding every job's status, result rows and artifacts.

Rows are written as each job finishes, so an interrupted run loses at most the jobs in flight,
and a rerun skips every job already marked done. A file that is not a readable interplab store
is reported (ResultsStoreError), never silently replaced.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from interplab.errors import ResultsStoreError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, track TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL,
    ablation TEXT, seed INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    seconds REAL, finished_at REAL);
CREATE TABLE IF NOT EXISTS rows (
    job_key TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL, ablation TEXT,
    metric TEXT NOT NULL, value REAL NOT NULL, seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    job_key TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (job_key, name));
"""


@dataclass(frozen=True)
class JobRecord:
    key: str
    track: str
    organism: str
    method: str
    ablation: str | None
    seed: int
    status: str  # "done" or "failed"
    error: str | None
    seconds: float | None


class ResultsStore:
    """Open (or create) the store at ``path``; use as a context manager or call close()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            if existed:
                self._check_existing()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise ResultsStoreError(
                f"{self.path} is not a readable results database ({exc}). It was left untouched: "
                "move it away (or pass another --out directory) to start a fresh run.") from None

    def _check_existing(self) -> None:
        (status,) = self._db.execute("PRAGMA quick_check").fetchone()
        if status != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {status}")
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise sqlite3.DatabaseError("it has no interplab meta table")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {row and row[0]} != {SCHEMA_VERSION}")

    # -------------------------------------------------------------- writing
    def record(self, job: Any, rows: Iterable[dict], artifacts: dict[str, Any], seconds: float) -> None:
        """Store a finished job's rows and artifacts atomically (one transaction)."""
        with self._db:
            self._db.execute("DELETE FROM rows WHERE job_key=?", (job.key,))
            self._db.executemany(
                "INSERT INTO rows VALUES (?,?,?,?,?,?,?)",
                [(job.key, r["organism"], r["method"], r.get("ablation"), r["metric"],
                  float(r["value"]), float(r["seconds"])) for r in rows])
            self._db.executemany(
                "INSERT OR REPLACE INTO artifacts VALUES (?,?,?)",
                [(job.key, name, json.dumps(body)) for name, body in artifacts.items()])
            self._upsert_job(job, "done", None, seconds)

    def record_failure(self, job: Any, error: str, seconds: float) -> None:
        with self._db:
            self._upsert_job(job, "failed", error, seconds)

    def _upsert_job(self, job: Any, status: str, error: str | None, seconds: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?)",
            (job.key, job.track, job.organism, job.method, job.ablation, job.seed, status, error,
             seconds, time.time()))

    # -------------------------------------------------------------- reading
    def done_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM jobs WHERE status='done'")}

    def jobs(self) -> list[JobRecord]:
        return [JobRecord(*r) for r in self._db.execute(
            "SELECT key, track, organism, method, ablation, seed, status, error, seconds FROM jobs ORDER BY key")]

    def rows(self) -> list[dict]:
        cur = self._db.execute("SELECT organism, method, ablation, metric, value, seconds FROM rows "
                               "ORDER BY organism, method, ablation, metric")
        return [dict(zip(("organism", "method", "ablation", "metric", "value", "seconds"), r)) for r in cur]

    def artifacts(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """{job_key: {artifact_name: body}}."""
        query = "SELECT job_key, name, body FROM artifacts"
        args: tuple = ()
        if name is not None:
            query += " WHERE name=?"
            args = (name,)
        out: dict[str, dict[str, Any]] = {}
        for key, art, body in self._db.execute(query, args):
            out.setdefault(key, {})[art] = json.loads(body)
        return out

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
