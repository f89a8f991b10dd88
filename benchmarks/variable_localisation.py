"""Causal-variable localisation on SmolLM2-135M (MIB track 2): the study of
:mod:`interplab.eval.variable_localisation` in its ``quick`` or ``full`` configuration, with wall
times, written as JSON and printed as a featuriser × layer table per variable and k.

    .venv/bin/python benchmarks/variable_localisation.py --config quick --threads 2 --out r.json

Goal: quick <= ~60 s and full <= ~10 min on an idle 2-core machine (model load not counted).
Prints one JSON line last: {"benchmark": "variable_localisation", "config", "total_s",
"model_runs_s", "verdict": {variable: {...}}}.
"""

from __future__ import annotations

import argparse
import json
import time


def table(result: dict) -> str:
    """Plain-text tables: per variable and k, featurisers (rows) × layers (columns)."""
    lines = []
    cfg = result["config"]
    for variable in cfg["variables"]:
        counts = result["counts"][variable]
        lines.append(
            f"\n== {variable}: n_test={counts['n_test']} (of {counts['test_drawn']}), "
            f"n_train={counts['n_train']} (of {counts['train_drawn']})"
        )
        cells = [c for c in result["cells"] if c["variable"] == variable]
        layers = sorted({c["layer"] for c in cells})
        head = "featuriser".ljust(14) + "".join(f"L{layer}".ljust(20) for layer in layers)

        def fmt(est: dict) -> str:
            return f"{est['value']:.2f} [{est['low']:.2f},{est['high']:.2f}]".ljust(20)

        for k in cfg["ks"]:
            lines += [f"-- k={k}", head]
            for f in cfg["featurisers"]:
                row = {c["layer"]: c["iia"] for c in cells if c["featuriser"] == f and c["k"] == k}
                lines.append(f.ljust(14) + "".join(fmt(row[layer]) for layer in layers))
        full = {c["layer"]: c["iia"] for c in cells if c["featuriser"] == "full"}
        none = {int(k): v for k, v in result["no_intervention"][variable].items()}
        lines.append("full".ljust(14) + "".join(fmt(full[layer]) for layer in layers))
        lines.append("none".ljust(14) + "".join(fmt(none[layer]) for layer in layers))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("quick", "full"), default="quick")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the study's JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from interplab.eval import variable_localisation as vl
    from interplab.models.io import atomic_write_text
    from interplab.models.pretrained.registry import load

    start = time.perf_counter()
    model = load("smollm2-135m")
    load_s = time.perf_counter() - start
    result = vl.localise(model, vl.CONFIGS[args.config], progress=print).as_dict()
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1))
    print(table(result))
    print(
        json.dumps(
            {
                "benchmark": "variable_localisation",
                "config": args.config,
                "threads": args.threads,
                "load_s": round(load_s, 2),
                "total_s": result["seconds"]["total"],
                "model_runs_s": result["seconds"]["model_runs"],
                "verdict": result["verdict"],
            }
        )
    )


if __name__ == "__main__":
    main()
