"""The path-integration rules shared by every integrated-gradients method (input-space IG in
:mod:`interplab.methods.attribution.gradients`, EAP-IG in :mod:`interplab.methods.circuits.eap`).

``ig_points(steps, rule)`` gives points t in (0, 1) along the straight path from the baseline
to the input, and weights summing to 1, so the path average of a gradient is
``sum_k w_k grad(baseline + t_k (x - baseline))``.
"""

from __future__ import annotations

import numpy as np

from interplab.errors import ConfigError, unknown_name

#: ``midpoint``: equal weights at the centres of ``steps`` equal slices; ``gauss_legendre``:
#: Gauss–Legendre nodes and weights mapped from [-1, 1] to [0, 1] (exact for polynomials of
#: degree < 2 steps).
RULES = ("midpoint", "gauss_legendre")


def ig_points(steps: int, rule: str = "midpoint") -> tuple[list[float], list[float]]:
    """Points t in (0, 1) and weights summing to 1 for integrating over the path."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    if rule == "midpoint":
        return [(k + 0.5) / steps for k in range(steps)], [1.0 / steps] * steps
    if rule == "gauss_legendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return [float((xi + 1) / 2) for xi in x], [float(wi / 2) for wi in w]
    raise unknown_name("integration rule", rule, RULES)
