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


class WordTokenizer:
    """Whitespace-and-punctuation word tokenizer over a growing vocabulary (ids from 1): enough
    for the IOI templates on a tiny random Llama."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        words = text.replace(",", " ,").replace(".", " .").split(" ")
        out = []
        for i, w in enumerate(words):
            w = (" " + w) if i or text.startswith(" ") else w
            if w.strip():
                out.append(self.vocab.setdefault(w, len(self.vocab) + 1))
        return out
