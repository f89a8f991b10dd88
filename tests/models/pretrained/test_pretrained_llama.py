"""Our hooked Llama vs transformers' LlamaForCausalLM with the same weights.

Tolerances (float32): tiny random model 1e-5 absolute on logits; SmolLM2-135M 1e-3 absolute on
logits of magnitude ~20 (30 layers of accumulated float32 rounding, two attention codes)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import transformers  # a missing install fails, never skips
from tests.llama_helpers import random_llama

from interplab import Component as C
from interplab import Patch, Site
from interplab.core.hooks import count_hooks
from interplab.errors import WeightsError
from interplab.models.pretrained.gguf_loader import open_gguf, unpermute_qk
from interplab.models.pretrained.llama import HookedLlama, Llama, LlamaConfig, PartialRun


def to_hf(model: Llama) -> transformers.LlamaForCausalLM:
    """The reference: a transformers Llama holding the same weights."""
    cfg = model.cfg
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.d_vocab,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_base,
        max_position_embeddings=cfg.n_ctx,
        tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    sd = {
        "model.embed_tokens.weight": model.embed.W_E,
        "model.norm.weight": model.ln_final.w,
        "lm_head.weight": model.W_U.T,
    }
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        sd.update(
            {
                p + "self_attn.q_proj.weight": b.attn.W_Q.T,
                p + "self_attn.k_proj.weight": b.attn.W_K.T,
                p + "self_attn.v_proj.weight": b.attn.W_V.T,
                p + "self_attn.o_proj.weight": b.attn.W_O.T,
                p + "mlp.gate_proj.weight": b.mlp.W_gate.T,
                p + "mlp.up_proj.weight": b.mlp.W_up.T,
                p + "mlp.down_proj.weight": b.mlp.W_down.T,
                p + "input_layernorm.weight": b.ln1.w,
                p + "post_attention_layernorm.weight": b.ln2.w,
            }
        )
    hf.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=False)
    return hf


def tiny() -> HookedLlama:
    return random_llama(
        LlamaConfig(
            d_vocab=40,
            d_model=24,
            n_layers=2,
            n_heads=6,
            n_kv_heads=2,
            d_mlp=32,
            n_ctx=16,
            rope_base=100.0,
        )
    )


TOKENS = torch.randint(0, 40, (3, 9), generator=torch.Generator().manual_seed(1))


def test_tiny_llama_matches_transformers():
    hm = tiny()
    ref = to_hf(hm.model)
    with torch.no_grad():
        out = ref(input_ids=TOKENS, output_hidden_states=True, use_cache=False)
    logits, cache = hm.run_with_cache(TOKENS)
    assert torch.allclose(logits, out.logits, atol=1e-5)
    for layer in range(2):
        assert torch.allclose(cache[Site(C.RESID_PRE, layer)], out.hidden_states[layer], atol=1e-5)


def test_every_site_fires_and_hooks_are_removed():
    hm = tiny()
    _, cache = hm.run_with_cache(TOKENS)
    assert set(cache) == set(hm.sites)
    assert cache[Site(C.ATTN_K, 1)].shape == (3, 9, 6, 4)  # one k copy per query head
    assert cache[Site(C.ATTN_RESULT, 0)].sum(2).sub(cache[Site(C.ATTN_OUT, 0)]).abs().max() < 1e-5
    assert count_hooks(hm.model) == 0


def test_grouped_query_k_site_is_per_query_head():
    hm = tiny()
    _, cache = hm.run_with_cache(TOKENS)
    k = cache[Site(C.ATTN_K, 0)]
    assert torch.equal(k[:, :, 0], k[:, :, 1])  # heads 0-2 share kv head 0
    patched = torch.zeros_like(k[:, :, 1])
    _, after = hm.run_with_cache(
        TOKENS, [Site(C.ATTN_PATTERN, 0)], interventions=[Patch(Site(C.ATTN_K, 0, head=1), patched)]
    )
    before = cache[Site(C.ATTN_PATTERN, 0)]
    assert torch.allclose(after[Site(C.ATTN_PATTERN, 0)][:, 0], before[:, 0])
    assert not torch.allclose(after[Site(C.ATTN_PATTERN, 0)][:, 1], before[:, 1])


def test_partial_run_equals_full_run_at_chosen_positions():
    hm = tiny()
    logits, cache = hm.run_with_cache(TOKENS, [Site(C.RESID_PRE, 1)])
    pos = torch.tensor([8, 3, 5])
    part = hm.run(PartialRun(cache[Site(C.RESID_PRE, 1)], 1, pos))
    assert torch.allclose(part[:, 0], logits[torch.arange(3), pos], atol=1e-5)


def test_unpermute_inverts_llama_cpp_permutation():
    n_heads, dh, d = 3, 8, 5
    hf = np.random.default_rng(0).standard_normal((n_heads * dh, d))
    gguf = hf.reshape(n_heads, 2, dh // 2, d).swapaxes(1, 2).reshape(hf.shape)  # convert_hf_to_gguf
    assert np.array_equal(unpermute_qk(gguf, n_heads), hf)


def test_garbage_gguf_is_a_weights_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        open_gguf(bad)
    with pytest.raises(WeightsError, match="not found"):
        open_gguf(tmp_path / "missing.gguf")


def test_truncated_smollm2_file_is_a_weights_error(tmp_path):
    from interplab.models.pretrained.registry import smollm2_path

    bad = tmp_path / "cut.gguf"
    with open(smollm2_path(), "rb") as f:
        bad.write_bytes(f.read(3_000_000))
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        open_gguf(bad)


@pytest.fixture(scope="module")
def smollm2():
    from interplab.models.pretrained.registry import load

    start = time.perf_counter()
    model = load("smollm2-135m")
    return model, time.perf_counter() - start


@pytest.mark.slow
def test_smollm2_loads_fast_and_completes_text(smollm2):
    model, seconds = smollm2
    assert seconds < 60
    tok = model.tokenizer
    ids = torch.tensor([tok.encode("The capital of France is")])
    assert tok.encode("The capital of France is") == [504, 3575, 282, 4649, 314]
    logits = model.run(ids)
    assert tok.decode([int(logits[0, -1].argmax())]) == " Paris"


@pytest.mark.slow
def test_smollm2_matches_transformers_with_same_weights(smollm2):
    model, _ = smollm2
    ref = to_hf(model.model)
    ids = torch.tensor(
        [model.tokenizer.encode("When Mary and John went to the store, John gave a drink to")]
    )
    with torch.no_grad():
        want = ref(input_ids=ids, use_cache=False).logits
    got, cache = model.run_with_cache(ids)
    assert torch.allclose(got, want, atol=1e-3)
    assert set(cache) == set(model.sites)
