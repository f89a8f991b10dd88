"""``results.json``: the stable, script-friendly export of a bench run.

    {"version": 2,
     "rows": [{"organism": str, "method": str, "ablation": "zero"|"mean"|"resample"|null,
               "seed": int, "metric": str, "value": float|null, "seconds": float,
               "reason": str}, ...],          # "reason" only where there is one
     "failures": [{"job": str, "error": str}, ...]}

``value`` is null where a metric had no finite value (NaN, ±inf or none at all); such a row
always carries a ``reason``. Version 1 had no ``seed`` and dropped non-finite rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from interplab.bench.store import ResultsStore
from interplab.models.io import atomic_write_text

RESULTS_VERSION = 2
ROW_KEYS = ("organism", "method", "ablation", "seed", "metric", "value", "seconds")


def _export(row: dict) -> dict:
    out = {k: row[k] for k in ROW_KEYS}
    if row.get("reason") is not None:
        out["reason"] = row["reason"]
    return out


def last_line(error: str | None) -> str:
    """The last non-empty line of a stored error (a traceback's ``Type: message``)."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


def results_payload(store: ResultsStore) -> dict:
    rows = [_export(r) for r in store.rows()]
    failures = [
        {"job": j.key, "error": last_line(j.error)} for j in store.jobs() if j.status == "failed"
    ]
    return {"version": RESULTS_VERSION, "rows": rows, "failures": failures}


def write_results_json(store: ResultsStore, path: str | Path) -> Path:
    atomic_write_text(path, json.dumps(results_payload(store), indent=1, allow_nan=False))
    return Path(path)
