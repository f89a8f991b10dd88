"""Logit lens and direct logit attribution (DLA) for a Llama-style :class:`HookedLlama`.

Logit lens: the IOI logit difference read from each layer's ``resid_post`` through the final
RMSNorm and unembedding. DLA: each head's write (``attn_result``) at the final position,
divided by the final RMSNorm's scale (taken from the real final residual, i.e. frozen), dotted
with ``W_U[:, IO] - W_U[:, S]``; the heads' DLA plus the other components' sum to the final
logit difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.core.sites import Component, Site
from interplab.methods.real.ioi import IOIDataset

Tensor = torch.Tensor
C = Component


@dataclass
class LensResult:
    """layer_logit_diff [n_layers] (logit lens after each layer); head_dla [layer, head]."""

    layer_logit_diff: Tensor
    head_dla: Tensor
    final_logit_diff: float

    def to_dict(self) -> dict:
        return {"layer_logit_diff": self.layer_logit_diff.tolist(), "head_dla": self.head_dla.tolist(),
                "final_logit_diff": self.final_logit_diff}


def logit_lens_and_dla(model, ds: IOIDataset) -> LensResult:
    """``model``: a HookedLlama (needs ``model.model.ln_final`` and ``model.model.W_U``)."""
    llama = model.model
    n_layers = llama.cfg.n_layers
    sites = [Site(C.RESID_POST, i) for i in range(n_layers)] + \
            [Site(C.ATTN_RESULT, i) for i in range(n_layers)] + [Site(C.UNEMBED_IN)]
    rows = torch.arange(len(ds))
    with torch.no_grad():
        logits, cache = model.run_with_cache(ds.clean, sites)
        direction = (llama.W_U[:, ds.io_ids] - llama.W_U[:, ds.s_ids]).T  # [n, d]
        lens = torch.stack([(llama.unembed_logits(cache[Site(C.RESID_POST, i)][rows, ds.last])
                             .gather(1, torch.stack([ds.io_ids, ds.s_ids], 1)) @ torch.tensor([1.0, -1.0]))
                            .mean() for i in range(n_layers)])
        final = cache[Site(C.UNEMBED_IN)][rows, ds.last]
        scale = torch.rsqrt(final.pow(2).mean(-1, keepdim=True) + llama.ln_final.eps)  # [n, 1]
        w = direction * llama.ln_final.w * scale  # [n, d]
        dla = torch.stack([torch.einsum("nhd,nd->nh", cache[Site(C.ATTN_RESULT, i)][rows, ds.last], w).mean(0)
                           for i in range(n_layers)])
        final_ld = (logits[rows, ds.last, ds.io_ids] - logits[rows, ds.last, ds.s_ids]).mean().item()
    return LensResult(lens, dla, final_ld)
