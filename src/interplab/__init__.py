"""interplab: mechanistic interpretability whose explanations are checked against ground truth,
counterfactuals and replacement parts.

The public API is re-exported here; importing interplab does no work and loads no models. The
names are resolved on first use (PEP 562), so ``import interplab`` — and the command line's
``--help`` and ``--version`` — do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interplab.errors import InterplabError

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "ActivationCache": "interplab.core.cache",
    "CacheSpec": "interplab.core.cache",
    "Circuit": "interplab.core.circuit",
    "Edge": "interplab.core.circuit",
    "Node": "interplab.core.circuit",
    "full_graph": "interplab.core.circuit",
    "Intervention": "interplab.core.interventions",
    "Mean": "interplab.core.interventions",
    "Patch": "interplab.core.interventions",
    "Replace": "interplab.core.interventions",
    "Resample": "interplab.core.interventions",
    "Steer": "interplab.core.interventions",
    "Zero": "interplab.core.interventions",
    "HookedModel": "interplab.core.model",
    "mean_activations": "interplab.core.model",
    "wrap_module": "interplab.core.model",
    "Component": "interplab.core.sites",
    "Site": "interplab.core.sites",
    "parse_site": "interplab.core.sites",
    "TransformerConfig": "interplab.models.config",
    "load_model": "interplab.models.io",
    "save_model": "interplab.models.io",
    "HookedTransformer": "interplab.models.transformer",
    "Transformer": "interplab.models.transformer",
    "organism": "interplab.zoo.loader",
    "Organism": "interplab.zoo.contract",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from interplab.core.cache import ActivationCache, CacheSpec
    from interplab.core.circuit import Circuit, Edge, Node, full_graph
    from interplab.core.interventions import (
        Intervention,
        Mean,
        Patch,
        Replace,
        Resample,
        Steer,
        Zero,
    )
    from interplab.core.model import HookedModel, mean_activations, wrap_module
    from interplab.core.sites import Component, Site, parse_site
    from interplab.models.config import TransformerConfig
    from interplab.models.io import load_model, save_model
    from interplab.models.transformer import HookedTransformer, Transformer
    from interplab.zoo.contract import Organism
    from interplab.zoo.loader import organism


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interplab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "ActivationCache",
    "CacheSpec",
    "Circuit",
    "Component",
    "Edge",
    "HookedModel",
    "HookedTransformer",
    "InterplabError",
    "Intervention",
    "Mean",
    "Node",
    "Organism",
    "Patch",
    "Replace",
    "Resample",
    "Site",
    "Steer",
    "Transformer",
    "TransformerConfig",
    "Zero",
    "__version__",
    "full_graph",
    "load_model",
    "mean_activations",
    "organism",
    "parse_site",
    "save_model",
    "wrap_module",
]
