"""The results store: one SQLite file holding every job's status, result rows and artifacts.

Rows are written as each job finishes, so an interrupted run loses at most the jobs in flight,
and a rerun skips every job already marked done. A file that is not a readable interplab store
is reported (ResultsStoreError), never silently replaced; a store of schema version 1 is
migrated in place (one transaction) to version 2.

A row's value is a finite float, or NULL with a ``reason`` (NaN and ±inf are stored as NULL:
"not a number", "+infinity", "-infinity" unless the track gave a reason of its own).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interplab.errors import ResultsStoreError

SCHEMA_VERSION = 2
_ROWS_TABLE = """
CREATE TABLE IF NOT EXISTS rows (
    job_key TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL, ablation TEXT,
    seed INTEGER NOT NULL, metric TEXT NOT NULL, value REAL, reason TEXT, seconds REAL NOT NULL,
    CHECK (value IS NOT NULL OR reason IS NOT NULL));
"""
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, track TEXT NOT NULL, organism TEXT NOT NULL, method TEXT NOT NULL,
    ablation TEXT, seed INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,
    seconds REAL, finished_at REAL);
CREATE TABLE IF NOT EXISTS artifacts (
    job_key TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (job_key, name));
"""
    + _ROWS_TABLE
)
#: Version 1 -> 2: rows gain seed (from the row's job), value becomes nullable with a reason.
_MIGRATE_1_TO_2 = (
    """
BEGIN IMMEDIATE;
ALTER TABLE rows RENAME TO rows_v1;
"""
    + _ROWS_TABLE
    + """
INSERT INTO rows SELECT r.job_key, r.organism, r.method, r.ablation, COALESCE(j.seed, 0), r.metric,
    CASE WHEN abs(r.value) > 1.7976931348623157e308 THEN NULL ELSE r.value END,
    CASE WHEN r.value > 1.7976931348623157e308 THEN '+infinity'
         WHEN r.value < -1.7976931348623157e308 THEN '-infinity' END,
    r.seconds
  FROM rows_v1 r LEFT JOIN jobs j ON j.key = r.job_key;
DROP TABLE rows_v1;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
COMMIT;
"""
)
ROW_FIELDS = ("organism", "method", "ablation", "seed", "metric", "value", "reason", "seconds")


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


class ReadOnlyStoreError(ResultsStoreError):
    """The store (or its folder) cannot be written: it can be read, not resumed in place."""


