"""Hugging Face ``transformers`` models (GPT-2, BERT, Llama) on interplab's typed sites.

``transformers`` is an optional extra, imported only when an adapter is built. The adapter
does two small, reversible-in-spirit things to the model it is given:

1. it attaches an :class:`AttnHookPoints` child (``interplab_hooks``, no parameters, so the
   state dict is unchanged) to every self-attention module, and
2. it switches the model's attention implementation to ``"interplab"``, an eager attention
   function registered with transformers' ``AttentionInterface`` that routes q, k, v, scores,
   pattern and z through those hook points. Without listeners it computes exactly the eager
   attention of transformers.

Everything else is a :class:`~interplab.core.hooks.Binding` on a module the model already has.
Sites (b = batch, p = pos, h = head, dh = d_head, d = d_model, m = d_mlp):

    GPT-2 (pre-LN)                       BERT (post-LN)
    embed        wte output              word_embeddings output
    pos_embed    wpe output              position_embeddings output
    resid_pre L  block input             layer input (= hidden_states[L])
    attn_q/k/v/z [b,p,h,dh]              same
    attn_scores, attn_pattern [b,h,q,k]  same (scores include the additive mask)
    attn_out L   attn output [b,p,d]     attention.output.dense output (before add + LN)
    resid_mid L  --                      attention output = LN(x + attn_out)
    mlp_in L     ln_2 input              --
    mlp_pre/post c_fc output / act out   intermediate.dense output / intermediate output
    mlp_out L    mlp output              output.dense output (before add + LN)
    resid_post L block output            layer output (= hidden_states[L+1])
    unembed_in   ln_f input              --
    logits       lm_head output          MLM head output (BertForMaskedLM only)

Llama (``LlamaModel``/``LlamaForCausalLM``) is mapped like GPT-2 (``resid_mid`` = input of
``post_attention_layernorm`` is *not* a write site there, so it is exposed as ``mlp_in``);
its k/v sites hold one copy per *query* head (after the grouped-query repeat).

Sites not listed (per-head ``attn_result`` and ``attn_*_in``) are not exposed for HF models:
their per-head forms do not exist in these implementations. Use the native
:mod:`interplab.models.pretrained.llama` for those.

Inputs: token ids [b, p] (int64), or a mapping of keyword arguments (``input_ids``,
``attention_mask``, ``token_type_ids``). Output: logits [b, p, v] where the model has a head,
else ``last_hidden_state`` [b, p, d].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from interplab.core.hooks import Binding, HookPoint
from interplab.core.model import HookedModel
from interplab.core.sites import ATTN_HOOK_SITES, Component, Site
from interplab.errors import ConfigError, MissingExtraError, ShapeError

Tensor = torch.Tensor
ATTN_IMPL = "interplab"
EXTRA_HINT = "install the extra: pip install 'interplab[hf]'"


def require_transformers() -> Any:
    """Import ``transformers`` or raise MissingExtraError naming the extra."""
    try:
        import transformers
    except ImportError:
        raise MissingExtraError(f"transformers is not installed; {EXTRA_HINT}") from None
    return transformers


class AttnHookPoints(nn.Module):
    """Hook points for one attention module: q, k, v, z [b,p,h,dh]; scores, pattern [b,h,q,k]."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("q", "k", "v", "scores", "pattern", "z"):
            self.add_module(name, HookPoint())


def interplab_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **_kwargs: Any,
) -> tuple[Tensor, Tensor]:
    """Eager attention with hook points. query [b,h,q,dh]; key/value [b,h_kv,k,dh].

    Returns (z [b,q,h,dh], pattern [b,h,q,k]) as transformers' attention functions do."""
    hooks = getattr(module, "interplab_hooks", None)
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:  # grouped-query attention: one k/v copy per query head
        key = key.repeat_interleave(n_rep, dim=1)
        value = value.repeat_interleave(n_rep, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if hooks is not None:
        query = hooks.q(query.transpose(1, 2)).transpose(1, 2)
        key = hooks.k(key.transpose(1, 2)).transpose(1, 2)
        value = hooks.v(value.transpose(1, 2)).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask[..., : key.shape[-2]]
    if hooks is not None:
        scores = hooks.scores(scores)
    pattern = scores.softmax(dim=-1).to(value.dtype)
    if hooks is not None:
        pattern = hooks.pattern(pattern)
    pattern_used = nn.functional.dropout(pattern, p=dropout, training=module.training)
    z = torch.matmul(pattern_used, value).transpose(1, 2)
    if hooks is not None:
        z = hooks.z(z)
    return z.contiguous(), pattern


_REGISTERED = False


def _register_attention() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    require_transformers()
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTN_IMPL, interplab_attention)
    AttentionMaskInterface.register(ATTN_IMPL, eager_mask)
    _REGISTERED = True


