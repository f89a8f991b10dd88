"""The registered dictionary methods: one architecture each, trained by :func:`.train.train_dictionary`.

    sae-relu       ReLU SAE with an L1 penalty on the latents (``l1_coefficient``)
    sae-topk       TopK SAE: the ``k`` largest latents kept per sample
    sae-jumprelu   JumpReLU SAE with an L0 penalty (``l0_coefficient``, threshold, bandwidth)
    transcoder     TopK transcoder: reads the source's input, predicts its output (``d_out``)
    random         the control: the same ReLU architecture with its random initial weights,
                   never trained (cost 0)

One call shape: ``fn(source, *, d_latent, seed=0, batch_size=1024, steps=2000, **settings)
-> TrainedDictionary``; ``source`` is anything :func:`.sources.as_source` takes and
``settings`` are further :class:`~.config.DictionaryConfig` fields (``k``, ``lr``, ...).
:func:`fit_dictionary` dispatches through the registry.
"""

from __future__ import annotations

from typing import Any

from interplab.methods import registry
from interplab.methods.base import Cost
from interplab.methods.dictionaries.config import DictionaryConfig
from interplab.methods.dictionaries.modules import SparseDictionary
from interplab.methods.dictionaries.sources import as_source
from interplab.methods.dictionaries.train import TrainedDictionary, train_dictionary
from interplab.methods.registry import register

METRIC = "mmcs"


def fit_dictionary(
    source: Any,
    *,
    method: str = "sae-topk",
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """Train the registered dictionary ``method`` with ``d_latent`` latents on ``source``."""
    return registry.get("dictionaries", method).fn(
        source, d_latent=d_latent, seed=seed, batch_size=batch_size, steps=steps, **settings
    )


def _train(
    source: Any, activation: str, transcoder: bool, d_latent: int, **fields: Any
) -> TrainedDictionary:
    src = as_source(source, transcoder=transcoder)
    config = DictionaryConfig(
        d_in=src.d_in,
        d_latent=d_latent,
        activation=activation,
        d_out=src.d_out if transcoder else None,
        **fields,
    )
    return train_dictionary(src, config)


_SAE = dict(kind="method", cost_unit="passes", metric=METRIC, needs_gradients=True)


@register("dictionaries", "sae-relu", **_SAE)
def sae_relu(
    source: Any,
    *,
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """ReLU SAE with an L1 penalty."""
    return _train(
        source, "relu", False, d_latent, seed=seed, batch_size=batch_size, steps=steps, **settings
    )


@register("dictionaries", "sae-topk", **_SAE)
def sae_topk(
    source: Any,
    *,
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """TopK SAE (``k`` latents per sample)."""
    return _train(
        source, "topk", False, d_latent, seed=seed, batch_size=batch_size, steps=steps, **settings
    )


@register("dictionaries", "sae-jumprelu", **_SAE)
def sae_jumprelu(
    source: Any,
    *,
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """JumpReLU SAE with an L0 penalty."""
    return _train(
        source,
        "jumprelu",
        False,
        d_latent,
        seed=seed,
        batch_size=batch_size,
        steps=steps,
        **settings,
    )


@register("dictionaries", "transcoder", **_SAE)
def transcoder(
    source: Any,
    *,
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """TopK transcoder from the source's input to its output."""
    return _train(
        source, "topk", True, d_latent, seed=seed, batch_size=batch_size, steps=steps, **settings
    )


@register("dictionaries", "random", kind="baseline", cost_unit="none", metric=METRIC)
def random_dictionary(
    source: Any,
    *,
    d_latent: int,
    seed: int = 0,
    batch_size: int = 1024,
    steps: int = 2000,
    **settings: Any,
) -> TrainedDictionary:
    """The ReLU architecture at its seeded random initialisation, never trained (``steps`` is
    ignored)."""
    src = as_source(source)
    config = DictionaryConfig(
        d_in=src.d_in,
        d_latent=d_latent,
        activation="relu",
        seed=seed,
        batch_size=batch_size,
        steps=0,
        **settings,
    )
    return TrainedDictionary(SparseDictionary(config).eval(), config, cost=Cost())
