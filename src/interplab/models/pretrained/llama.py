"""A readable Llama-style decoder (RMSNorm, rotary positions, grouped-query attention, SwiGLU)
with a hook point at every site, in the style of :mod:`interplab.models.transformer`.

Parameter layout (h = query heads, g = key/value heads, d = d_model, dh = d_head, m = d_mlp):

    embed.W_E [vocab, d]
    blocks.{l}.ln1.w [d]   blocks.{l}.ln2.w [d]   ln_final.w [d]
    blocks.{l}.attn.W_Q [d, h*dh]  W_K/W_V [d, g*dh]  W_O [h*dh, d]    (no biases; head-major,
                                 fused for speed: head i of W_Q is W_Q[:, i*dh:(i+1)*dh])
    blocks.{l}.mlp.W_gate/W_up [d, m]  W_down [m, d]
    unembed.W_U [d, vocab]  (absent when ``tie_embeddings``: logits use embed.W_E.T)

Rotary embedding uses the Hugging Face "rotate half" pairing (dimension i with i + dh/2).

Sites and shapes (b = batch, p = pos):

    embed                              [b, p, d]
    resid_pre / resid_mid / resid_post [b, p, d]
    attn_q, attn_k, attn_v             [b, p, h, dh]  q and k *after* rotary; k and v hold one
                                       copy per **query** head (after the grouped-query repeat),
                                       so a per-head intervention on k/v touches that query head only
    attn_scores, attn_pattern          [b, h, p, p]
    attn_z                             [b, p, h, dh]
    attn_result                        [b, p, h, d]   (on demand: built only while hooked)
    attn_q_in, attn_k_in, attn_v_in    [b, p, h, d]   each query head's own copy of the residual
                                       it reads (before ln1), on demand: while any is hooked the
                                       block feeds every head its own copy (edge-level circuits)
    attn_out, mlp_in, mlp_out          [b, p, d]
    mlp_pre                            [b, p, m]      gate pre-activation x W_gate
    mlp_post                           [b, p, m]      silu(gate) * (x W_up), the input of W_down
    unembed_in                         [b, p, d]      before the final RMSNorm
    logits                             [b, p, vocab]

A :class:`PartialRun` input runs only layers ``start_layer..`` from a given residual and
unembeds only the given positions: patching sweeps use it to skip work that cannot change. A
:class:`ScoredRun` runs the whole model on tokens (every hook fires, the embedding's included)
and unembeds only the scored positions: the unembedding is a fifth of SmolLM2's forward cost,
and a task that scores one position of fifteen needs one fifteenth of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from interplab.core.hooks import AttentionHooks, Binding, BlockHooks, HookPoint, ModelHooks
from interplab.core.model import HookedModel
from interplab.core.sites import ATTN_HOOK_SITES, Component, Site
from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


@dataclass(frozen=True)
class LlamaConfig:
    """Shape and constants of a Llama-style model (SmolLM2-135M: 30 layers, 9/3 heads, d 576)."""

    d_vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_mlp: int
    n_ctx: int = 2048
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            problems.append(
                f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )
        if problems:
            raise ConfigError("invalid LlamaConfig: " + "; ".join(problems))

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartialRun:
    """Run layers ``start_layer..`` from ``resid`` [b, p, d] (the resid_pre of that layer);
    unembed only at ``positions`` [b] (one position per row); logits come back as [b, 1, vocab]."""

    resid: Tensor
    start_layer: int
    positions: Tensor | None = None

    def __len__(self) -> int:
        return int(self.resid.shape[0])


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.w


def rotary(
    n: int, dh: int, base: float, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """cos, sin tables [n, dh] for rotate-half rotary embedding."""
    inv = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float32, device=device) / dh))
    ang = torch.outer(torch.arange(n, dtype=torch.float32, device=device), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [b, p, h, dh] rotated by position; cos/sin [p, dh]."""
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


