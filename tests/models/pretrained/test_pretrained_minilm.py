"""all-MiniLM-L6-v2 through the transformers adapter vs an independent BERT forward.

The reference re-implements BERT (embeddings + LayerNorm, 6 post-LN layers, GELU) in plain
torch straight from the package's model.safetensors. Tolerance: 1e-4 absolute on the last
hidden state, 1e-5 on normalised sentence embeddings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from interplab import Component as C
from interplab import Site
from interplab.models.pretrained.minilm import load_minilm, mean_pool, model_dir

pytestmark = pytest.mark.slow  # loading takes ~8 s

TEXTS = ["A man is eating food.", "A man eats a meal.", "The stock market fell sharply today."]


def reference_bert(inputs):
    from safetensors.torch import load_file

    w = load_file(str(model_dir() / "model.safetensors"))
    w = {k.removeprefix("bert."): v for k, v in w.items()}
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    ln = lambda x, p: F.layer_norm(x, (x.shape[-1],), w[p + ".weight"], w[p + ".bias"], 1e-12)  # noqa: E731
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]  # noqa: E731
    pos = torch.arange(ids.shape[1])
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][pos]
        + w["embeddings.token_type_embeddings.weight"][inputs["token_type_ids"]]
    )
    x = ln(x, "embeddings.LayerNorm")
    b, p, d = x.shape
    h = 12
    add_mask = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    hidden = [x]
    for i in range(6):
        a = f"encoder.layer.{i}."
        q, k, v = (
            lin(x, a + f"attention.self.{n}").view(b, p, h, d // h).transpose(1, 2)
            for n in ("query", "key", "value")
        )
        att = (q @ k.transpose(-1, -2) / math.sqrt(d // h) + add_mask).softmax(-1)
        z = (att @ v).transpose(1, 2).reshape(b, p, d)
        x = ln(lin(z, a + "attention.output.dense") + x, a + "attention.output.LayerNorm")
        inter = F.gelu(lin(x, a + "intermediate.dense"))
        x = ln(lin(inter, a + "output.dense") + x, a + "output.LayerNorm")
        hidden.append(x)
    return hidden


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_minilm_matches_reference_bert(minilm):
    inputs = minilm.tokenize(TEXTS)
    ref = reference_bert(inputs)
    out, cache = minilm.hooked.run_with_cache(inputs)
    assert torch.allclose(out, ref[-1], atol=1e-4)
    for layer in range(6):
        assert torch.allclose(cache[Site(C.RESID_POST, layer)], ref[layer + 1], atol=1e-4)
    emb = minilm.embed(TEXTS)
    ref_emb = F.normalize(mean_pool(ref[-1], inputs["attention_mask"]), dim=-1)
    assert torch.allclose(emb, ref_emb, atol=1e-5)
    assert set(cache) == set(minilm.hooked.sites)


def test_minilm_embeddings_are_semantic(minilm):
    e = minilm.embed(TEXTS)
    sims = e @ e.T
    assert sims[0, 1] > 0.8 and abs(sims[0, 2]) < 0.2


def test_minilm_attention_is_bidirectional_and_masks_padding(minilm):
    inputs = minilm.tokenize(TEXTS)
    _, cache = minilm.hooked.run_with_cache(inputs, [Site(C.ATTN_PATTERN, 0)])
    pattern = cache[Site(C.ATTN_PATTERN, 0)]
    n_real = int(inputs["attention_mask"][0].sum())
    assert pattern[0, :, 0, 1:n_real].min() > 0  # the first token sees later tokens
    assert pattern[0, :, :, n_real:].abs().max() == 0  # padding gets nothing
