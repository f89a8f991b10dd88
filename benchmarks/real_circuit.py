"""Wall time and peak memory of full-graph EAP and EAP-IG on SmolLM2-135M, IOI, 32 prompts.

Each method runs in a fresh process (so its peak RSS is its own) on ``--threads`` torch threads
(default 2), with wall and CPU seconds (CPU seconds stay meaningful on a busy machine). The
reference measured side by side in the same run is the model's own cost: one
forward+backward over the same 32 prompts in the same chunks, so ``eap_ig_vs_fwd_bwd`` is the
overhead of scoring all 123,211 edges per integration step.

Prints one JSON line: {"benchmark": "real_circuit", "eap_s", "eap_peak_rss_mb", "eap_ig_s",
"eap_ig_peak_rss_mb", "steps", "fwd_bwd_s", "eap_ig_vs_fwd_bwd", ...}.
Goal (issue 16): EAP-IG with 8 steps <= 300 s and <= 4096 MB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time


def _job(kind: str, n: int, steps: int, batch: int, threads: int, out) -> None:
    import torch

    torch.set_num_threads(threads)
    from interplab.methods.circuits import find_circuit
    from interplab.models.pretrained.registry import load
    from interplab.tasks import make_task

    model = load("smollm2-135m")
    task = make_task("ioi", model.tokenizer, n=n, seed=0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    cpu_start = time.process_time()
    if kind == "fwd_bwd":
        emb = model.model.embed.W_E
        emb.requires_grad_(True)
        for chunk in task.chunks(batch):
            chunk.mean_logit_diff(model.run(chunk.clean)).backward()
        emb.requires_grad_(False)
        extra = {}
    else:
        ig = {"steps": steps} if kind == "eap_ig" else {}
        scores = find_circuit(kind, model, task, ablation="mean", batch_size=batch, **ig)
        extra = {
            "signed_sum": scores.extra["signed_sum"],
            "passes": [scores.cost.forward, scores.cost.backward],
        }
    seconds = time.perf_counter() - start
    out.put(
        {
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_start,
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
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)  # 1 on a machine already busy
    a = parser.parse_args()
    args = (a.n, a.steps, a.batch_size, a.threads)
    ref = run("fwd_bwd", *args)
    eap = run("eap", *args)
    ig = run("eap_ig", *args)
    print(
        json.dumps(
            {
                "benchmark": "real_circuit",
                "model": "smollm2-135m",
                "task": "ioi",
                "n_prompts": a.n,
                "batch_size": a.batch_size,
                "threads": a.threads,
                "steps": a.steps,
                "n_edges": 123211,
                "fwd_bwd_s": round(ref["seconds"], 2),
                "fwd_bwd_cpu_s": round(ref["cpu_seconds"], 2),
                "eap_cpu_s": round(eap["cpu_seconds"], 2),
                "eap_ig_cpu_s": round(ig["cpu_seconds"], 2),
                "eap_s": round(eap["seconds"], 2),
                "eap_peak_rss_mb": round(eap["peak_rss_mb"]),
                "eap_ig_s": round(ig["seconds"], 2),
                "eap_ig_peak_rss_mb": round(ig["peak_rss_mb"]),
                "rss_after_load_mb": round(ig["rss_after_load_mb"]),
                "eap_ig_vs_fwd_bwd": round(ig["seconds"] / (a.steps * ref["seconds"]), 2),
                "eap_ig_signed_sum": ig["signed_sum"],
                "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
                "goal": "eap_ig (8 steps) <= 300 s and <= 4096 MB on 2 cores",
            }
        )
    )


if __name__ == "__main__":
    main()
