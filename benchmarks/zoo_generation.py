"""Time to generate verified organisms: `interplab zoo generate --count 200` in one process.

Each organism is drawn, compiled, checked against the RASP evaluator on every input (or ≥ 2,000
sampled) and saved (safetensors + ground truth). The reference is the compile time of the same
number of library programs compiled in the same process (the compiler alone, no checks), so the
ratio says what drawing, verifying and saving add. Prints one JSON line:
{"benchmark": "zoo_generation", "count", "seconds", "per_organism_s", "rejected": {...},
 "library_compile_s_per_program", "ratio_vs_library_compile", "goal_seconds": 120}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import torch


def main() -> None:
    torch.set_num_threads(1)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    from interplab.compile.programs import LIBRARY
    from interplab.zoo.generated import write_generated

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
    print(
        json.dumps(
            {
                "benchmark": "zoo_generation",
                "count": index["count"],
                "seconds": round(seconds, 2),
                "per_organism_s": round(seconds / count, 3),
                "rejected": index["rejected"],
                "library_compile_s_per_program": round(library, 3),
                "ratio_vs_library_compile": round(seconds / count / library, 3),
                "goal_seconds": 120,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
