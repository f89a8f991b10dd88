"""Load time and peak RSS of SmolLM2-135M, and cache memory vs the number of requested sites.

Prints one JSON line: {"benchmark": "pretrained_memory", "load_s", "peak_rss_mb", "cache_mb": {n_sites: MB}, ...}.
Goal: load <= 60 s and <= 2048 MB; cache memory proportional to the sites requested.
"""

from __future__ import annotations

import json
import resource
import time

import torch

from interplab import Component, Site
from interplab.models.pretrained.registry import load


def main() -> None:
    start = time.perf_counter()
    model = load("smollm2-135m")
    load_s = time.perf_counter() - start
    peak_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = torch.randint(1000, 10000, (8, 64), generator=torch.Generator().manual_seed(0))
    cache_mb = {}
    for n in (1, 5, 10, 30):
        sites = [Site(Component.RESID_POST, layer) for layer in range(n)]
        _, cache = model.run_with_cache(tokens, sites)
        cache_mb[n] = sum(t.numel() * t.element_size() for t in cache.values()) / 2**20
    per_site = cache_mb[1]
    print(
        json.dumps(
            {
                "benchmark": "pretrained_memory",
                "model": "smollm2-135m",
                "load_s": round(load_s, 2),
                "peak_rss_after_load_mb": round(peak_after_load),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "cache_mb": {k: round(v, 2) for k, v in cache_mb.items()},
                "proportional": all(abs(v - k * per_site) < 1e-6 * k for k, v in cache_mb.items()),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
