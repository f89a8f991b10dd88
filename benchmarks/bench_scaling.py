"""Jobs per second of one 200-job bench spec run serially, on the process pool (2 workers) and on
Dask (a LocalCluster of 2 worker processes), side by side in one run.

Spec: the zoo track, 20 generated organisms × (eap, eap_ig, random, weight_norm,
activation_norm) × (zero, resample) = 200 real jobs. Each mode runs the real CLI in a fresh
process (`interplab bench --spec ... --no-report`, 1 torch thread per job) into its own output
directory, so no mode inherits another's warm organism caches; the generated programs' candidate
list is computed once beforehand (as a first bench run would cache it). Prints one JSON line:
{"benchmark": "bench_scaling", "jobs": 200, "serial_jobs_per_s", "pool_jobs_per_s",
 "dask_jobs_per_s", "dask_vs_pool": dask/pool, "pool_vs_serial", ...}. The goal is
dask_vs_pool >= 0.9. Needs the dask extra (pip install 'interplab[dask]').
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORGANISMS = [f"generated-0-{i}" for i in range(20)]
METHODS = ["eap", "eap_ig", "random", "weight_norm", "activation_norm"]
ABLATIONS = ["zero", "resample"]


def main() -> None:
    from interplab.zoo.generated import accepted_candidates

    accepted_candidates(0, len(ORGANISMS))
    exe = Path(sys.executable).parent / "interplab"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result: dict = {
        "benchmark": "bench_scaling",
        "jobs": len(ORGANISMS) * len(METHODS) * len(ABLATIONS),
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "scaling.toml"
        spec.write_text(
            f"[zoo]\norganisms = {json.dumps(ORGANISMS)}\nmethods = {json.dumps(METHODS)}\n"
            f"ablations = {json.dumps(ABLATIONS)}\n"
        )
        modes = {
            "serial": [],
            "pool": ["--jobs", "2"],
            "dask": ["--cluster", "local", "--jobs", "2"],
        }
        for name, extra in modes.items():
            out = Path(tmp) / name
            start = time.perf_counter()
            run = subprocess.run(
                [
                    str(exe),
                    "bench",
                    "--spec",
                    str(spec),
                    "--out",
                    str(out),
                    "--no-report",
                    "--json",
                    "-",
                    *extra,
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
            if run.returncode != 0:
                raise SystemExit(f"{name} failed ({run.returncode}): {run.stderr[-2000:]}")
            summary = json.loads(run.stdout.strip().splitlines()[-1])
            result[f"{name}_seconds"] = round(seconds, 2)
            result[f"{name}_jobs_per_s"] = round(result["jobs"] / seconds, 3)
            result[f"{name}_failed"] = summary["failed"]
    result["pool_vs_serial"] = round(result["pool_jobs_per_s"] / result["serial_jobs_per_s"], 3)
    result["dask_vs_pool"] = round(result["dask_jobs_per_s"] / result["pool_jobs_per_s"], 3)
    result["goal_dask_vs_pool"] = 0.9
    result["cores"] = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    )
    try:
        result["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    print(json.dumps(result))


if __name__ == "__main__":
    main()
