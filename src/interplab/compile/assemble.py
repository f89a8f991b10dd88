"""Assembly: blocks + embeddings -> a TransformerConfig and a state dict for the native model.

Pass:
    blocks_to_weights(blocks, layout, allocation, graph, value_sets, vocab, max_len) -> Weights

Token ids: 0 is BOS, ``1 + i`` is ``vocab[i]``. Position 0 holds BOS; input position i sits at
residual position i + 1 and its ``indices`` value is i. MLPs sharing a layer are concatenated
along the hidden axis; heads are padded with zeros to a common ``d_head``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interplab.compile import rasp
from interplab.compile.blocks import Block, HeadBlock, MLPBlock, encode_value
from interplab.compile.graph import Allocation, ProgramGraph
from interplab.compile.residual_basis import BOS, ONE, ResidualLayout, ValueSets
from interplab.models.config import TransformerConfig

BOS_ID = 0


@dataclass(frozen=True)
class Weights:
    """A config and the full state dict (float32 tensors) of the compiled transformer.

    ``mlp_columns[(layer, label)]`` = (start, stop) of that SOp's neurons in ``W_in``'s columns;
    ``output_values``: the value each logit stands for (categorical output) or ``None``."""

    cfg: TransformerConfig
    state_dict: Mapping[str, torch.Tensor]
    mlp_columns: Mapping[tuple[int, str], tuple[int, int]]
    output_values: tuple[Any, ...] | None


def blocks_to_weights(
    blocks: Sequence[Block],
    layout: ResidualLayout,
    allocation: Allocation,
    graph: ProgramGraph,
    value_sets: ValueSets,
    vocab: Sequence[Any],
    max_len: int,
    causal: bool = False,
) -> Weights:
    heads = [b for b in blocks if isinstance(b, HeadBlock)]
    mlps = [b for b in blocks if isinstance(b, MLPBlock)]
    d, L, H = layout.d_model, allocation.n_layers, allocation.n_heads
    d_head = max([max(h.W_Q.shape[1], h.W_V.shape[1]) for h in heads] + [1])
    hidden = [sum(m.W_in.shape[1] for m in mlps if m.layer == layer) for layer in range(L)]
    d_mlp = max(hidden + [1])
    out = graph.output
    output_values = None if out.is_numerical else tuple(value_sets[out.label].values or ())
    cfg = TransformerConfig(
        n_layers=L,
        d_model=d,
        n_heads=H,
        d_head=d_head,
        d_mlp=d_mlp,
        d_vocab=len(vocab) + 1,
        n_ctx=max_len + 1,
        d_vocab_out=1 if output_values is None else max(len(output_values), 1),
        act_fn="relu",
        normalization="none",
        attention="causal" if causal else "bidirectional",
        attn_scale=1.0,
        attn_only=False,
        positional="learned",
        init_std=0.0,
        seed=0,
    )
    sd: dict[str, np.ndarray] = {
        "embed.W_E": _token_embedding(graph, layout, vocab),
        "pos_embed.W_pos": _position_embedding(layout, max_len),
        "unembed.W_U": np.zeros((d, cfg.vocab_out)),
        "unembed.b_U": np.zeros(cfg.vocab_out),
    }
    if output_values is None:
        sd["unembed.W_U"][layout.index(out.label), 0] = 1.0
    else:
        for j, v in enumerate(output_values):
            sd["unembed.W_U"][layout.index(out.label, v), j] = 1.0
    columns: dict[tuple[int, str], tuple[int, int]] = {}
    for layer in range(L):
        p = f"blocks.{layer}."
        W_Q, W_K, W_V = (np.zeros((H, d, d_head)) for _ in range(3))
        W_O = np.zeros((H, d_head, d))
        for h in (b for b in heads if b.layer == layer):
            W_Q[h.head, :, : h.W_Q.shape[1]] = h.W_Q
            W_K[h.head, :, : h.W_K.shape[1]] = h.W_K
            W_V[h.head, :, : h.W_V.shape[1]] = h.W_V
            W_O[h.head, : h.W_O.shape[0], :] = h.W_O
        sd.update(
            {
                p + "attn.W_Q": W_Q,
                p + "attn.W_K": W_K,
                p + "attn.W_V": W_V,
                p + "attn.W_O": W_O,
                p + "attn.b_Q": np.zeros((H, d_head)),
                p + "attn.b_K": np.zeros((H, d_head)),
                p + "attn.b_V": np.zeros((H, d_head)),
                p + "attn.b_O": np.zeros(d),
            }
        )
        W_in, b_in, W_out = np.zeros((d, d_mlp)), np.zeros(d_mlp), np.zeros((d_mlp, d))
        start = 0
        for m in (b for b in mlps if b.layer == layer):
            stop = start + m.W_in.shape[1]
            W_in[:, start:stop], b_in[start:stop], W_out[start:stop] = m.W_in, m.b_in, m.W_out
            columns[(layer, m.label)] = (start, stop)
            start = stop
        sd.update(
            {
                p + "mlp.W_in": W_in,
                p + "mlp.b_in": b_in,
                p + "mlp.W_out": W_out,
                p + "mlp.b_out": np.zeros(d),
            }
        )
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.float32) for k, v in sd.items()
    }
    return Weights(cfg, tensors, columns, output_values)


def _token_embedding(
    graph: ProgramGraph, layout: ResidualLayout, vocab: Sequence[Any]
) -> np.ndarray:
    """[len(vocab) + 1, d]: BOS row holds one + bos; token rows hold one, the token, constants."""
    W = np.zeros((len(vocab) + 1, layout.d_model))
    W[:, layout.index(ONE)] = 1.0
    W[BOS_ID, layout.index(BOS)] = 1.0
    constants = [s for s in graph.sops if isinstance(s, rasp.Full)]
    has_tokens = any(isinstance(s, rasp.TokensType) for s in graph.sops)
    for i, token in enumerate(vocab):
        if has_tokens:
            W[i + 1, layout.index("tokens", token)] = 1.0
        for c in constants:
            W[i + 1] += encode_value(layout, c, c.value)
    return W


def _position_embedding(layout: ResidualLayout, max_len: int) -> np.ndarray:
    """[max_len + 1, d]: position 0 (BOS) is zero; position p + 1 holds ``indices = p``."""
    W = np.zeros((max_len + 1, layout.d_model))
    has_indices = any(dirn.label == "indices" for dirn in layout.directions)
    for p in range(max_len):
        if has_indices:
            W[p + 1, layout.index("indices", p)] = 1.0
    return W