class ResultsStore:
    """Open (or create) the store at ``path``; use as a context manager or call close().

    ``writable``: True (the runner) requires a store it can write, and raises
    :class:`ReadOnlyStoreError` where the file or its folder is read-only; False opens an
    existing store read-only (merge inputs); None (the default: readers such as the report)
    writes where it can and reads a read-only store as it is. A file that exists is opened only
    if it is an interplab store: an empty or truncated file is refused like any unreadable one
    and never replaced. A new store is created whole (schema written to a temporary file that
    is then renamed), so an interrupted creation never leaves an empty file behind."""

    def __init__(self, path: str | Path, *, writable: bool | None = None):
        self.path = Path(path)
        self.read_only = False
        exists = self.path.exists()
        if not exists:
            if writable is False:
                raise ResultsStoreError(f"no results database at {self.path}")
            self._create()
        elif not self.path.is_file():
            raise ResultsStoreError(
                f"{self.path} is not a file; pass the directory that holds results.sqlite"
            )
        elif self.path.stat().st_size == 0:
            raise ResultsStoreError(
                f"{self.path} is empty (0 bytes), not a readable results database. It was left "
                "untouched: if it holds nothing you need, delete it, or pass another --out "
                "directory."
            )
        read_only = writable is False or (exists and _read_only(self.path))
        if read_only and writable:
            raise ReadOnlyStoreError(_read_only_message(self.path))
        self.read_only = read_only
        try:
            if read_only:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=30)
            else:
                self._db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise ResultsStoreError(
                f"cannot open the results database {self.path} ({exc}); "
                "check that it and its directory are readable"
            ) from None
        try:
            self._check_existing()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if not read_only and "readonly" in str(exc):
                raise ReadOnlyStoreError(_read_only_message(self.path)) from None
            raise ResultsStoreError(
                f"{self.path} is not a readable results database ({one_line(exc)}). It was left "
                "untouched: move it away (or pass another --out directory) to start a fresh run."
            ) from None
        except BaseException:
            self._db.close()
            raise

    def _create(self) -> None:
        """Write a new, empty store at ``self.path`` whole: schema in a temporary file, then
        linked into place (never over a store another process created meanwhile)."""
        from interplab.models.io import current_umask

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ResultsStoreError(
                f"cannot create the results database {self.path}: a parent of it "
                "is a file, not a directory; pass another directory"
            ) from None
        except PermissionError:
            raise ReadOnlyStoreError(_read_only_message(self.path)) from None
        if _read_only(self.path.parent):
            raise ReadOnlyStoreError(_read_only_message(self.path))
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        os.close(fd)
        tmp = Path(name)
        try:
            db = sqlite3.connect(tmp)
            try:
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.commit()
            finally:
                db.close()
            os.chmod(tmp, 0o666 & ~current_umask())
            try:  # a link, not a rename: a store another process created meanwhile is kept
                os.link(tmp, self.path)
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except (sqlite3.Error, OSError) as exc:
            if _read_only(self.path.parent):
                raise ReadOnlyStoreError(_read_only_message(self.path)) from None
            raise ResultsStoreError(
                f"cannot create the results database {self.path} ({one_line(exc)}); "
                "check that its directory is writable"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)

    def _check_existing(self) -> None:
        (status,) = self._db.execute("PRAGMA quick_check").fetchone()
        if status != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {status}")
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "meta" not in tables:
            raise sqlite3.DatabaseError("it has no interplab meta table")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row else None
        if version == "1":
            if self.read_only:
                raise ResultsStoreError(
                    f"{self.path} holds results of store schema version 1, which must be "
                    "migrated in place, but it is read-only: copy it to a writable folder first"
                )
            self._migrate(_MIGRATE_1_TO_2)
        elif version != str(SCHEMA_VERSION):
            raise ResultsStoreError(
                f"{self.path} holds results of store schema version {version}, which this interplab "
                f"(schema {SCHEMA_VERSION}) cannot read; it was left untouched: pass a new --out "
                "directory (or use the interplab version that wrote it)"
            )
        missing = {"jobs", "rows", "artifacts"} - tables
        if missing:
            raise sqlite3.DatabaseError(f"its {', '.join(sorted(missing))} table is missing")

    def _migrate(self, script: str) -> None:
        try:
            self._db.executescript(script)
        except BaseException:
            if self._db.in_transaction:
                self._db.rollback()
            raise

    # -------------------------------------------------------------- writing
    def record(
        self, job: Any, rows: Iterable[dict], artifacts: dict[str, Any], seconds: float
    ) -> None:
        """Store a finished job's rows and artifacts atomically (one transaction).

        Every row is checked before anything is written; a row that cannot be stored raises
        ValueError (or TypeError) naming it, and the store is left as it was."""
        values = [_row_tuple(job, r) for r in rows]
        bodies = [(job.key, name, json.dumps(body)) for name, body in artifacts.items()]
        with self._db:
            self._db.execute("DELETE FROM rows WHERE job_key=?", (job.key,))
            self._db.executemany("INSERT INTO rows VALUES (?,?,?,?,?,?,?,?,?)", values)
            self._db.executemany("INSERT OR REPLACE INTO artifacts VALUES (?,?,?)", bodies)
            self._upsert_job(job, "done", None, seconds)

    def record_failure(self, job: Any, error: str, seconds: float) -> None:
        with self._db:
            self._db.execute("DELETE FROM rows WHERE job_key=?", (job.key,))
            self._upsert_job(job, "failed", error, seconds)

    def _upsert_job(self, job: Any, status: str, error: str | None, seconds: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                job.key,
                job.track,
                job.organism,
                job.method,
                job.ablation,
                job.seed,
                status,
                error,
                seconds,
                time.time(),
            ),
        )

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` entry (e.g. the spec fingerprint the runner records)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # -------------------------------------------------------------- reading
    def done_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM jobs WHERE status='done'")}

    def jobs(self) -> list[JobRecord]:
        return [
            JobRecord(*r)
            for r in self._db.execute(
                "SELECT key, track, organism, method, ablation, seed, status, error, seconds FROM jobs ORDER BY key"
            )
        ]

    def rows(self) -> list[dict]:
        """Every result row as {organism, method, ablation, seed, metric, value, reason, seconds};
        ``value`` is None (with a ``reason``) where the metric had no finite value."""
        cur = self._db.execute(
            f"SELECT {', '.join(ROW_FIELDS)} FROM rows "
            "ORDER BY organism, method, ablation, seed, metric"
        )
        return [dict(zip(ROW_FIELDS, r)) for r in cur]

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

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def one_line(exc: BaseException | str) -> str:
    """An error as one line (its first line, whitespace squeezed)."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _read_only(path: Path) -> bool:
    """Whether ``path`` (a store file or a folder) cannot be written here; for a file, also
    whether its folder cannot be (SQLite writes a journal beside the store)."""
    if path.is_dir():
        return not os.access(path, os.W_OK)
    return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)


def _read_only_message(path: Path) -> str:
    folder = path.parent
    return (
        f"{folder} is read-only ({path.name} cannot be written there); `interplab report` and "
        f"`bench merge` can read it as it is. To resume elsewhere, copy the folder to a "
        f"writable place (cp -r {folder} NEWDIR) and rerun the same command with --out NEWDIR"
    )


def _row_tuple(job: Any, row: dict) -> tuple:
    """One row as stored: non-finite values become NULL with a reason."""
    metric = row.get("metric")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"job {job.key} returned a row without a metric name: {row!r}")
    value, reason = row.get("value"), row.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"job {job.key}, metric {metric}: reason must be a string, got {reason!r}")
    if value is not None:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            value = float(value)  # also numpy and 0-d torch scalars
        except (TypeError, ValueError):
            raise TypeError(
                f"job {job.key}, metric {metric}: value must be a number or None, "
                f"got {type(value).__name__} {value!r}"
            ) from None
        if math.isnan(value):
            value, reason = None, reason or "not a number"
        elif math.isinf(value):
            reason = reason or ("+infinity" if value > 0 else "-infinity")
            value = None
    elif reason is None:
        reason = "no value"
    return (
        job.key,
        row["organism"],
        row["method"],
        row.get("ablation"),
        int(row.get("seed", job.seed)),
        metric,
        value,
        reason,
        float(row["seconds"]),
    )
