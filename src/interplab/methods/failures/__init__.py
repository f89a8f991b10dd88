"""Failure explanation: which units carry the change from a clean run to a failing one.

The ``failures`` family also holds the trigger scans and the weight-norm detector, which live
with the attacks (:mod:`interplab.methods.attacks.trigger`); importing this package registers
them too.
"""

from interplab.methods.attacks import trigger as _trigger  # noqa: F401 (registers its methods)
from interplab.methods.failures.explain import (
    FailureExplanation,
    explain_failure,
    explainers,
    patch_units,
)
from interplab.methods.failures.features import (
    FeatureFailureExplanation,
    explain_failure_features,
    patch_latents,
)

__all__ = [
    "FailureExplanation",
    "FeatureFailureExplanation",
    "explain_failure",
    "explain_failure_features",
    "explainers",
    "patch_latents",
    "patch_units",
]
