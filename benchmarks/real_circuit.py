"""Wall time and peak memory of the default ``interplab circuit`` run on SmolLM2-135M, IOI.

The default run: EAP-IG (5 midpoint steps) under mean and resample ablation, 32 prompts
scored, MIB's faithfulness curves on 32 held-out prompts beside a random order, the drawn
circuit's f. It runs in a fresh process (so its peak RSS is its own) on ``--threads`` torch
threads (default 2), and reports the split between scoring and faithfulness.

The reference measured side by side in the same run is the model's own cost: one
forward+backward over the same 32 prompts in the same chunks (``fwd_bwd_s``), so
``total_vs_fwd_bwd`` says how many plain training passes the whole study costs.

Prints one JSON line: {"benchmark": "real_circuit", "total_s", "score_s", "curves_s",
"peak_rss_mb", "fwd_bwd_s", "total_vs_fwd_bwd", ...}.
Goal (issue 23): total <= 300 s and <= 4096 MB on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time


def _job(kind: str, n: int, steps: int, batch: int, threads: int, task_name: str, out) -> None:
    import torch

    torch.set_num_threads(threads)
    from interplab.models.pretrained.registry import load
    from interplab.tasks import make_task

    start = time.perf_counter()
    model = load("smollm2-135m")
    task = make_task(task_name, model.tokenizer, n=n, seed=0)
    load_s = time.perf_counter() - start
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    cpu_start = time.process_time()
    extra: dict = {}
    if kind == "fwd_bwd":
        emb = model.model.embed.W_E
        emb.requires_grad_(True)
        for chunk in task.chunks(batch):
            chunk.mean_logit_diff(model.run(chunk.clean)).backward()
        emb.requires_grad_(False)
    else:
        from interplab.eval.circuit_study import circuit_study

        held_out = make_task(task_name, model.tokenizer, n=n, seed=1)
        result = circuit_study(
            model, task, eval_task=held_out, methods=("eap_ig",), steps=steps, batch_size=batch
        )
        extra = {
            "score_s": result["score_seconds"],
            "curves_s": result["curve_seconds"],
            "circuits_run": {a: b["curve_circuits_run"] for a, b in result["ablations"].items()},
            "mib_cpr": {
                a: round(b["summary"]["eap_ig"]["mib_cpr"], 4)
                for a, b in result["ablations"].items()
            },
            "f_at_5pct": {
                a: round(b["summary"]["eap_ig"]["f_at"]["0.05"][0], 4)
                for a, b in result["ablations"].items()
            },
        }
    out.put(
        {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start,
            "load_s": load_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_load_mb": base_rss,
            **extra,
        }
    )


def run(kind: str, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_job, args=(kind, *args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)  # 1 on a machine already busy
    parser.add_argument("--task", default="ioi")
    a = parser.parse_args()
    args = (a.n, a.steps, a.batch_size, a.threads, a.task)
    load_before = os.getloadavg()[0]
    ref = run("fwd_bwd", *args)
    study = run("study", *args)
    total = study["seconds"] + study["load_s"]
    print(
        json.dumps(
            {
                "benchmark": "real_circuit",
                "model": "smollm2-135m",
                "task": a.task,
                "method": "eap_ig",
                "ablations": ["mean", "resample"],
                "n_prompts": a.n,
                "n_eval_prompts": a.n,
                "batch_size": a.batch_size,
                "threads": a.threads,
                "steps": a.steps,
                "total_s": round(total, 1),
                "load_s": round(study["load_s"], 1),
                "score_s": round(study["score_s"], 1),
                "curves_s": round(study["curves_s"], 1),
                "study_cpu_s": round(study["cpu_seconds"], 1),
                "peak_rss_mb": round(study["peak_rss_mb"]),
                "rss_after_load_mb": round(study["rss_after_load_mb"]),
                "circuits_run": study["circuits_run"],
                "mib_cpr": study["mib_cpr"],
                "f_at_5pct": study["f_at_5pct"],
                "fwd_bwd_s": round(ref["seconds"], 2),
                "total_vs_fwd_bwd": round(study["seconds"] / ref["seconds"], 1),
                "load_avg_1min_before": round(load_before, 2),
                "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
                "goal": "total <= 300 s and <= 4096 MB on an idle 2-core machine",
            }
        )
    )


if __name__ == "__main__":
    main()
