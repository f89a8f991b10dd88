"""The one verb of the family: :func:`detect_poison` fits a detector on a (possibly poisoned)
labelled training set and returns a per-example suspicion score (higher = more suspicious).

Every detector is fit on the same thing: the trained model and its training set with labels, no
example marked as poisoned. What it looks at differs by method:

    activation_clustering   hidden activations at ``site``        (Chen et al. 2018)
    spectral_signature      hidden activations at ``site``        (Tran et al. 2018)
    sae_features            a TopK SAE on those activations, and the model after ``site``
    loss                    the model's outputs only (per-example loss)
    input_anomaly           the inputs only (kNN distance to same-label examples)
    random                  nothing (seeded uniform scores, a control)
    oracle:trigger          the true trigger (mask, pattern): an oracle, not a method

Each detector is an estimator class registered in the ``poisoning`` family (settings in
``__init__``, ``fit(batch)`` returns the fitted detector with ``scores_`` and ``details_``,
``score(batch)`` scores new inputs); :func:`detect_poison` dispatches through the registry.
``cost.forward`` counts the model passes the detector asked for (activations, outputs, patched
runs).

The fitted detector stays in the result: :meth:`PoisonScores.score` scores new inputs (labelled by
the model's own prediction unless labels are given), e.g. to tell triggered inputs at test time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from interplab.core.interventions import Patch
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError
from interplab.methods import registry
from interplab.methods.base import Cost, Result

Tensor = torch.Tensor


@dataclass(eq=False)
class Batch:
    """Inputs ``x`` with labels ``y`` seen through ``model``: what a detector may read.
    ``passes`` counts the model passes made so far."""

    model: Any
    site: Site | None
    x: Tensor
    y: Tensor
    passes: int = 0

    @cached_property
    def activations(self) -> Tensor:
        """Activations at ``site`` in the site's own shape."""
        self.passes += 1
        with torch.no_grad():
            _, cache = self.model.run_with_cache(self.x, [self.site])
        return cache[self.site].detach()

    @cached_property
    def hidden(self) -> Tensor:
        """Activations at ``site``, flattened to [n, width]."""
        return self.activations.reshape(len(self.x), -1).float()

    @cached_property
    def logits(self) -> Tensor:
        self.passes += 1
        with torch.no_grad():
            return self.model.run(self.x).detach().reshape(len(self.x), -1).float()

    def logits_from_hidden(self, hidden: Tensor) -> Tensor:
        """The model's output with the activations at ``site`` replaced by ``hidden`` [n, width]."""
        if self.site is None:
            raise ConfigError("patching hidden activations needs a site: pass site=")
        value = hidden.reshape(self.activations.shape).to(self.activations.dtype)
        self.passes += 1
        with torch.no_grad():
            return self.model.run_with(self.x, [Patch(self.site, value=value)]).reshape(
                len(self.x), -1
            )


@dataclass(frozen=True, eq=False)
class PoisonScores(Result):
    """A detector's suspicion of each training example, and the fitted detector.

    Attributes:
        method: which detector (a registered ``poisoning`` name).
        scores: [n] suspicion per training example, higher = more likely poisoned.
        details: what the detector found (chosen latents, per-class split quality, ...).
    """

    method: str
    scores: Tensor
    details: dict = field(default_factory=dict)
    detector: Any = field(default=None, repr=False)
    model: Any = field(default=None, repr=False)
    site: Site | None = None

    def score(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """[m] suspicion of new inputs under the detector fit on the training set; ``y`` defaults
        to the model's predicted labels (at test time nobody knows the true ones)."""
        if y is None:
            with torch.no_grad():
                y = self.model.run(x).argmax(-1)
        return self.detector.score(_batch(self.model, self.site, x, y)).detach().float()


def _batch(model: Any, site: Site | None, x: Tensor, y: Tensor) -> Batch:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise ShapeError("detect_poison takes tensors x [n, ...] and y [n] (integer labels)")
    if y.dim() != 1 or len(y) != len(x) or y.dtype.is_floating_point:
        raise ShapeError(
            f"y must be [n] integer labels matching x's {len(x)} rows, got "
            f"{tuple(y.shape)} {y.dtype}"
        )
    return Batch(model, site, x, y.long())


def detect_poison(
    model: Any,
    x: Tensor,
    y: Tensor,
    *,
    method: str = "spectral_signature",
    site: Site | None = None,
    seed: int = 0,
    trigger: Any = None,
    **settings: Any,
) -> PoisonScores:
    """Fit ``method`` on the training set ``(x, y)`` of ``model`` and score every example.

    Args:
        model: a HookedModel (``run``, ``run_with_cache``, ``run_with``).
        x, y: the training inputs [n, ...] and their (possibly poisoned) labels [n].
        method: a registered ``poisoning`` detector (``registry.names("poisoning")``).
        site: where hidden activations are read (needed by detectors with ``needs_site``).
        seed: seeds every random choice (k-means starts, SAE training, random scores).
        trigger: given only to detectors with ``needs_trigger`` (the trigger oracle): an object
            with ``tensors() -> (mask, pattern)`` or a ``(mask, pattern)`` pair over the
            flattened input; the others never see it.
        settings: the detector's settings (e.g. ``n_components``, ``steps``, ``neighbours``).
    """
    start = time.perf_counter()
    detector_cls = registry.get("poisoning", method).fn
    if getattr(detector_cls, "needs_site", False) and site is None:
        raise ConfigError(
            f"{method} reads hidden activations: pass site= (e.g. Site.module('act'))"
        )
    batch = _batch(model, site, x, y)
    if getattr(detector_cls, "needs_trigger", False):
        settings["trigger"] = trigger
    try:
        detector = detector_cls(seed=seed, **settings)
    except TypeError as exc:
        raise ConfigError(f"{method}: bad option ({exc})") from None
    detector.fit(batch)
    return PoisonScores(
        method,
        detector.scores_.detach().float(),
        detector.details_,
        detector,
        model,
        site,
        cost=Cost(forward=batch.passes),
        seconds=time.perf_counter() - start,
    )
