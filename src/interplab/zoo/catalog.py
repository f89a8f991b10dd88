"""The built-in organisms. Each builder imports what it needs when called."""

from __future__ import annotations

from interplab.zoo.registry import ZooEntry, register


def _random_transformer():
    from interplab.models.config import TransformerConfig
    from interplab.models.transformer import HookedTransformer

    cfg = TransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=128, d_vocab=32,
                            n_ctx=32, seed=0)
    return HookedTransformer(cfg, name="random-2l")


register(ZooEntry("random-2l", "random",
                  "2-layer, 4-head native transformer with seeded random weights (a control)",
                  _random_transformer, frozenset({"controls"})))


def _register_siit() -> None:
    from interplab.zoo.siit import register_all

    register_all()


_register_siit()
