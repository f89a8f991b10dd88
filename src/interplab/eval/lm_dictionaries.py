"""How well a dictionary trained on a language model's activations does, on held-out windows.

    variance_explained   1 - |y - ŷ|² / |y - mean y|² over held-out tokens
    loss_recovered       (CE_zero - CE_spliced) / (CE_zero - CE_clean): next-token cross-entropy
                         with the dictionary's output spliced in at the site (SAE: the site
                         itself; transcoder: the target site, computed from the input site),
                         against the clean model and the site zero-ablated (SAELens' definition)
    dead_fraction        latents that never fire on the held-out tokens
    l0                   mean active latents per token

:func:`feature_dashboards` gives, for the strongest features, their top-activating contexts with
per-token activations, the tokens their decoder direction promotes and suppresses through the
unembedding, and a histogram of their non-zero activations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from interplab.core.sites import Site

Tensor = torch.Tensor


def _ce(logits: Tensor, tokens: Tensor, skip: int = 0) -> float:
    """Mean next-token loss predicted from positions ``skip``..end-1."""
    return float(
        F.cross_entropy(logits[:, skip:-1].flatten(0, 1).float(), tokens[:, skip + 1 :].flatten())
    )


def _encode_rows(dictionary: Any, x: Tensor) -> Tensor:
    return dictionary.encode(x.reshape(-1, x.shape[-1]).float())


@torch.no_grad()
def evaluate_lm_dictionary(
    model: Any,
    dictionary: Any,
    site: Site,
    windows: Tensor,
    *,
    target_site: Site | None = None,
    batch_size: int = 8,
    skip: int = 0,
) -> dict[str, float]:
    """The measures of the module docstring, averaged over ``windows`` [n, ctx] in batches.
    The first ``skip`` positions of each window are left out (and left unchanged when the
    dictionary is spliced in): a model's attention-sink position has a residual norm far larger
    than the rest and would dominate every measure."""
    target = target_site or site
    sse = sst = ce_clean = ce_splice = ce_zero = l0 = 0.0
    fired = None
    n_tok = 0
    ys = []
    for i in range(0, windows.shape[0], batch_size):
        toks = windows[i : i + batch_size]
        with torch.no_grad():
            logits, cache = model.run_with_cache(toks, list(dict.fromkeys([site, target])))
            x, y = cache[site][:, skip:], cache[target][:, skip:]
            lat = _encode_rows(dictionary, x)
            y_hat = dictionary.decode(lat).view(y.shape)
            sse += float(((y - y_hat) ** 2).sum())
            ys.append(y.reshape(-1, y.shape[-1]))
            l0 += float((lat > 0).sum())
            fired = (lat > 0).any(0) if fired is None else fired | (lat > 0).any(0)
            n_tok += lat.shape[0]
            ce_clean += _ce(logits, toks, skip) * len(toks)
            ce_splice += _ce(
                _spliced(model, dictionary, site, target, toks, skip), toks, skip
            ) * len(toks)
            with model.hooks(
                {target: lambda v: torch.cat([v[:, :skip], torch.zeros_like(v[:, skip:])], 1)}
            ):
                ce_zero += _ce(model.run(toks), toks, skip) * len(toks)
    y_all = torch.cat(ys)
    sst = float(((y_all - y_all.mean(0)) ** 2).sum())
    n = windows.shape[0]
    ce_clean, ce_splice, ce_zero = ce_clean / n, ce_splice / n, ce_zero / n
    return {
        "variance_explained": 1 - sse / sst,
        "ce_clean": ce_clean,
        "ce_spliced": ce_splice,
        "ce_zero_ablated": ce_zero,
        "loss_recovered": (ce_zero - ce_splice) / (ce_zero - ce_clean)
        if ce_zero != ce_clean
        else float("nan"),
        "dead_fraction": float(1 - fired.float().mean()) if fired is not None else float("nan"),
        "l0": l0 / max(n_tok, 1),
        "n_tokens": n_tok,
        "n_windows": n,
    }


def _spliced(
    model: Any, dictionary: Any, site: Site, target: Site, toks: Tensor, skip: int = 0
) -> Tensor:
    seen: dict[str, Tensor] = {}

    def record(v: Tensor) -> None:
        seen["x"] = v
        return None

    def replace(v: Tensor) -> Tensor:
        x = seen.get("x", v)[:, skip:]
        out = dictionary(x.reshape(-1, x.shape[-1]).float()).view(v[:, skip:].shape).to(v.dtype)
        return torch.cat([v[:, :skip], out], 1)

    hooks = {target: replace} if target == site else {site: record, target: replace}
    with torch.no_grad(), model.hooks(hooks):
        return model.run(toks)


@torch.no_grad()
def feature_dashboards(
    model: Any,
    dictionary: Any,
    site: Site,
    windows: Tensor,
    tokenizer: Any,
    *,
    n_features: int = 24,
    top: int = 5,
    before: int = 8,
    after: int = 2,
    batch_size: int = 8,
    unembed: Tensor | None = None,
    skip: int = 0,
) -> list[dict[str, Any]]:
    """Dashboards of the ``n_features`` features with the largest activations on ``windows``
    (the first ``skip`` positions of each window count as inactive)."""
    acts = []
    for i in range(0, windows.shape[0], batch_size):
        with torch.no_grad():
            _, cache = model.run_with_cache(windows[i : i + batch_size], [site])
            a = _encode_rows(dictionary, cache[site]).view(*cache[site].shape[:2], -1)
            a[:, :skip] = 0
            acts.append(a.reshape(-1, a.shape[-1]))
    a = torch.cat(acts)  # [n * ctx, latents]
    ctx = windows.shape[1]
    flat = windows.reshape(-1)
    chosen = a.max(0).values.topk(min(n_features, a.shape[1])).indices.tolist()
    decode = (lambda i: tokenizer.decode([int(i)])) if tokenizer is not None else str
    W_U = unembed
    out = []
    for f in chosen:
        col = a[:, f]
        live = col[col > 0]
        contexts = []
        for r in col.topk(min(top, int((col > 0).sum()))).indices.tolist():
            w, p = divmod(r, ctx)
            lo, hi = max(0, p - before), min(ctx, p + after + 1)
            rows = slice(w * ctx + lo, w * ctx + hi)
            contexts.append(
                {
                    "tokens": [decode(t) for t in flat[rows]],
                    "acts": [round(float(v), 4) for v in col[rows]],
                }
            )
        entry: dict[str, Any] = {
            "id": f,
            "max": float(col.max()),
            "density": float((col > 0).float().mean()),
            "contexts": contexts,
            "hist": torch.histc(live, bins=12, min=0, max=float(live.max())).tolist()
            if len(live)
            else [],
        }
        if W_U is not None:
            effect = dictionary.W_dec[f].float() @ W_U.float()
            up, down = effect.topk(5), (-effect).topk(5)
            entry["logits"] = {
                "up": [[decode(i), float(v)] for v, i in zip(up.values, up.indices)],
                "down": [[decode(i), -float(v)] for v, i in zip(down.values, down.indices)],
            }
        out.append(entry)
    return out


def tokens_per_second(steps: int, batch_size: int, seconds: float) -> float:
    return steps * batch_size / seconds if seconds > 0 else float("nan")


__all__: Sequence[str] = ("evaluate_lm_dictionary", "feature_dashboards")