class Attention(AttentionHooks):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        h, g, d, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_head
        self.cfg = cfg
        self.W_Q = nn.Parameter(torch.zeros(d, h * dh))
        self.W_K = nn.Parameter(torch.zeros(d, g * dh))
        self.W_V = nn.Parameter(torch.zeros(d, g * dh))
        self.W_O = nn.Parameter(torch.zeros(h * dh, d))
        for name in ("q", "k", "v", "scores", "pattern", "z", "result"):
            setattr(self, f"hook_{name}", HookPoint())

    def W_O_heads(self) -> Tensor:
        """W_O as [h, dh, d]."""
        return self.W_O.view(self.cfg.n_heads, self.cfg.d_head, self.cfg.d_model)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """x: normed residual [b, p, d] -> attention output [b, p, d]."""
        cfg = self.cfg
        b, n, _ = x.shape
        rep = cfg.n_heads // cfg.n_kv_heads
        q = apply_rotary((x @ self.W_Q).view(b, n, cfg.n_heads, cfg.d_head), cos, sin)
        k = apply_rotary((x @ self.W_K).view(b, n, cfg.n_kv_heads, cfg.d_head), cos, sin)
        v = (x @ self.W_V).view(b, n, cfg.n_kv_heads, cfg.d_head)
        return self._attend(q, k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2))

    def forward_split(self, xq: Tensor, xk: Tensor, xv: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Like :meth:`forward`, but each query head reads its own normed input [b, p, h, d]
        on each channel (k and v through its key/value group's weights)."""
        cfg = self.cfg
        h, g, d, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_head
        group = torch.arange(h, device=xq.device) // (h // g)
        w_q = self.W_Q.view(d, h, dh)
        w_k = self.W_K.view(d, g, dh)[:, group]
        w_v = self.W_V.view(d, g, dh)[:, group]
        q = apply_rotary(torch.einsum("bphd,dhe->bphe", xq, w_q), cos, sin)
        k = apply_rotary(torch.einsum("bphd,dhe->bphe", xk, w_k), cos, sin)
        return self._attend(q, k, torch.einsum("bphd,dhe->bphe", xv, w_v))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """q, k, v [b, p, h, dh] (k, v one copy per query head) -> attention output [b, p, d]."""
        cfg = self.cfg
        b, n = q.shape[:2]
        q = self.hook_q(q)
        k = self.hook_k(k)
        v = self.hook_v(v)
        scores = torch.matmul(q.transpose(1, 2), k.permute(0, 2, 3, 1)) / cfg.d_head**0.5
        mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = self.hook_scores(scores.masked_fill(mask, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.matmul(pattern, v.transpose(1, 2)).transpose(1, 2))
        if self.hook_result.active:
            result = torch.einsum("bphe,hed->bphd", z, self.W_O_heads())
            return self.hook_result(result).sum(dim=2)
        return z.reshape(b, n, -1) @ self.W_O


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.W_gate = nn.Parameter(torch.zeros(cfg.d_model, cfg.d_mlp))
        self.W_up = nn.Parameter(torch.zeros(cfg.d_model, cfg.d_mlp))
        self.W_down = nn.Parameter(torch.zeros(cfg.d_mlp, cfg.d_model))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        gate = self.hook_pre(x @ self.W_gate)
        post = self.hook_post(F.silu(gate) * (x @ self.W_up))
        return post @ self.W_down


class Block(BlockHooks):
    # set with setattr in __init__; declared here for the type checker
    hook_q_in: HookPoint
    hook_k_in: HookPoint
    hook_v_in: HookPoint

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.ln1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ln2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)
        for name in (
            "resid_pre",
            "attn_out",
            "resid_mid",
            "mlp_in",
            "mlp_out",
            "resid_post",
            "q_in",
            "k_in",
            "v_in",
        ):
            setattr(self, f"hook_{name}", HookPoint())

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = self.hook_resid_pre(x)
        if self.hook_q_in.active or self.hook_k_in.active or self.hook_v_in.active:
            copies = x.unsqueeze(2).expand(-1, -1, self.attn.cfg.n_heads, -1)
            attn = self.attn.forward_split(
                self.ln1(self.hook_q_in(copies)),
                self.ln1(self.hook_k_in(copies)),
                self.ln1(self.hook_v_in(copies)),
                cos,
                sin,
            )
        else:
            attn = self.attn(self.ln1(x), cos, sin)
        x = self.hook_resid_mid(x + self.hook_attn_out(attn))
        mlp_in = self.hook_mlp_in(x)
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln2(mlp_in))))


@dataclass(frozen=True)
class ScoredRun:
    """Run the whole model on ``tokens`` [b, p] and unembed only ``positions`` [b, n]; logits
    come back as [b, n, vocab] (row i's j-th scored position at [i, j])."""

    tokens: Tensor
    positions: Tensor

    def __post_init__(self) -> None:
        if self.positions.dim() != 2 or self.positions.shape[0] != self.tokens.shape[0]:
            raise ShapeError(
                f"ScoredRun positions must be [batch, n] with batch {self.tokens.shape[0]}, "
                f"got {tuple(self.positions.shape)}"
            )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


