"""Parity of the Hugging Face adapter on tiny randomly initialised GPT-2 and BERT models.

No downloads: the configs are built here. ``transformers`` is required (a missing install
fails this module; it does not skip). Tolerance: 1e-5 absolute in float32 (the reference runs
transformers' own sdpa/eager attention, ours the interplab eager function)."""

from __future__ import annotations

import pytest
import torch
import transformers

from interplab import Component as C
from interplab import Site, Zero
from interplab.core.adapters.hf import hooked_hf
from interplab.core.hooks import count_hooks

TOL = 1e-5


def tiny_gpt2() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        n_layer=2,
        n_head=4,
        n_embd=32,
        vocab_size=50,
        n_positions=16,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(cfg).eval()


def tiny_bert() -> transformers.BertForMaskedLM:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        num_hidden_layers=2,
        num_attention_heads=4,
        hidden_size=32,
        intermediate_size=64,
        vocab_size=50,
        max_position_embeddings=16,
    )
    return transformers.BertForMaskedLM(cfg).eval()


IDS = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(1))


def test_gpt2_logits_and_resid_match_hidden_states():
    model = tiny_gpt2()
    with torch.no_grad():
        ref = model(input_ids=IDS, output_hidden_states=True, use_cache=False)
    hm = hooked_hf(model)
    out, cache = hm.run_with_cache(IDS)
    assert torch.allclose(out, ref.logits, atol=TOL)
    for layer in range(2):
        assert torch.allclose(cache[Site(C.RESID_PRE, layer)], ref.hidden_states[layer], atol=TOL)
    # GPT-2's last hidden state has ln_f applied; unembed_in is before it
    assert torch.allclose(
        model.transformer.ln_f(cache[Site(C.UNEMBED_IN)]), ref.hidden_states[-1], atol=TOL
    )
    assert torch.allclose(cache[Site(C.RESID_POST, 1)], cache[Site(C.UNEMBED_IN)])


def test_gpt2_attention_sites_equal_hand_computed():
    model = tiny_gpt2()
    hm = hooked_hf(model)
    _, cache = hm.run_with_cache(IDS)
    block = model.transformer.h[0]
    x = block.ln_1(cache[Site(C.RESID_PRE, 0)])
    q, k, v = block.attn.c_attn(x).split(32, dim=2)
    q, k, v = (t.view(3, 7, 4, 8) for t in (q, k, v))
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / 8**0.5
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    pattern = scores.softmax(-1)
    z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
    assert torch.allclose(cache[Site(C.ATTN_Q, 0)], q, atol=TOL)
    assert torch.allclose(cache[Site(C.ATTN_K, 0, head=2)], k[:, :, 2], atol=TOL)
    assert torch.allclose(cache[Site(C.ATTN_PATTERN, 0)], pattern, atol=TOL)
    assert torch.allclose(cache[Site(C.ATTN_Z, 0)], z, atol=TOL)
    attn_out = block.attn.c_proj(z.reshape(3, 7, 32))
    assert torch.allclose(cache[Site(C.ATTN_OUT, 0)], attn_out, atol=TOL)
    mlp_in = cache[Site(C.RESID_PRE, 0)] + attn_out
    assert torch.allclose(cache[Site(C.MLP_IN, 0)], mlp_in, atol=TOL)
    assert torch.allclose(
        cache[Site(C.RESID_POST, 0)], mlp_in + cache[Site(C.MLP_OUT, 0)], atol=TOL
    )


def test_gpt2_zero_head_matches_reference():
    model = tiny_gpt2()
    hm = hooked_hf(model)
    patched = hm.run_with(IDS, [Zero(Site(C.ATTN_Z, 1, head=3))])
    _, cache = hm.run_with_cache(IDS)
    block = model.transformer.h[1]
    z = cache[Site(C.ATTN_Z, 1)].clone()
    z[:, :, 3] = 0
    with torch.no_grad():
        resid = cache[Site(C.RESID_PRE, 1)] + block.attn.c_proj(z.reshape(3, 7, 32))
        resid = resid + block.mlp(block.ln_2(resid))
        ref = model.lm_head(model.transformer.ln_f(resid))
    assert torch.allclose(patched, ref, atol=TOL)
    assert count_hooks(model) == 0


def test_bert_logits_resid_and_padding_mask():
    model = tiny_bert()
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[0, 5:] = 0
    inputs = {"input_ids": IDS, "attention_mask": mask}
    with torch.no_grad():
        ref = model(**inputs, output_hidden_states=True)
    hm = hooked_hf(model)
    out, cache = hm.run_with_cache(inputs)
    assert torch.allclose(out, ref.logits, atol=TOL)
    for layer in range(2):
        assert torch.allclose(cache[Site(C.RESID_PRE, layer)], ref.hidden_states[layer], atol=TOL)
        assert torch.allclose(
            cache[Site(C.RESID_POST, layer)], ref.hidden_states[layer + 1], atol=TOL
        )
    pattern = cache[Site(C.ATTN_PATTERN, 0)]
    assert torch.all(pattern[0, :, :, 5:] == 0)  # padded keys get no attention
    upper = torch.ones(7, 7, dtype=torch.bool).triu(1)
    assert torch.all(pattern[1][:, upper] > 0)  # bidirectional: queries see later keys
    lay = model.bert.encoder.layer[0]
    resid_mid = lay.attention.output.LayerNorm(
        cache[Site(C.ATTN_OUT, 0)] + cache[Site(C.RESID_PRE, 0)]
    )
    assert torch.allclose(cache[Site(C.RESID_MID, 0)], resid_mid, atol=TOL)


@pytest.mark.parametrize("make", [tiny_gpt2, tiny_bert])
def test_every_declared_site_fires(make):
    hm = hooked_hf(make())
    _, cache = hm.run_with_cache(IDS)  # raises SiteError if any declared site is silent
    assert set(cache) == set(hm.sites)
    assert count_hooks(hm.module) == 0


def test_missing_transformers_names_the_extra(monkeypatch):
    import builtins

    from interplab.core.adapters import hf
    from interplab.errors import MissingExtraError

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "transformers":
            raise ImportError("no")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MissingExtraError, match=r"pip install 'interplab\[hf\]'"):
        hf.require_transformers()
