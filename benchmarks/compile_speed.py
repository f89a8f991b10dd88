"""Compile speed of the RASP compiler over the program library; prints ONE JSON line.

    python benchmarks/compile_speed.py [--repeats 3] [--tracr-python /path/to/tracr-venv/bin/python]

median_seconds is the median over library programs of each program's median compile time, with
the ground truth included (value-set inference, weights, and the measured circuit: every edge
ablated under zero/mean/resample on 64 task pairs generated beforehand). ``weights_only_seconds``
skips the circuit measurement (``measure_circuit=False``): the work Tracr does.

``apply``: calling compiled models (``model(inputs)``: encode, forward, decode) with torch's
default thread count against the count the model picks (one thread for small work), measured
round-robin in the same run: one input, and a batch of 256 inputs, on three programs.
``apply.speedup`` is default / chosen (median over the calls); above 1 the choice pays.

Reference: Tracr takes 3.5-6 s per program on this machine size (measured by the issue author,
2 CPU cores). With --tracr-python pointing at a venv where `tracr-pypi` is installed
(`python -m venv v && v/bin/pip install tracr-pypi`), the same classic programs are compiled by
Tracr side by side, in that interpreter, and the measured ratio is reported as well.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from _timing import interleaved_medians

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, read before anything sets it
APPLY_PROGRAMS = ("reverse", "sort", "causal-induction")

REFERENCE_SECONDS = 3.5  # Tracr, per program, lower end of the quoted 3.5-6 s range

# Run by --tracr-python in tracr's own interpreter (never imported here): the classic programs
# with the same vocabularies and max lengths as interplab's library.
TRACR_SCRIPT = r"""
import json, statistics, sys, time
from tracr.compiler import compiling, lib
from tracr.rasp import rasp
def progs():
    yield "length", lib.make_length(), {"a","b","c"}, 5
    yield "reverse", lib.make_reverse(rasp.tokens), {"a","b","c"}, 5
    yield "hist", lib.make_hist(), {"a","b","c"}, 5
    yield "sort_unique", lib.make_sort_unique(rasp.tokens, rasp.tokens), {0,1,2,3,4,5}, 5
    yield "sort", lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1), {1,2,3,4}, 5
    yield "sort_freq", lib.make_sort_freq(max_seq_len=5), {"a","b","c"}, 5
    yield "frac_prevs", lib.make_frac_prevs(rasp.tokens == "x"), {"a","b","x"}, 5
    yield "pair_balance", lib.make_pair_balance(rasp.tokens, "(", ")"), {"(",")","a"}, 5
    yield "shuffle_dyck", lib.make_shuffle_dyck(pairs=["()"]), {"(",")"}, 6
    yield "shuffle_dyck2", lib.make_shuffle_dyck2(), {"(",")","{","}"}, 5
    yield "shift_by", lib.shift_by(2, rasp.tokens), {"a","b","c"}, 5
    yield "detect_pattern", lib.detect_pattern(rasp.tokens, "abc"), {"a","b","c"}, 5
    yield "count_less_freq", lib.make_count_less_freq(2), {"a","b","c","d"}, 5
out = {}
for name, prog, vocab, n in progs():
    ts = []
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        t = time.perf_counter()
        try:
            compiling.compile_rasp_to_model(prog, vocab=vocab, max_seq_len=n, compiler_bos="BOS")
        except Exception as e:
            out[name] = f"error: {type(e).__name__}: {str(e)[:100]}"; break
        ts.append(time.perf_counter() - t)
    else:
        out[name] = round(statistics.median(ts), 4)
print(json.dumps(out))
"""


def time_tracr(python: str, repeats: int) -> dict[str, object]:
    import subprocess

    proc = subprocess.run(
        [python, "-c", TRACR_SCRIPT, str(repeats)], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_interplab(repeats: int) -> dict[str, dict[str, float]]:
    import torch

    from interplab.compile.programs import LIBRARY

    torch.set_num_threads(1)
    out = {}
    for name, spec in LIBRARY.items():
        pairs = spec.task_pairs(64, seed=0)
        spec.compile(pairs=pairs)  # warm caches (first torch calls)
        full, bare = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            model = spec.compile(pairs=pairs)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            spec.compile(pairs=pairs, measure_circuit=False)
            bare.append(time.perf_counter() - t)
        out[name] = {
            "seconds": round(statistics.median(full), 4),
            "weights_only_seconds": round(statistics.median(bare), 4),
            "d_model": model.cfg.d_model,
            "layers": model.cfg.n_layers,
            "params": model.n_params,
        }
    return out


def time_apply(repeats: int) -> dict[str, object]:
    """Seconds per model call with torch's default threads vs the model's choice."""
    from interplab.compile.programs import LIBRARY

    rows = {}
    for name in APPLY_PROGRAMS:
        spec = LIBRARY[name]
        model = spec.compile(measure_circuit=False)
        one = spec.inputs(limit=1, seed=0)[:1]
        batch = spec.inputs(limit=256, seed=1)
        for label, inputs in (("one_input", one[0]), ("batch_256", batch)):

            def call(threads: int | None, inputs=inputs) -> None:
                model.threads = threads  # noqa: B023 (called before the loop moves on)
                model(inputs)  # noqa: B023 (called before the loop moves on)

            times = interleaved_medians(
                {"default": lambda c=call: c(DEFAULT_THREADS), "chosen": lambda c=call: c(None)},
                repeats=max(repeats * 7, 15),
                warmup=3,
            )
            rows[f"{name}/{label}"] = {
                "default_seconds": round(times["default"], 6),
                "chosen_seconds": round(times["chosen"], 6),
                "speedup": round(times["default"] / times["chosen"], 2),
            }
        model.threads = None
    speedups = [r["speedup"] for r in rows.values()]
    return {
        "default_threads": DEFAULT_THREADS,
        "calls": rows,
        "speedup_median": round(statistics.median(speedups), 2),
        "speedup_min": min(speedups),
        "speedup_max": max(speedups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tracr-python",
        default=None,
        help="python of a venv with tracr-pypi installed: time Tracr side by side",
    )
    args = parser.parse_args()
    apply = time_apply(args.repeats)
    per_program = time_interplab(args.repeats)
    seconds = [v["seconds"] for v in per_program.values()]
    bare = [v["weights_only_seconds"] for v in per_program.values()]
    median = statistics.median(seconds)
    extra: dict[str, object] = {}
    if args.tracr_python:
        tracr = time_tracr(args.tracr_python, 1)
        common = [k for k, v in tracr.items() if isinstance(v, float) and k in per_program]
        if common:
            t_med = statistics.median(tracr[k] for k in common)  # type: ignore[misc]
            ours = statistics.median(per_program[k]["seconds"] for k in common)
            extra = {
                "tracr_seconds_per_program": tracr,
                "tracr_median_seconds": t_med,
                "measured_speedup_vs_tracr": round(t_med / ours, 1),
                "measured_on": sorted(common),
            }
        else:
            extra = {"tracr_seconds_per_program": tracr}
    print(
        json.dumps(
            {
                "benchmark": "compile_speed",
                "median_seconds": round(median, 4),
                "total_seconds": round(sum(seconds), 3),
                "weights_only_median_seconds": round(statistics.median(bare), 4),
                "programs": len(seconds),
                "per_program": per_program,
                "reference_seconds_per_program": "3.5-6 (Tracr, measured on this machine size, quoted)",
                "speedup_vs_reference": round(REFERENCE_SECONDS / median, 1),
                "apply": apply,
                "python": sys.version.split()[0],
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
