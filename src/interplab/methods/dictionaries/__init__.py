"""Sparse dictionaries (SAEs: ReLU+L1, TopK, JumpReLU; transcoders) and their training loop.

from interplab.methods.dictionaries import DictionaryConfig, train_dictionary, ModelSource
trained = train_dictionary(ModelSource(model, site, tokens), DictionaryConfig(d_in=64, d_latent=256))
trained = fit_dictionary(source, method="sae-topk", d_latent=256, k=8)   # a registered method
"""

from __future__ import annotations

from interplab.methods.dictionaries.checkpoint import load_dictionary, save_dictionary
from interplab.methods.dictionaries.config import ACTIVATIONS, DictionaryConfig
from interplab.methods.dictionaries.methods import fit_dictionary
from interplab.methods.dictionaries.modules import SparseDictionary
from interplab.methods.dictionaries.select import (
    SparsitySweep,
    activation_scale,
    k_ladder,
    sweep_sparsity,
)
from interplab.methods.dictionaries.sources import (
    ActivationSource,
    FeatureSource,
    ModelSource,
    TensorSource,
    as_source,
)
from interplab.methods.dictionaries.train import TrainedDictionary, train_dictionary

__all__ = [
    "ACTIVATIONS",
    "ActivationSource",
    "DictionaryConfig",
    "FeatureSource",
    "ModelSource",
    "SparseDictionary",
    "SparsitySweep",
    "TensorSource",
    "TrainedDictionary",
    "activation_scale",
    "as_source",
    "fit_dictionary",
    "k_ladder",
    "load_dictionary",
    "save_dictionary",
    "sweep_sparsity",
    "train_dictionary",
]
