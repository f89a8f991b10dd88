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

from collections.abc import Callable
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


def _method(
    name: str,
    pyname: str,
    doc: str,
    activation: str,
    *,
    transcoder: bool = False,
    trained: bool = True,
) -> Callable[..., TrainedDictionary]:
    """Register ``dictionaries/name``: a dictionary with ``activation`` latents on ``source``
    (a transcoder: from the source's input to its output), trained by
    :func:`.train.train_dictionary`; ``trained=False`` is the control, kept at its seeded random
    initialisation (``steps`` is ignored, cost 0)."""

    def fn(
        source: Any,
        *,
        d_latent: int,
        seed: int = 0,
        batch_size: int = 1024,
        steps: int = 2000,
        **settings: Any,
    ) -> TrainedDictionary:
        src = as_source(source, transcoder=transcoder)
        config = DictionaryConfig(
            d_in=src.d_in,
            d_latent=d_latent,
            activation=activation,
            d_out=src.d_out if transcoder else None,
            seed=seed,
            batch_size=batch_size,
            steps=steps if trained else 0,
            **settings,
        )
        if not trained:
            return TrainedDictionary(SparseDictionary(config).eval(), config, cost=Cost())
        return train_dictionary(src, config)

    fn.__name__ = fn.__qualname__ = pyname
    fn.__doc__ = doc
    if trained:
        register("dictionaries", name, metric=METRIC, needs_gradients=True)(fn)
    else:
        register("dictionaries", name, kind="baseline", cost_unit="none", metric=METRIC)(fn)
    return fn


sae_relu = _method("sae-relu", "sae_relu", "ReLU SAE with an L1 penalty.", "relu")
sae_topk = _method("sae-topk", "sae_topk", "TopK SAE (``k`` latents per sample).", "topk")
sae_jumprelu = _method(
    "sae-jumprelu", "sae_jumprelu", "JumpReLU SAE with an L0 penalty.", "jumprelu"
)
transcoder = _method(
    "transcoder",
    "transcoder",
    "TopK transcoder from the source's input to its output.",
    "topk",
    transcoder=True,
)
random_dictionary = _method(
    "random",
    "random_dictionary",
    "The ReLU architecture at its seeded random initialisation, never trained (``steps`` is "
    "ignored).",
    "relu",
    trained=False,
)
