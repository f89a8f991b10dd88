import pytest
import torch

from interplab.errors import ConfigError
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer


def test_config_collects_every_problem():
    with pytest.raises(ConfigError) as info:
        TransformerConfig(
            n_layers=0,
            d_model=8,
            n_heads=2,
            d_head=4,
            d_mlp=8,
            d_vocab=5,
            n_ctx=4,
            act_fn="tanh",
            attention="sideways",
        )
    msg = str(info.value)
    assert "n_layers" in msg and "act_fn" in msg and "attention" in msg


def test_seeded_init_is_deterministic(tiny_cfg):
    a, b = HookedTransformer(tiny_cfg), HookedTransformer(tiny_cfg)
    for (na, pa), (nb, pb) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert na == nb and torch.equal(pa, pb)


def test_causal_model_ignores_future_tokens(tiny_model, tokens):
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 20
    a, b = tiny_model.run(tokens), tiny_model.run(changed)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-4)


def test_bidirectional_model_sees_future_tokens(tiny_cfg, tokens):
    import dataclasses

    model = HookedTransformer(dataclasses.replace(tiny_cfg, attention="bidirectional"))
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 20
    assert not torch.allclose(model.run(tokens)[:, 0], model.run(changed)[:, 0], atol=1e-5)


def test_gelu_and_no_layernorm_variant(tiny_cfg, tokens):
    import dataclasses

    cfg = dataclasses.replace(tiny_cfg, act_fn="gelu", normalization="none", positional="none")
    model = HookedTransformer(cfg)
    assert "ln_final.w" not in model.model.state_dict()
    assert "pos_embed.W_pos" not in model.model.state_dict()
    out = model.run(tokens)
    assert out.shape == (3, 10, 20) and torch.isfinite(out).all()
