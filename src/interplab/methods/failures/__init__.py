"""Failure explanation: which units carry the change from a clean run to a failing one."""

from interplab.methods.failures.explain import (
    EXPLAINERS,
    FailureExplanation,
    explain_failure,
    patch_units,
)
from interplab.methods.failures.features import (
    FeatureFailureExplanation,
    explain_failure_features,
    patch_latents,
)

__all__ = [
    "EXPLAINERS",
    "FailureExplanation",
    "FeatureFailureExplanation",
    "explain_failure",
    "explain_failure_features",
    "patch_latents",
    "patch_units",
]
