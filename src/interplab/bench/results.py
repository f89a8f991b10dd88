"""``results.json``: the stable, script-friendly export of a bench run.

    {"version": 1,
     "rows": [{"organism": str, "method": str, "ablation": "zero"|"mean"|"resample"|null,
               "metric": str, "value": float, "seconds": float}, ...],
     "failures": [{"job": str, "error": str}, ...]}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from interplab.bench.store import ResultsStore
from interplab.models.io import atomic_write_text

RESULTS_VERSION = 1


def results_payload(store: ResultsStore) -> dict:
    rows = [r for r in store.rows() if math.isfinite(r["value"])]
    failures = [{"job": j.key, "error": (j.error or "").strip().splitlines()[-1] if j.error else ""}
                for j in store.jobs() if j.status == "failed"]
    return {"version": RESULTS_VERSION, "rows": rows, "failures": failures}


def write_results_json(store: ResultsStore, path: str | Path) -> Path:
    atomic_write_text(path, json.dumps(results_payload(store), indent=1))
    return Path(path)
