"""Failure explanation: which units carry the change from a clean run to a failing one."""

from interplab.methods.failures.explain import (EXPLAINERS, FailureExplanation, explain_failure,
                                                patch_units)

__all__ = ["EXPLAINERS", "FailureExplanation", "explain_failure", "patch_units"]
