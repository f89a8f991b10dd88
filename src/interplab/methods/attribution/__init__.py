"""Attribution methods that work on any model and any token task (organisms and SmolLM2 alike):

    integrated_gradients / input_x_gradient   gradients of a scalar function w.r.t. its input
    activation_patching / attribution_patching per-head patching on a TokenTask (exact / 1st order)
    logit_lens_and_dla                        logit lens and direct logit attribution (Llama-style)

Tasks (IOI, induction, the MNIST/MiniLM attribution examples) live in
:mod:`interplab.methods.tasks`; circuit discovery over edges in :mod:`interplab.methods.circuits`.
"""

from interplab.methods.attribution.gradients import (
    Attributions,
    input_x_gradient,
    integrated_gradients,
)
from interplab.methods.attribution.head_patching import (
    PatchingResult,
    activation_patching,
    attribution_patching,
)
from interplab.methods.attribution.lens import LensResult, logit_lens_and_dla

__all__ = [
    "Attributions",
    "LensResult",
    "PatchingResult",
    "activation_patching",
    "attribution_patching",
    "input_x_gradient",
    "integrated_gradients",
    "logit_lens_and_dla",
]
