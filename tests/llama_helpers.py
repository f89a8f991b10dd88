"""A randomly initialised hooked Llama for tests (seeded; norms near 1, matrices ~N(0, 0.3²))."""

from __future__ import annotations

import torch

from interplab.models.pretrained.llama import HookedLlama, Llama, LlamaConfig


def random_llama(cfg: LlamaConfig, seed: int = 0) -> HookedLlama:
    model = Llama(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.dim() == 1 else 0.0))
    return HookedLlama(model.eval())