def _install_attention(model: nn.Module, attn_modules: list[nn.Module]) -> list[AttnHookPoints]:
    _register_attention()
    hooks: list[AttnHookPoints] = []
    for attn in attn_modules:
        if not hasattr(attn, "interplab_hooks"):
            attn.add_module("interplab_hooks", AttnHookPoints())
        hooks.append(cast(AttnHookPoints, attn.interplab_hooks))
    config: Any = model.config  # a transformers PretrainedConfig
    config._attn_implementation = ATTN_IMPL
    for sub in model.modules():  # sub-configs (some models keep their own)
        cfg = getattr(sub, "config", None)
        if cfg is not None and cfg is not config and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = ATTN_IMPL
    return hooks


def _heads_view(h: int):
    def to_site(x: Tensor) -> Tensor:
        return x.view(*x.shape[:-1], h, x.shape[-1] // h)

    def from_site(x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-2], -1)

    return to_site, from_site


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, tuple) else x


def _attn_sites(layer: int, hp: AttnHookPoints) -> dict[Site, Binding]:
    return {Site(comp, layer): Binding(getattr(hp, attr)) for attr, comp in ATTN_HOOK_SITES.items()}


def _out(module: nn.Module, tuple_output: bool) -> Binding:
    return Binding(module, "output", 0 if tuple_output else None)


def gpt2_bindings(model: nn.Module) -> dict[Site, Binding]:
    """Sites of a ``GPT2Model`` or ``GPT2LMHeadModel`` (see the module docstring)."""
    C = Component
    base: Any = getattr(model, "transformer", model)  # the module tree transformers defines
    hps = _install_attention(model, [b.attn for b in base.h])
    out: dict[Site, Binding] = {
        Site(C.EMBED): Binding(base.wte),
        Site(C.POS_EMBED): Binding(base.wpe),
    }
    for layer, (block, hp) in enumerate(zip(base.h, hps)):
        out[Site(C.RESID_PRE, layer)] = Binding(block, "input")
        out.update(_attn_sites(layer, hp))
        out[Site(C.ATTN_OUT, layer)] = Binding(block.attn, "output", 0)
        out[Site(C.MLP_IN, layer)] = Binding(block.ln_2, "input")
        out[Site(C.MLP_PRE, layer)] = Binding(block.mlp.c_fc)
        out[Site(C.MLP_POST, layer)] = Binding(block.mlp.act)
        out[Site(C.MLP_OUT, layer)] = Binding(block.mlp)
        out[Site(C.RESID_POST, layer)] = _out(block, False)
    out[Site(C.UNEMBED_IN)] = Binding(base.ln_f, "input")
    if hasattr(model, "lm_head"):
        out[Site(C.LOGITS)] = Binding(cast(nn.Module, model.lm_head))
    return out


