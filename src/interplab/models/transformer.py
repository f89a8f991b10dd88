"""The native transformer: a readable decoder/encoder with a hook point at every site.

Parameter layout (state_dict names; h = head, d = d_model, dh = d_head, m = d_mlp):

    embed.W_E [vocab, d]           pos_embed.W_pos [n_ctx, d]
    blocks.{l}.attn.W_Q/W_K/W_V [h, d, dh]   b_Q/b_K/b_V [h, dh]   W_O [h, dh, d]   b_O [d]
    blocks.{l}.mlp.W_in [d, m]  b_in [m]  W_out [m, d]  b_out [d]
    blocks.{l}.ln1.w/.b, blocks.{l}.ln2.w/.b, ln_final.w/.b   (only with normalization="layernorm")
    unembed.W_U [d, vocab_out]  unembed.b_U [vocab_out]

Per-head inputs (``attn_q_in`` …) and per-head outputs (``attn_result``) are materialised only
while something is hooked there, so a plain forward pays nothing for them.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from interplab.core.hooks import AttentionHooks, Binding, BlockHooks, HookPoint, ModelHooks
from interplab.core.model import HookedModel
from interplab.core.sites import ATTN_HOOK_SITES, Component, Site
from interplab.errors import ShapeError
from interplab.models.config import TransformerConfig

Tensor = torch.Tensor


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w, self.b, eps=1e-5)


class Embed(nn.Module):
    def __init__(self, vocab: int, d: int):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(vocab, d))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self, n_ctx: int, d: int):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(n_ctx, d))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.W_pos[: tokens.shape[1]].unsqueeze(0).expand(tokens.shape[0], -1, -1)


class Unembed(nn.Module):
    def __init__(self, d: int, vocab_out: int):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(d, vocab_out))
        self.b_U = nn.Parameter(torch.zeros(vocab_out))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.W_U + self.b_U


class Attention(AttentionHooks):
    # set with setattr in __init__; declared here for the type checker
    W_Q: nn.Parameter
    W_K: nn.Parameter
    W_V: nn.Parameter
    b_Q: nn.Parameter
    b_K: nn.Parameter
    b_V: nn.Parameter
    hook_q_in: HookPoint
    hook_k_in: HookPoint
    hook_v_in: HookPoint

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.cfg = cfg
        for name in ("W_Q", "W_K", "W_V"):
            setattr(self, name, nn.Parameter(torch.empty(h, d, dh)))
        for name in ("b_Q", "b_K", "b_V"):
            setattr(self, name, nn.Parameter(torch.zeros(h, dh)))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.b_O = nn.Parameter(torch.zeros(d))
        for name in ("q_in", "k_in", "v_in", "q", "k", "v", "scores", "pattern", "z", "result"):
            setattr(self, f"hook_{name}", HookPoint())

    def forward(self, x: Tensor, ln: nn.Module) -> Tensor:
        """x: residual stream [b, p, d] -> attention output [b, p, d]."""
        split = self.hook_q_in.active or self.hook_k_in.active or self.hook_v_in.active
        if split:  # each head gets its own copy of its input: [b, p, h, d]
            per_head = x.unsqueeze(2).expand(-1, -1, self.cfg.n_heads, -1)
            q = torch.einsum("bphd,hde->bphe", ln(self.hook_q_in(per_head)), self.W_Q)
            k = torch.einsum("bphd,hde->bphe", ln(self.hook_k_in(per_head)), self.W_K)
            v = torch.einsum("bphd,hde->bphe", ln(self.hook_v_in(per_head)), self.W_V)
        else:
            normed = ln(x)
            q = torch.einsum("bpd,hde->bphe", normed, self.W_Q)
            k = torch.einsum("bpd,hde->bphe", normed, self.W_K)
            v = torch.einsum("bpd,hde->bphe", normed, self.W_V)
        q = self.hook_q(q + self.b_Q)
        k = self.hook_k(k + self.b_K)
        v = self.hook_v(v + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.cfg.scale
        if self.cfg.attention == "causal":
            n = x.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        scores = self.hook_scores(scores)
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        if self.hook_result.active:
            result = self.hook_result(torch.einsum("bphe,hed->bphd", z, self.W_O))
            return result.sum(dim=2) + self.b_O
        return torch.einsum("bphe,hed->bpd", z, self.W_O) + self.b_O


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = nn.ReLU() if cfg.act_fn == "relu" else nn.GELU()
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        post = self.hook_post(self.act(pre))
        return post @ self.W_out + self.b_out


class Block(BlockHooks):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        norm = cfg.normalization == "layernorm"
        self.ln1 = LayerNorm(cfg.d_model) if norm else nn.Identity()
        self.attn = Attention(cfg)
        self.ln2 = (
            (LayerNorm(cfg.d_model) if norm else nn.Identity()) if not cfg.attn_only else None
        )
        self.mlp = MLP(cfg) if not cfg.attn_only else None
        for name in ("resid_pre", "attn_out", "resid_mid", "mlp_in", "mlp_out", "resid_post"):
            setattr(self, f"hook_{name}", HookPoint())

    def forward(self, x: Tensor) -> Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(x, self.ln1)))
        if self.mlp is not None:
            assert self.ln2 is not None  # set whenever mlp is
            mlp_in = self.hook_mlp_in(x)
            x = x + self.hook_mlp_out(self.mlp(self.ln2(mlp_in)))
        return self.hook_resid_post(x)


class Transformer(ModelHooks):
    """The plain module: tokens [batch, pos] (int64) -> logits [batch, pos, vocab_out]."""

    # set with setattr in __init__; declared here for the type checker
    hook_pos_embed: HookPoint

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg.d_vocab, cfg.d_model)
        self.pos_embed = PosEmbed(cfg.n_ctx, cfg.d_model) if cfg.positional == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = (
            LayerNorm(cfg.d_model) if cfg.normalization == "layernorm" else nn.Identity()
        )
        self.unembed = Unembed(cfg.d_model, cfg.vocab_out)
        for name in ("embed", "pos_embed", "unembed_in", "logits"):
            setattr(self, f"hook_{name}", HookPoint())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Seeded init: normal(0, init_std) for matrices, zeros for biases, ones for LN gains."""
        gen = torch.Generator().manual_seed(self.cfg.seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith((".w",)):
                    p.fill_(1.0)
                elif name.split(".")[-1].startswith("b"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * self.cfg.init_std)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.hook_embed(self.embed(tokens))
        if self.pos_embed is not None:
            x = x + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            x = block(x)
        x = self.hook_unembed_in(x)
        return self.hook_logits(self.unembed(self.ln_final(x)))


def transformer_bindings(model: Transformer) -> dict[Site, Binding]:
    """Every typed site of a native transformer, bound to its hook point."""
    C = Component
    cfg = model.cfg
    out: dict[Site, Binding] = {Site(C.EMBED): Binding(model.hook_embed)}
    if model.pos_embed is not None:
        out[Site(C.POS_EMBED)] = Binding(model.hook_pos_embed)
    inputs = {name: Component(f"attn_{name}") for name in ("q_in", "k_in", "v_in")}
    attn_sites = {**inputs, **ATTN_HOOK_SITES, "result": C.ATTN_RESULT}
    for layer, module in enumerate(model.blocks):
        block = cast(Block, module)
        out[Site(C.RESID_PRE, layer)] = Binding(block.hook_resid_pre)
        for attr, comp in attn_sites.items():
            out[Site(comp, layer)] = Binding(getattr(block.attn, f"hook_{attr}"))
        out[Site(C.ATTN_OUT, layer)] = Binding(block.hook_attn_out)
        out[Site(C.RESID_MID, layer)] = Binding(block.hook_resid_mid)
        if block.mlp is not None:
            out[Site(C.MLP_IN, layer)] = Binding(block.hook_mlp_in)
            out[Site(C.MLP_PRE, layer)] = Binding(block.mlp.hook_pre)
            out[Site(C.MLP_POST, layer)] = Binding(block.mlp.hook_post)
            out[Site(C.MLP_OUT, layer)] = Binding(block.hook_mlp_out)
        out[Site(C.RESID_POST, layer)] = Binding(block.hook_resid_post)
    out[Site(C.UNEMBED_IN)] = Binding(model.hook_unembed_in)
    out[Site(C.LOGITS)] = Binding(model.hook_logits)
    assert len(model.blocks) == cfg.n_layers
    return out


#: Sites that cost extra compute when hooked (built only on demand).
ON_DEMAND_COMPONENTS = frozenset(
    {Component.ATTN_Q_IN, Component.ATTN_K_IN, Component.ATTN_V_IN, Component.ATTN_RESULT}
)


class HookedTransformer(HookedModel):
    """A native :class:`Transformer` as a :class:`HookedModel`. Inputs: int64 tokens [batch, pos]."""

    def __init__(self, cfg: TransformerConfig | Transformer, name: str = "transformer"):
        model = cfg if isinstance(cfg, Transformer) else Transformer(cfg)
        self.cfg = model.cfg
        super().__init__(
            model,
            transformer_bindings(model),
            validate=self._check_tokens,
            batch_size_of=lambda t: int(t.shape[0]),
            name=name,
        )

    @property
    def model(self) -> Transformer:
        return self.module  # type: ignore[return-value]

    @property
    def default_sites(self) -> tuple[Site, ...]:
        """All sites except the on-demand per-head inputs/results (what "cache everything" caches)."""
        return tuple(s for s in self.sites if s.component not in ON_DEMAND_COMPONENTS)

    def _check_tokens(self, tokens: Any) -> None:
        cfg = self.cfg
        if not isinstance(tokens, Tensor):
            raise ShapeError(
                f"{self.name} takes a tensor of token ids [batch, pos], got "
                f"{type(tokens).__name__}; use torch.tensor(list_of_lists)"
            )
        if tokens.dim() != 2:
            raise ShapeError(
                f"{self.name} takes token ids of shape [batch, pos], got shape "
                f"{tuple(tokens.shape)}; add a batch axis with tokens.unsqueeze(0)"
            )
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ShapeError(
                f"token ids must be integers (int64), got {tokens.dtype}; use tokens.long()"
            )
        if tokens.shape[1] > cfg.n_ctx:
            raise ShapeError(
                f"sequence length {tokens.shape[1]} exceeds the model's n_ctx={cfg.n_ctx}; "
                "truncate the inputs"
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= cfg.d_vocab):
            raise ShapeError(
                f"token ids must lie in [0, {cfg.d_vocab}), found "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
