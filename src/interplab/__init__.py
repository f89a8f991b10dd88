"""interplab: mechanistic interpretability whose explanations are checked against ground truth,
counterfactuals and replacement parts.

The public API is re-exported here; importing interplab does no work and loads no models.
"""

from interplab.core.cache import ActivationCache, CacheSpec
from interplab.core.circuit import Circuit, Edge, Node, full_graph
from interplab.core.interventions import Intervention, Mean, Patch, Replace, Resample, Steer, Zero
from interplab.core.model import HookedModel, mean_activations, wrap_module
from interplab.core.sites import Component, Site, parse_site
from interplab.errors import InterplabError
from interplab.models.config import TransformerConfig
from interplab.models.io import load_model, save_model
from interplab.models.transformer import HookedTransformer, Transformer

__version__ = "0.1.0"

__all__ = [
    "ActivationCache", "CacheSpec", "Circuit", "Component", "Edge", "HookedModel",
    "HookedTransformer", "InterplabError", "Intervention", "Mean", "Node", "Patch", "Replace",
    "Resample", "Site", "Steer", "Transformer", "TransformerConfig", "Zero", "__version__",
    "full_graph", "load_model", "mean_activations", "parse_site", "save_model", "wrap_module",
]
