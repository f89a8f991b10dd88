"""Wall time and edge AUROC of circuit-discovery methods on trained organisms.

Prints one JSON line: {"benchmark": "circuit_discovery", "organisms": {name: {ablation:
{method: {"seconds", "edge_auroc", "forward", "backward"}}}}}. Organisms are trained (or loaded
from the cache) first; their training time is not counted.
"""

from __future__ import annotations

import json
import sys

import torch

from interplab.eval.circuits import edge_auroc
from interplab.methods.circuits import find_circuit
from interplab.zoo.organisms import ORGANISMS, load_organism

METHODS = ("patch_edges", "acdc", "eap", "eap_ig", "activation_norm", "weight_norm", "random")


def main(names: list[str]) -> dict:
    torch.set_num_threads(2)
    out: dict = {}
    for name in names:
        org = load_organism(name)
        out[name] = {"info": {k: org.info[k] for k in ("accuracy", "train_seconds") if k in org.info}}
        for ablation in ("zero", "mean", "resample"):
            truth = org.ground_truth[ablation]
            row = {}
            for method in METHODS:
                metric = "logit_diff" if method in ("eap", "eap_ig") else "kl"
                res = find_circuit(method, org.model, org.task, ablation=ablation, metric=metric)
                row[method] = {"seconds": round(res.seconds, 3),
                               "edge_auroc": round(edge_auroc(res, truth), 3),
                               "forward": res.forward_passes, "backward": res.backward_passes}
            out[name][ablation] = row
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or list(ORGANISMS)
    print(json.dumps({"benchmark": "circuit_discovery", "organisms": main(names)}))
