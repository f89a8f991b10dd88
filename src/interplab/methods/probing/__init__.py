"""Linear probes: does a site hold a variable (or a concept) linearly?

    probe = LinearProbe().fit(X_train, y_train)
    result = probe_selectivity(X, y, token_position_types(inputs))

:mod:`.probe`: probes, scikit-learn style, scored by selectivity against a control task
(Hewitt & Liang 2019; the module docstring says when a control task is informative).
:mod:`.concept`: concept scorers (a probe, a sparse probe, a direction, random), registered in
the ``probing`` family and scored by AUROC.
"""

from __future__ import annotations

from interplab.methods.probing.concept import (
    LinearScorer,
    auroc,
    direction_scorer,
    fit_scorer,
    probe_scorer,
    random_scorer,
    sparse_probe_scorer,
)
from interplab.methods.probing.probe import (
    MAX_CONTROL_MAJORITY,
    MIN_CONTROL_TYPES,
    DegenerateControlTask,
    LinearProbe,
    ProbeResult,
    control_labels,
    control_task,
    probe_accuracy,
    probe_selectivity,
    token_position_types,
)

__all__ = [
    "MAX_CONTROL_MAJORITY",
    "MIN_CONTROL_TYPES",
    "DegenerateControlTask",
    "LinearProbe",
    "LinearScorer",
    "ProbeResult",
    "auroc",
    "control_labels",
    "control_task",
    "direction_scorer",
    "fit_scorer",
    "probe_accuracy",
    "probe_scorer",
    "probe_selectivity",
    "random_scorer",
    "sparse_probe_scorer",
    "token_position_types",
]
