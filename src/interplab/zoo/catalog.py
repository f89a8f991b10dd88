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


def _register_compiled() -> None:
    from interplab.compile.programs import LIBRARY

    for name, spec in LIBRARY.items():
        tags = {"compiled", "circuits"} | ({"quick"} if name in ("reverse", "frac_prevs") else set())
        register(ZooEntry(f"compiled-{name}", "compiled", f"compiled RASP: {spec.description}",
                          lambda spec=spec: spec.compile(), frozenset(tags)))


def _register_trained() -> None:
    from interplab.zoo.organisms import ORGANISMS, describe

    for name in ORGANISMS:
        def build(name: str = name):
            from interplab.zoo.organisms import load_organism

            return load_organism(name)

        tags = {"trained", "circuits"} | ({"quick"} if name == "prevtoken" else set())
        register(ZooEntry(f"trained-{name}", "trained", describe(name), build, frozenset(tags)))


def _register_siit() -> None:
    from interplab.zoo.siit import register_all

    register_all()


def _register_tabular() -> None:
    from interplab.zoo.tabular import register_all

    register_all(register, ZooEntry)


_register_compiled()
_register_trained()
_register_siit()
_register_tabular()


def _register_trojans() -> None:
    from interplab.zoo.trojans import register_all

    register_all()


_register_trojans()
