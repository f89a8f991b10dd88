"""SmolLM2-135M activations for the real-model SAE benchmark, collected once and cached on disk.

The offline corpus (docstrings of the installed standard library) is tokenized and cut into
windows of ``ctx`` tokens; a seeded split puts ``held_out`` of the windows aside. The model runs
once over every window and the activations at ``site`` (first position of each window left out:
it is the attention sink, whose residual norm dwarfs the rest) are written as two float32
tensors, ``train`` [n, d_model] and ``held`` [m, d_model], to a .safetensors file in the temp
directory keyed by the arguments. A second call with the same arguments reads the file, so the
model is loaded only once, and a reader of the file (e.g. sae-lens in another interpreter) never
needs the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def activations_file(
    *,
    model: str = "smollm2-135m",
    site: str = "L6.resid_post",
    ctx: int = 64,
    windows: int = 120,
    held_out: float = 0.2,
    seed: int = 0,
    directory: str | os.PathLike | None = None,
) -> Path:
    """Path of the cached .safetensors file of ``train`` / ``held`` activations (built if absent)."""
    key = hashlib.sha256(
        json.dumps([model, site, ctx, windows, held_out, seed]).encode()
    ).hexdigest()[:12]
    path = (
        Path(directory or tempfile.gettempdir()) / f"interplab-bench-acts-{model}-{key}.safetensors"
    )
    if path.exists():
        return path
    import torch
    from safetensors.torch import save_file

    from interplab.core.sites import parse_site
    from interplab.methods.dictionaries import corpus as text
    from interplab.models.pretrained.registry import load, require

    require(model)
    lm = load(model)
    where = parse_site(site)
    lm.check_site(where)
    tok = lm.tokenizer
    wins = text.token_windows(
        tok, text.stdlib_docstrings(), ctx, sep=tok.eos_id, max_windows=windows
    )
    train, held = text.split(wins, held_out, seed)
    out = {}
    with torch.no_grad():
        for name, part in (("train", train), ("held", held)):
            rows = []
            for chunk in part.split(16):
                _, cache = lm.run_with_cache(chunk, [where])
                act = cache[where][:, 1:]
                rows.append(act.reshape(-1, act.shape[-1]).float())
            out[name] = torch.cat(rows).contiguous()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file(
        out,
        str(tmp),
        metadata={
            "model": model,
            "site": site,
            "ctx": str(ctx),
            "windows": str(wins.shape[0]),
            "seed": str(seed),
        },
    )
    os.replace(tmp, path)
    return path
