"""Dictionaries on sites of a trained native transformer, end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interplab.core.sites import Component, Site
from interplab.errors import ShapeError, SiteError
from interplab.eval.features import loss_recovered, score_dictionary
from interplab.methods.dictionaries import DictionaryConfig, ModelSource, train_dictionary
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer

VOCAB, POS = 12, 8


def _previous_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting, at position t >= 1, the token at t - 1."""
    return F.cross_entropy(logits[:, 1:].reshape(-1, VOCAB), tokens[:, :-1].reshape(-1))


@pytest.fixture(scope="module")
def trained() -> tuple[HookedTransformer, torch.Tensor]:
    cfg = TransformerConfig(
        n_layers=1,
        d_model=32,
        n_heads=2,
        d_head=16,
        d_mlp=64,
        d_vocab=VOCAB,
        n_ctx=POS,
        init_std=0.1,
        seed=0,
    )
    model = HookedTransformer(cfg)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.module.parameters(), lr=1e-2)
    for _ in range(100):
        tokens = torch.randint(0, VOCAB, (64, POS), generator=gen)
        loss = _previous_token_loss(model.module(tokens), tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.module.eval()
    assert float(loss.detach()) < 0.5, "the organism did not learn its task"
    return model, torch.randint(0, VOCAB, (512, POS), generator=gen)


def test_sae_on_the_residual_stream_of_a_trained_transformer(trained):
    model, tokens = trained
    site = Site(Component.RESID_POST, 0)
    source = ModelSource(model, site, tokens)
    assert (source.d_in, source.d_out) == (32, 32)
    x0, _ = source.batch(0, 256)
    assert x0.shape == (256, 32) and torch.equal(x0, source.batch(0, 256)[0])
    cfg = DictionaryConfig(
        d_in=32, d_latent=128, activation="topk", k=8, steps=250, batch_size=256, lr=3e-3
    )
    result = train_dictionary(source, cfg)
    held_out = tokens[:64]
    _, cache = model.run_with_cache(held_out, [site])
    scores = score_dictionary(result.dictionary, cache[site].reshape(-1, 32))
    assert scores.variance_explained > 0.8
    recovered = loss_recovered(
        model,
        site,
        held_out,
        result.dictionary,
        loss_fn=lambda logits: _previous_token_loss(logits, held_out),
    )
    assert recovered > 0.7


def test_transcoder_for_the_mlp(trained):
    model, tokens = trained
    mlp_in, mlp_out = Site(Component.MLP_IN, 0), Site(Component.MLP_OUT, 0)
    source = ModelSource(model, mlp_in, tokens, target_site=mlp_out)
    cfg = DictionaryConfig(
        d_in=32, d_out=32, d_latent=128, activation="topk", k=8, steps=250, batch_size=256, lr=3e-3
    )
    result = train_dictionary(source, cfg)
    held_out = tokens[:64]
    recovered = loss_recovered(
        model,
        mlp_out,
        held_out,
        result.dictionary,
        input_site=mlp_in,
        loss_fn=lambda logits: _previous_token_loss(logits, held_out),
    )
    assert recovered > 0.5


def test_unknown_site_and_wrong_width(trained):
    model, tokens = trained
    with pytest.raises(SiteError, match="no site L3.resid_post"):
        ModelSource(model, Site(Component.RESID_POST, 3), tokens)
    source = ModelSource(model, Site(Component.MLP_POST, 0), tokens)
    with pytest.raises(
        ShapeError, match=r"site L0.mlp_post.*width 64 but DictionaryConfig\(d_in=32\)"
    ):
        train_dictionary(source, DictionaryConfig(d_in=32, d_latent=64, steps=1))
