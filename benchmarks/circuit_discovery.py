"""Wall time and edge AUROC of circuit-discovery methods on the same organisms, side by side.

Organisms come from the bench's circuits track (compiled RASP programs and trained organisms;
training or compiling is done first and not timed). Each method runs ``REPEATS`` times per
(organism, ablation); the median wall time is reported.

Prints one JSON line:
    {"benchmark": "circuit_discovery", "ratio": median over organisms of t(ACDC) / t(EAP),
     "acdc_seconds_compiled_max": ..., "goal_acdc_compiled_seconds": 30,
     "organisms": {name: {ablation: {method: {"seconds", "edge_auroc", "forward", "backward"}}}}}
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from interplab.bench.tracks.circuits import load, metric_for
from interplab.eval.circuits import edge_auroc
from interplab.methods.circuits import find_circuit

METHODS = ("acdc", "eap", "eap_ig", "patch_edges", "activation_norm", "random")
ORGANISMS = ("compiled-reverse", "compiled-frac_prevs", "trained-prevtoken", "trained-modadd")
ABLATIONS = ("zero", "resample")
REPEATS = 3


def main(names: list[str]) -> dict:
    torch.set_num_threads(2)
    out: dict = {}
    ratios, acdc_compiled = [], []
    for name in names:
        org = load(name)
        out[name] = {}
        for ablation in ABLATIONS:
            truth = org.truth.per_ablation[ablation]
            row = {}
            for method in METHODS:
                times = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    res = find_circuit(
                        method,
                        org.model,
                        org.tasks["score"],
                        ablation=ablation,
                        metric=metric_for(method, org),
                    )
                    times.append(time.perf_counter() - start)
                row[method] = {
                    "seconds": round(statistics.median(times), 4),
                    "edge_auroc": round(edge_auroc(res, truth), 3),
                    "forward": res.cost.forward,
                    "backward": res.cost.backward,
                }
            ratios.append(row["acdc"]["seconds"] / max(row["eap"]["seconds"], 1e-6))
            if org.info.get("kind") == "compiled":
                acdc_compiled.append(row["acdc"]["seconds"])
            out[name][ablation] = row
    return {
        "benchmark": "circuit_discovery",
        "ratio": round(statistics.median(ratios), 1),
        "ratio_meaning": "median t(ACDC) / t(EAP) over organisms and ablations",
        "acdc_seconds_compiled_max": max(acdc_compiled) if acdc_compiled else None,
        "goal_acdc_compiled_seconds": 30,
        "repeats": REPEATS,
        "organisms": out,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:] or list(ORGANISMS))))
