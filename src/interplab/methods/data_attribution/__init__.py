"""Training-data attribution: which training examples made a model give this output?

One verb, ``attribute_data(model, train, test, *, method=...)``, returns :class:`DataAttribution`: scores ``[n_test, n_train]``
(positive = the training example raises the test point's label margin, i.e. removing it would
lower it) and, on request, each training example's self-influence ``[n_train]`` (large = the
model leans on that example alone for its own label: mislabelled and memorised examples).

Methods (see each module for the algorithm):

    grad_dot, grad_cos   gradient inner product / cosine at the final weights  (scoring)
    tracin               gradient inner products summed over checkpoints        (trak)
    if_exact, if_cg, if_lissa, ekfac   influence functions                     (influence)
    trak                 random-projection TRAK over checkpoints                (trak)
    representer          representer points of the last layer                  (representer)
    random, nn_input, nn_representation   baselines                            (representer)

``model`` is an interplab :class:`~interplab.models.classifiers.TrainedClassifier` (an organism)
or any ``torch.nn.Module`` mapping inputs ``[n, ...]`` (flat rows, images ``[n, C, H, W]``) to
class logits ``[n, K]``: its trainable parameters become one flat vector
(:mod:`interplab.models.module_classifier`), so every gradient method runs on it unchanged;
``ekfac`` factors its Linear and Conv2d layers (:mod:`.ekfac_modules`, other parameters
diagonal); ``if_exact`` is refused above 4096 parameters. ``loss``: None (cross-entropy) or a
callable ``(logits, y) -> [n]``; ``checkpoints``: state dicts along training (TracIn, TRAK;
default the final weights); ``weight_decay=``: the L2 coefficient it was trained with (default
0). Per-example gradients are streamed ``batch_size`` at a time; ``progress=True`` shows a bar.

Each method is registered in the ``data_attribution`` family (:mod:`.methods`); the verb
dispatches through the registry. Every method sees only the model, the training examples and the test inputs with the labels
whose margin is attributed — never a retrained model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from interplab.methods import registry
from interplab.methods.data_attribution.methods import DataAttribution
from interplab.models.classifiers import TrainedClassifier

Tensor = torch.Tensor


def attribute_data(
    model: TrainedClassifier | torch.nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    method: str = "trak",
    loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    checkpoints: list[dict[str, Tensor]] | None = None,
    self_influence: bool = False,
    seed: int = 0,
    batch_size: int = 128,
    progress: bool = False,
    **settings: Any,
) -> DataAttribution:
    """Attribute each test point's label margin to the training examples ``train = (x, y)``
    (as the model was trained on them). ``test = (x, labels)``: the labels whose margin is
    attributed (usually the true labels, or the model's predictions). ``settings``: a method's
    own (``damping``, ``proj_dim``, ``fisher``) and a module's ``weight_decay``."""
    fn = registry.get("data_attribution", method).fn
    return fn(
        model,
        train,
        test,
        self_influence=self_influence,
        seed=seed,
        batch_size=batch_size,
        loss=loss,
        checkpoints=checkpoints,
        progress=progress,
        **settings,
    )


__all__ = ["DataAttribution", "attribute_data"]
