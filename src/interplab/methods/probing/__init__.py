"""Linear probes, scikit-learn style, with a control task for selectivity (Hewitt & Liang 2019).

    probe = LinearProbe().fit(X_train, y_train)
    acc = probe.score(X_test, y_test)
    types = token_position_types(inputs)      # one (token, position) type per example
    result = probe_selectivity(X, y, types)   # accuracy on y minus accuracy on a control task

The control task gives every *type* a random label drawn from the real labels' distribution,
fixed per type: a probe that merely memorises types scores well on it; selectivity = real
accuracy - control accuracy rewards probes that read the variable. The control task is only
informative when there are many types and its labels vary: on a 3-token vocabulary with the
token as the type, all three types often draw the same label and the control is constant (every
probe then scores 1.0 on it and selectivity is 0 or negative whatever the site holds). Hence
(token, position) types, and :func:`control_task` refuses a degenerate control
(:class:`DegenerateControlTask`, with the reason) instead of returning a meaningless number.

Shapes: n = examples, d = features, c = classes.
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
