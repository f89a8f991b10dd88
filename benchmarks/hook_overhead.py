"""Cost of caching every site, relative to a plain forward pass.

Model: 4 layers, 4 heads, d_model 128 (d_head 32, d_mlp 512), batch 64, sequence 32, CPU.
Prints one JSON line: {"benchmark": "hook_overhead", "ratio": R, ...} where
R = median time(forward with every default site cached) / median time(plain forward), both
measured interleaved in this process with default settings (hooked runs keep freed memory for
reuse: ``interplab.core.memory.keep_freed_memory_for_hooks``); "ratio_opted_out" is the same
measured in a child process after ``return_freed_memory()`` (glibc's defaults, the old
behaviour); then both again after the unbounded ``retain_freed_memory()``
("ratio_retain_freed_memory"). Also reports the ratio when the on-demand per-head sites
(attn_result, attn_*_in, which cost extra compute by nature) are cached too, and, when
TransformerLens is importable, its run_with_cache ratio on the same config.
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians

from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer


def main() -> None:
    opted_out = "--opted-out" in sys.argv
    if opted_out:
        from interplab.core.memory import return_freed_memory

        return_freed_memory()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    torch.manual_seed(0)
    cfg = TransformerConfig(
        n_layers=4,
        d_model=128,
        n_heads=4,
        d_head=32,
        d_mlp=512,
        d_vocab=512,
        n_ctx=32,
        act_fn="gelu",
    )
    model = HookedTransformer(cfg)
    tokens = torch.randint(0, cfg.d_vocab, (64, 32))
    default_sites = model.default_sites

    def plain():
        with torch.no_grad():
            model.model(tokens)

    fns = {
        "plain": plain,
        "cache_default": lambda: model.run_with_cache(tokens, default_sites),
        "cache_all": lambda: model.run_with_cache(tokens),
    }
    result = {"benchmark": "hook_overhead"}
    tl = _transformer_lens(cfg, tokens)
    if tl is not None:
        fns.update(tl)
    med = interleaved_medians(fns, repeats=25, warmup=3)
    if opted_out:
        print(json.dumps({"ratio": med["cache_default"] / med["plain"]}))
        return
    import subprocess

    child = subprocess.run(
        [sys.executable, __file__, "--opted-out"], capture_output=True, text=True, check=True
    )
    opted = json.loads(child.stdout.strip().splitlines()[-1])["ratio"]
    # Same measurement after asking glibc to keep freed memory (interplab.core.memory): the
    # default allocator's page faults, not the hooks, are most of the caching cost.
    from interplab.core.memory import retain_freed_memory

    retained = retain_freed_memory()
    med_retained = (
        interleaved_medians({k: fns[k] for k in ("plain", "cache_default")}, repeats=25, warmup=3)
        if retained
        else None
    )
    result.update(
        {
            "ratio": med["cache_default"] / med["plain"],
            "ratio_opted_out": opted,
            "ratio_all_sites_incl_on_demand": med["cache_all"] / med["plain"],
            "plain_ms": 1000 * med["plain"],
            "ratio_retain_freed_memory": (
                med_retained["cache_default"] / med_retained["plain"] if med_retained else None
            ),
            "plain_ms_retain_freed_memory": 1000 * med_retained["plain"] if med_retained else None,
            "cached_sites": len(default_sites),
            "config": {"n_layers": 4, "n_heads": 4, "d_model": 128, "batch": 64, "seq": 32},
            "goal": 1.15,
            "threads": torch.get_num_threads(),
        }
    )
    if tl is not None:
        result["transformer_lens_ratio"] = med["tl_cache"] / med["tl_plain"]
    else:
        result["transformer_lens_ratio"] = None
        result["transformer_lens_note"] = "transformer_lens not importable in this environment"
    print(json.dumps(result))


def _transformer_lens(cfg: TransformerConfig, tokens: torch.Tensor):
    """TransformerLens on the same config, if importable: HookedTransformer (TL < 4) or a
    TL-native TransformerBridge (TL 4, randomly initialised, no hub access)."""
    fields = dict(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        act_fn="gelu",
        normalization_type="LN",
        device="cpu",
    )
    try:
        from transformer_lens import HookedTransformer as TLModel
        from transformer_lens import HookedTransformerConfig

        tl = TLModel(HookedTransformerConfig(**fields))
    except Exception:
        try:
            from transformer_lens.model_bridge.sources.native import boot

            fields.pop("device")
            tl = boot(fields, device="cpu")
        except Exception as exc:  # not installed, or an API we do not know
            print(f"transformer_lens unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None

    def tl_plain():
        with torch.no_grad():
            tl(tokens)

    def tl_cache():
        with torch.no_grad():
            tl.run_with_cache(tokens)

    return {"tl_plain": tl_plain, "tl_cache": tl_cache}


if __name__ == "__main__":
    main()
