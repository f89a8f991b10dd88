"""Directions in activation space and interventions along them.

    d = diff_in_means(acts_with, acts_without)     # Direction: unit vector + the gap along it
    d.project(acts)                                 # [n] scalar projections (a concept score)
    d.ablate(acts)                                  # remove the component along d
    d.add(acts, alpha)                              # add alpha * gap * d (steering)

Difference-in-means (the mean activation on examples with a concept minus the mean on examples
without it) is the simplest direction finder and a strong one: AxBench (2025) found it beats
sparse-autoencoder features at concept detection, and Arditi et al. (2024) steer and ablate
refusal with it.
"""

from typing import Any

from torch import Tensor

from interplab.methods import registry
from interplab.methods.steering.directions import Direction, diff_in_means, random_steering
from interplab.methods.steering.intervene import Steering, compare_steering, steering_intervention


def find_direction(
    with_concept: Tensor,
    without: Tensor,
    *,
    method: str = "diff_in_means",
    seed: int = 0,
    **settings: Any,
) -> Direction:
    """A concept direction from activations with and without it, by a registered ``steering``
    method (``diff_in_means``, or the ``random`` control)."""
    return registry.get("steering", method).fn(with_concept, without, seed=seed, **settings)


__all__ = [
    "Direction",
    "Steering",
    "compare_steering",
    "diff_in_means",
    "find_direction",
    "random_steering",
    "steering_intervention",
]