class Llama(ModelHooks):
    """Tokens [b, p] (int64) -> logits [b, p, vocab]; or a :class:`PartialRun`."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Module()
        self.embed.W_E = nn.Parameter(torch.zeros(cfg.d_vocab, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = RMSNorm(cfg.d_model, cfg.norm_eps)
        if not cfg.tie_embeddings:
            self.unembed = nn.Module()
            self.unembed.W_U = nn.Parameter(torch.zeros(cfg.d_model, cfg.d_vocab))
        for name in ("embed", "unembed_in", "logits"):
            setattr(self, f"hook_{name}", HookPoint())

    @property
    def W_U(self) -> Tensor:
        """Unembedding [d, vocab]."""
        if self.cfg.tie_embeddings:
            return cast(Tensor, self.embed.W_E).T
        return cast(Tensor, self.unembed.W_U)

    def unembed_logits(self, x: Tensor) -> Tensor:
        """Final RMSNorm and unembedding of a residual [..., d] -> [..., vocab]."""
        return self.ln_final(x) @ self.W_U

    def forward(self, inputs: Tensor | PartialRun | ScoredRun) -> Tensor:
        if isinstance(inputs, PartialRun):
            x, start, positions = inputs.resid, inputs.start_layer, inputs.positions
        elif isinstance(inputs, ScoredRun):
            x = self.hook_embed(cast(Tensor, self.embed.W_E)[inputs.tokens])
            start, positions = 0, inputs.positions
        else:
            x, start, positions = self.hook_embed(cast(Tensor, self.embed.W_E)[inputs]), 0, None
        cos, sin = rotary(x.shape[1], self.cfg.d_head, self.cfg.rope_base, x.device)
        for block in self.blocks[start:]:
            x = block(x, cos, sin)
        x = self.hook_unembed_in(x)
        if positions is not None:
            rows = torch.arange(x.shape[0], device=x.device)
            if positions.dim() == 2:  # ScoredRun: [b, n]
                x = x[rows.unsqueeze(1), positions]
            else:
                x = x[rows, positions].unsqueeze(1)
        return self.hook_logits(self.unembed_logits(x))


def llama_bindings(model: Llama) -> dict[Site, Binding]:
    """Every typed site of a :class:`Llama`, bound to its hook point."""
    C = Component
    out: dict[Site, Binding] = {Site(C.EMBED): Binding(model.hook_embed)}
    attn = {**ATTN_HOOK_SITES, "result": C.ATTN_RESULT}
    residual = ("resid_pre", "attn_out", "resid_mid", "mlp_in", "mlp_out", "resid_post")
    block_sites = {name: Component(name) for name in residual}
    for layer, module in enumerate(model.blocks):
        block = cast(Block, module)
        for attr, comp in block_sites.items():
            out[Site(comp, layer)] = Binding(getattr(block, f"hook_{attr}"))
        for attr, comp in attn.items():
            out[Site(comp, layer)] = Binding(getattr(block.attn, f"hook_{attr}"))
        for attr, comp in (("q_in", C.ATTN_Q_IN), ("k_in", C.ATTN_K_IN), ("v_in", C.ATTN_V_IN)):
            out[Site(comp, layer)] = Binding(getattr(block, f"hook_{attr}"))
        out[Site(C.MLP_PRE, layer)] = Binding(block.mlp.hook_pre)
        out[Site(C.MLP_POST, layer)] = Binding(block.mlp.hook_post)
    out[Site(C.UNEMBED_IN)] = Binding(model.hook_unembed_in)
    out[Site(C.LOGITS)] = Binding(model.hook_logits)
    return out


class HookedLlama(HookedModel):
    """A :class:`Llama` as a :class:`HookedModel`. Inputs: int64 tokens [b, p] or PartialRun."""

    def __init__(self, model: Llama, name: str = "llama", tokenizer: Any = None):
        self.cfg = model.cfg
        self.tokenizer = tokenizer
        super().__init__(
            model,
            llama_bindings(model),
            validate=self._check,
            name=name,
            batch_size_of=lambda x: (
                len(x) if isinstance(x, (PartialRun, ScoredRun)) else int(x.shape[0])
            ),
        )

    @property
    def model(self) -> Llama:
        return self.module  # type: ignore[return-value]

    @property
    def default_sites(self) -> tuple[Site, ...]:
        on_demand = (
            Component.ATTN_RESULT,
            Component.ATTN_Q_IN,
            Component.ATTN_K_IN,
            Component.ATTN_V_IN,
        )
        return tuple(s for s in self.sites if s.component not in on_demand)

    def scored_input(self, tokens: Tensor, positions: Tensor) -> ScoredRun:
        """The input that runs ``tokens`` and unembeds only ``positions`` [b, n] (see
        :class:`ScoredRun`); circuit runs use it when only the scored positions matter."""
        return ScoredRun(tokens, positions.long())

    def _check(self, inputs: Any) -> None:
        if isinstance(inputs, ScoredRun):
            self._check(inputs.tokens)
            return
        if isinstance(inputs, PartialRun):
            return
        if not isinstance(inputs, Tensor) or inputs.dim() != 2:
            found = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ShapeError(
                f"{self.name} takes token ids [batch, pos], got {found}; "
                "add a batch axis with tokens.unsqueeze(0)"
            )
        if inputs.dtype not in (torch.int64, torch.int32):
            raise ShapeError(f"token ids must be integers (int64), got {inputs.dtype}; use .long()")
        if inputs.numel() and (int(inputs.min()) < 0 or int(inputs.max()) >= self.cfg.d_vocab):
            raise ShapeError(
                f"token ids must lie in [0, {self.cfg.d_vocab}), found "
                f"[{int(inputs.min())}, {int(inputs.max())}]"
            )


@torch.no_grad()
def greedy_decode(
    model: Llama,
    prompt: list[int],
    max_new: int,
    eos_id: int | None = None,
    stop: Any = None,
) -> list[int]:
    """Greedy continuation of one prompt with a key/value cache: each new token runs one
    position through every block instead of the whole sequence again (SmolLM2 generates 64
    tokens in well under a second instead of tens of seconds). Hooks do not fire here; the
    arithmetic is the model's own forward (LoRA-parametrised weights included), so the tokens
    equal greedy decoding with full forward passes up to float32 rounding in exact ties.
    Stops after ``max_new`` tokens, at ``eos_id`` (not returned), or when ``stop(generated)``
    is true. Returns the generated ids."""
    if not prompt:
        raise ConfigError("greedy_decode needs a non-empty prompt")
    cfg = model.cfg
    h, g, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    rep = h // g
    n_total = len(prompt) + max(0, max_new)
    cos_all, sin_all = rotary(n_total, dh, cfg.rope_base)
    keys: list[Tensor | None] = [None] * len(model.blocks)
    values: list[Tensor | None] = [None] * len(model.blocks)
    step = torch.tensor([prompt], dtype=torch.long)
    pos = 0
    out: list[int] = []
    from torch.nn.utils import parametrize

    with parametrize.cached():
        while len(out) < max_new:
            n = step.shape[1]
            cos, sin = cos_all[pos : pos + n], sin_all[pos : pos + n]
            x = cast(Tensor, model.embed.W_E)[step]
            causal = torch.arange(pos + n)[None, :] > (pos + torch.arange(n))[:, None]
            for layer, module in enumerate(model.blocks):
                block = cast(Block, module)
                attn = block.attn
                y = block.ln1(x)
                q = apply_rotary((y @ attn.W_Q).view(1, n, h, dh), cos, sin)
                k = apply_rotary((y @ attn.W_K).view(1, n, g, dh), cos, sin)
                v = (y @ attn.W_V).view(1, n, g, dh)
                prev_k, prev_v = keys[layer], values[layer]
                if prev_k is not None and prev_v is not None:
                    k, v = torch.cat([prev_k, k], 1), torch.cat([prev_v, v], 1)
                keys[layer], values[layer] = k, v
                kk = k.repeat_interleave(rep, dim=2).permute(0, 2, 3, 1)  # [1, h, dh, P]
                vv = v.repeat_interleave(rep, dim=2).transpose(1, 2)  # [1, h, P, dh]
                scores = torch.matmul(q.transpose(1, 2), kk) / dh**0.5
                pattern = scores.masked_fill(causal, float("-inf")).softmax(-1)
                z = torch.matmul(pattern, vv).transpose(1, 2).reshape(1, n, -1)
                x = x + z @ attn.W_O
                x = x + block.mlp(block.ln2(x))
            pos += n
            nxt = int(model.unembed_logits(x[:, -1]).argmax(-1))
            if eos_id is not None and nxt == eos_id:
                break
            out.append(nxt)
            if stop is not None and stop(out):
                break
            step = torch.tensor([[nxt]], dtype=torch.long)
    return out
