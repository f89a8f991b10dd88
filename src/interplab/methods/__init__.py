"""Interpretability methods, one package per family, all in one registry.

    import interplab as ip
    ip.methods.families()                          # circuits, dictionaries, causal, ...
    ip.methods.names("circuits")                   # acdc, activation_norm, eap, eap_ig, ...
    ip.methods.get("circuits", "eap").kind         # "method" (or "baseline" / "oracle")
    ip.methods.run("circuits", "eap", model, task, ablation="mean")

See :mod:`interplab.methods.registry` for how a method registers and
:mod:`interplab.methods.base` for the :class:`Result` and :class:`Cost` every method returns.
"""

from __future__ import annotations

from interplab.methods.base import Cost, Result
from interplab.methods.registry import (
    MethodSpec,
    families,
    get,
    kind_of,
    names,
    register,
    run,
    specs,
)

__all__ = [
    "Cost",
    "MethodSpec",
    "Result",
    "families",
    "get",
    "kind_of",
    "names",
    "register",
    "run",
    "specs",
]
