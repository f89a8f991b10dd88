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

from interplab.methods.steering.directions import Direction, diff_in_means
from interplab.methods.steering.intervene import Steering, compare_steering, steering_intervention

__all__ = ["Direction", "Steering", "compare_steering", "diff_in_means", "steering_intervention"]
