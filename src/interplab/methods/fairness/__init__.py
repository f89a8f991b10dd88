"""Reliance of a tabular classifier on a protected attribute, and the proxies it runs through.

from interplab.methods.fairness import attribution_gaps, erasure_test, swap_effects
r = attribution_gaps(net, rows, group)      # white box: integrated-gradient gaps per feature
r = erasure_test(net, rows, group)          # white box: LEACE-erase the group, count changes
r = swap_effects(decide, rows, group)       # black box: swap a feature across groups
r = parity_audit(decide, rows, group, y)    # demographic-parity / equalised-odds gaps
r = correlation_screen(rows, group, feats)  # data only
r.reliance, r.feature_scores, r.queries

See :mod:`interplab.methods.fairness.reliance`.
"""

from interplab.methods.fairness.reliance import (
    RelianceResult,
    attribution_gaps,
    correlation_screen,
    erasure_test,
    group_gaps,
    parity_audit,
    swap_effects,
)
from interplab.methods.probing.concept import auroc

__all__ = [
    "RelianceResult",
    "attribution_gaps",
    "auroc",
    "correlation_screen",
    "erasure_test",
    "group_gaps",
    "parity_audit",
    "swap_effects",
]
