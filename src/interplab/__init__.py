"""interplab: mechanistic interpretability whose explanations are checked against ground truth,
counterfactuals and replacement parts.

A notebook needs one import::

    import interplab as ip
    org = ip.organism("compiled-reverse")               # model, tasks, verified truth
    edges = ip.methods.run("circuits", "eap", org.model, org.tasks["score"], ablation="mean")
    ip.score(org, edges)                                # {"edge_auroc": ..., ...}
    model = ip.compile_program(program, vocab=..., max_len=...)   # a RASP program as weights

The public API is re-exported here; importing interplab does no work and loads no models. The
names and the subpackages (``ip.methods``, ``ip.compile``, ``ip.zoo``, ...) are resolved on first
use (PEP 562), so ``import interplab`` — and the command line's ``--help`` and ``--version`` —
do not import torch.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

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
    "compile_program": "interplab.compile.compiler",
    "get_program": "interplab.compile.programs",
    "score": "interplab.eval.score",
}
#: subpackages reachable as attributes (``ip.methods.run(...)``) without importing them first
_SUBPACKAGES = (
    "bench",
    "compile",
    "core",
    "eval",
    "methods",
    "models",
    "report",
    "tasks",
    "zoo",
)

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from interplab.compile.compiler import compile_program
    from interplab.compile.programs import get_program
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
    from interplab.eval.score import score
    from interplab.models.config import TransformerConfig
    from interplab.models.io import load_model, save_model
    from interplab.models.transformer import HookedTransformer, Transformer
    from interplab.zoo.contract import Organism
    from interplab.zoo.loader import organism


def __getattr__(name: str) -> _Any:
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"interplab.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interplab' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_SUBPACKAGES))


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
    "compile_program",
    "full_graph",
    "get_program",
    "load_model",
    "mean_activations",
    "organism",
    "parse_site",
    "save_model",
    "score",
    "wrap_module",
]