def bert_bindings(model: nn.Module) -> dict[Site, Binding]:
    """Sites of a ``BertModel`` or ``BertForMaskedLM`` (see the module docstring)."""
    C = Component
    base: Any = getattr(model, "bert", model)  # the module tree transformers defines
    layers = base.encoder.layer
    hps = _install_attention(model, [lay.attention.self for lay in layers])
    emb = base.embeddings
    out: dict[Site, Binding] = {
        Site(C.EMBED): Binding(emb.word_embeddings),
        Site(C.POS_EMBED): Binding(emb.position_embeddings),
    }
    for layer, (lay, hp) in enumerate(zip(layers, hps)):
        out[Site(C.RESID_PRE, layer)] = Binding(lay, "input")
        out.update(_attn_sites(layer, hp))
        out[Site(C.ATTN_OUT, layer)] = Binding(lay.attention.output.dense)
        out[Site(C.RESID_MID, layer)] = Binding(lay.attention, "output", 0)
        out[Site(C.MLP_PRE, layer)] = Binding(lay.intermediate.dense)
        out[Site(C.MLP_POST, layer)] = Binding(lay.intermediate)
        out[Site(C.MLP_OUT, layer)] = Binding(lay.output.dense)
        out[Site(C.RESID_POST, layer)] = _out(lay, False)
    if hasattr(model, "cls"):
        out[Site(C.LOGITS)] = Binding(cast(nn.Module, model.cls))
    return out


def llama_bindings(model: nn.Module) -> dict[Site, Binding]:
    """Sites of a ``LlamaModel`` or ``LlamaForCausalLM`` (see the module docstring)."""
    C = Component
    base: Any = getattr(model, "model", model)  # the module tree transformers defines
    hps = _install_attention(model, [lay.self_attn for lay in base.layers])
    out: dict[Site, Binding] = {Site(C.EMBED): Binding(base.embed_tokens)}
    for layer, (lay, hp) in enumerate(zip(base.layers, hps)):
        out[Site(C.RESID_PRE, layer)] = Binding(lay, "input")
        out.update(_attn_sites(layer, hp))
        out[Site(C.ATTN_OUT, layer)] = Binding(lay.self_attn, "output", 0)
        out[Site(C.MLP_IN, layer)] = Binding(lay.post_attention_layernorm, "input")
        out[Site(C.MLP_POST, layer)] = Binding(lay.mlp.down_proj, "input")
        out[Site(C.MLP_OUT, layer)] = Binding(lay.mlp)
        out[Site(C.RESID_POST, layer)] = _out(lay, False)
    out[Site(C.UNEMBED_IN)] = Binding(base.norm, "input")
    if hasattr(model, "lm_head"):
        out[Site(C.LOGITS)] = Binding(cast(nn.Module, model.lm_head))
    return out


_BINDERS = {"gpt2": gpt2_bindings, "bert": bert_bindings, "llama": llama_bindings}


def _call(module: nn.Module, inputs: Any) -> Tensor:
    kwargs = dict(inputs) if isinstance(inputs, Mapping) else {"input_ids": inputs}
    if getattr(module.config, "use_cache", None) is not None:
        kwargs.setdefault("use_cache", False)
    out = module(**kwargs)
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out.last_hidden_state


def _ids(inputs: Any) -> Tensor:
    """Token ids [b, p] (or, for ``inputs_embeds`` inputs, the embeddings' [b, p] view)."""
    if isinstance(inputs, Mapping):
        return inputs["input_ids"] if "input_ids" in inputs else inputs["inputs_embeds"][..., 0]
    return inputs


def _validate(inputs: Any) -> None:
    ids = _ids(inputs)
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        found = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ShapeError(
            f"a Hugging Face model takes token ids [batch, pos] (or a dict with "
            f"input_ids), got {found}; add a batch axis with ids.unsqueeze(0)"
        )


def hooked_hf(model: nn.Module, name: str | None = None) -> HookedModel:
    """Wrap a ``transformers`` GPT-2, BERT or Llama model as a :class:`HookedModel`.

    The model is put in eval mode and switched to interplab's eager attention (see module
    docstring). Raises ConfigError for an architecture without a mapping."""
    require_transformers()
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in _BINDERS:
        raise ConfigError(
            f"no interplab site mapping for Hugging Face model_type {kind!r}; "
            f"supported: {', '.join(_BINDERS)}. Wrap other modules with "
            "interplab.wrap_module(model) to get sites by module path."
        )
    model.eval()
    bindings = _BINDERS[kind](model)
    return HookedModel(
        model,
        bindings,
        call=_call,
        validate=_validate,
        batch_size_of=lambda x: int(_ids(x).shape[0]),
        name=name or f"hf:{kind}",
    )
