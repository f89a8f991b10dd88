"""Induction-head detection on repeated random token sequences.

Inputs are ``[r, r]`` (:func:`interplab.tasks.induction.repeated_tokens`) with ``r`` a random token sequence of length T (optionally after a BOS
token). A head's induction score is its mean attention, over queries in the second copy, to the
token right after the query token's previous occurrence (key position ``q - T + 1``). An
in-context-learning model predicts the second copy much better than the first: the loss on
each half is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from interplab.core.model import HookedModel
from interplab.core.sites import Component, Site
from interplab.tasks.induction import repeated_tokens

Tensor = torch.Tensor


@dataclass
class InductionResult:
    """scores [layer, head]; loss_first / loss_repeat: mean next-token loss on each half."""

    scores: Tensor
    loss_first: float
    loss_repeat: float
    seq_len: int
    n_seqs: int
    top: list[tuple[int, int, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "scores": self.scores.tolist(),
            "loss_first": self.loss_first,
            "loss_repeat": self.loss_repeat,
            "seq_len": self.seq_len,
            "n_seqs": self.n_seqs,
            "top_heads": [{"layer": l, "head": h, "score": s} for l, h, s in self.top],
        }


def detect_induction_heads(
    model: HookedModel,
    n_layers: int,
    n_heads: int,
    *,
    seq_len: int = 40,
    n_seqs: int = 8,
    vocab: tuple[int, int] = (1000, 10000),
    bos: int | None = None,
    seed: int = 0,
    top_k: int = 5,
) -> InductionResult:
    """Score every head of ``model`` (tokens [b, p] -> logits [b, p, v]) for induction."""
    tokens = repeated_tokens(n_seqs, seq_len, vocab, bos, seed)
    offset = 0 if bos is None else 1
    scores = torch.zeros(n_layers, n_heads)
    q = torch.arange(offset + seq_len, offset + 2 * seq_len)
    k = q - seq_len + 1

    def scorer(layer: int):
        def hook(pattern: Tensor) -> None:  # [b, h, p, p]
            scores[layer] = pattern[:, :, q, k].mean(dim=(0, 2)).float()

        return hook

    hooks = {Site(Component.ATTN_PATTERN, layer): scorer(layer) for layer in range(n_layers)}
    with torch.no_grad(), model.hooks(hooks):
        logits = model.run(tokens)
    loss = F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none"
    ).view(n_seqs, -1)
    first = loss[:, offset : offset + seq_len - 1].mean().item()
    repeat = loss[:, offset + seq_len :].mean().item()
    flat = scores.flatten().topk(min(top_k, scores.numel()))
    top = [
        (int(i) // n_heads, int(i) % n_heads, float(v)) for v, i in zip(flat.values, flat.indices)
    ]
    return InductionResult(scores, first, repeat, seq_len, n_seqs, top)
