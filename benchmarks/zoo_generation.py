"""Time to generate verified organisms: `interplab zoo generate --count 200` in one process,
and to train SIIT twins (`interplab zoo train`) on a process pool and on a Dask LocalCluster.

Each organism is drawn, compiled, checked against the RASP evaluator on every input (or ≥ 2,000
sampled) and saved (safetensors + ground truth). The reference is the compile time of the same
number of library programs compiled in the same process (the compiler alone, no checks), so the
ratio says what drawing, verifying and saving add. Prints one JSON line:
{"benchmark": "zoo_generation", "count", "seconds", "per_organism_s", "rejected": {...},
 "library_compile_s_per_program", "ratio_vs_library_compile", "goal_seconds": 120,
 "twins": {"count", "workers", "cpu_s_per_twin" (the training loop, one core: the mean of each
 twin's process time), "max_cpu_s_per_twin", "whole_s_per_twin" (a worker's whole time per twin:
 the program's pair tables, training and the held-out verification), "pool_wall_s", "dask_wall_s", "dask_vs_pool_ratio",
 "goal_cpu_s_per_twin": 20}}.

Usage: python benchmarks/zoo_generation.py [COUNT] [TWINS] (defaults 200 and 4; 0 skips that
part). Both twin runs train the same first TWINS eligible twins from scratch into
temporary directories with two one-thread workers, so the ratio is the engines' overhead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    torch.set_num_threads(1)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    from interplab.compile.programs import LIBRARY
    from interplab.zoo.generated import write_generated

    n_twins = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    # the twins first, in this machine's cache (their programs are drawn from it), then the
    # generation in a cold temporary cache
    twins = _twins(n_twins) if n_twins else None
    out: dict = {"benchmark": "zoo_generation", "twins": twins, "threads": torch.get_num_threads()}
    if count:
        names = [n for n in LIBRARY if not n.startswith("causal-")]
        start = time.perf_counter()
        for n in names:
            LIBRARY[n].compile(measure_circuit=False)
        library = (time.perf_counter() - start) / len(names)
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["INTERPLAB_CACHE"] = tmp  # a cold cache: nothing reused
            start = time.perf_counter()
            index = write_generated(os.path.join(tmp, "zoo"), count, seed=0)
            seconds = time.perf_counter() - start
        out.update(
            {
                "count": index["count"],
                "seconds": round(seconds, 2),
                "per_organism_s": round(seconds / count, 3),
                "rejected": index["rejected"],
                "library_compile_s_per_program": round(library, 3),
                "ratio_vs_library_compile": round(seconds / count / library, 3),
                "goal_seconds": 120,
            }
        )
    print(json.dumps(out))


def _twins(count: int) -> dict:
    """Train the first ``count`` twins on a 2-process pool and on a 2-worker Dask LocalCluster."""
    from interplab.bench.dask_runner import calls_submitter
    from interplab.zoo.twin_zoo import attempted_names, process_pool, train_zoo

    names = attempted_names(0, count)
    walls, cpu, whole = {}, [], []
    for engine in ("pool", "dask"):
        with tempfile.TemporaryDirectory() as tmp:
            close = None
            if engine == "dask":
                submit, close = calls_submitter("local", 2)
            else:
                submit = process_pool(2)
            start = time.perf_counter()
            try:
                m = train_zoo(names, Path(tmp), submit=submit, to_cache=False)
            finally:
                if close is not None:
                    close()
            walls[engine] = time.perf_counter() - start
            cpu += [r["train_cpu_seconds"] for r in m["twins"]]
            whole += [r["seconds"] for r in m["twins"]]
    return {
        "count": len(names),
        "workers": 2,
        "cpu_s_per_twin": round(sum(cpu) / len(cpu), 2),
        "max_cpu_s_per_twin": round(max(cpu), 2),
        "whole_s_per_twin": round(sum(whole) / len(whole), 2),
        "pool_wall_s": round(walls["pool"], 2),
        "dask_wall_s": round(walls["dask"], 2),
        "dask_vs_pool_ratio": round(walls["dask"] / walls["pool"], 3),
        "goal_cpu_s_per_twin": 20,
    }


if __name__ == "__main__":
    main()
