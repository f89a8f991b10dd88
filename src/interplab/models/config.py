"""Configuration of the native transformer."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from interplab._json import dataclass_from_json
from interplab.errors import ConfigError

ACT_FNS = ("relu", "gelu")
NORMALIZATIONS = ("none", "layernorm")
ATTENTIONS = ("causal", "bidirectional")


@dataclass(frozen=True)
class TransformerConfig:
    """Shape and behaviour of :class:`interplab.models.transformer.Transformer`.

    Attributes:
        n_layers: number of blocks (attention then MLP, each added to the residual stream).
        d_model: residual stream width.
        n_heads: attention heads per layer.
        d_head: width of each head's query/key/value.
        d_mlp: hidden width of each MLP (ignored when ``attn_only``).
        d_vocab: number of input token ids.
        n_ctx: maximum sequence length (rows of the positional embedding).
        d_vocab_out: number of output logits; defaults to ``d_vocab``. A compiled program with a
            numerical output uses 1.
        act_fn: MLP non-linearity, "relu" or "gelu".
        normalization: "layernorm" (pre-LN before attention, MLP and unembedding) or "none".
        attention: "causal" (decoder) or "bidirectional" (encoder).
        attn_scale: attention scores are divided by this; ``None`` means sqrt(d_head).
            Compiled models bake their softmax temperature into the weights and use 1.0.
        attn_only: no MLP sublayers.
        positional: "learned" adds ``W_pos[pos]``; "none" has no positional embedding.
        init_std: standard deviation of the random weight init (seeded by ``seed``).
        seed: seed for the weight init.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    d_vocab_out: int | None = None
    act_fn: str = "relu"
    normalization: str = "layernorm"
    attention: str = "causal"
    attn_scale: float | None = None
    attn_only: bool = False
    positional: str = "learned"
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_vocab", "n_ctx"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.d_mlp, int) or self.d_mlp < (0 if self.attn_only else 1):
            problems.append(f"d_mlp must be a positive int, got {self.d_mlp!r}")
        if self.d_vocab_out is not None and (
            not isinstance(self.d_vocab_out, int) or self.d_vocab_out < 1
        ):
            problems.append(f"d_vocab_out must be a positive int or None, got {self.d_vocab_out!r}")
        for name, allowed in (
            ("act_fn", ACT_FNS),
            ("normalization", NORMALIZATIONS),
            ("attention", ATTENTIONS),
            ("positional", ("learned", "none")),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.attn_scale is not None and not self.attn_scale > 0:
            problems.append(f"attn_scale must be positive or None, got {self.attn_scale!r}")
        if problems:
            raise ConfigError("invalid TransformerConfig: " + "; ".join(problems))

    @property
    def vocab_out(self) -> int:
        return self.d_vocab_out if self.d_vocab_out is not None else self.d_vocab

    @property
    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else math.sqrt(self.d_head)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict) -> TransformerConfig:
        return dataclass_from_json(TransformerConfig, data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)
