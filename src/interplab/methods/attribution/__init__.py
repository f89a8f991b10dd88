"""Attribution methods that work on any model and any token task (organisms and SmolLM2 alike):

    integrated_gradients / input_x_gradient   gradients of a scalar function w.r.t. its input
    activation_patching / attribution_patching per-head patching on a Task (exact / 1st order)
    logit_lens_and_dla                        logit lens and direct logit attribution (Llama-style)

    detect_induction_heads                    induction scores of every head (:mod:`.induction_heads`)

One verb, ``attribute(model, inputs, *, method=..., **settings)``, runs any registered method of
the ``attribution`` family: ``inputs`` is the input batch x for the gradient methods (``model``
then maps x to one score per row) and the task for patching and the lens.

Tasks (IOI, induction) live in :mod:`interplab.tasks`; the MNIST/MiniLM attribution examples in
:mod:`interplab.eval.attribute_models`; circuit discovery over edges in
:mod:`interplab.methods.circuits`.
"""

from typing import Any

from interplab.methods import registry
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
from interplab.methods.base import Result


def attribute(
    model: Any, inputs: Any, *, method: str = "integrated_gradients", **settings: Any
) -> Result:
    """Run the registered attribution ``method`` on ``model`` and ``inputs`` (see above)."""
    return registry.get("attribution", method).fn(model, inputs, **settings)


__all__ = [
    "Attributions",
    "LensResult",
    "PatchingResult",
    "activation_patching",
    "attribute",
    "attribution_patching",
    "input_x_gradient",
    "integrated_gradients",
    "logit_lens_and_dla",
]
