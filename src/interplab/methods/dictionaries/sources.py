"""Where a dictionary's training activations come from.

An :class:`ActivationSource` hands out batch number ``step`` as ``(x [batch, d_in],
target [batch, d_out])`` (the target is ``x`` itself for an autoencoder). Batches are a pure
function of ``(seed, step)``: training can stop and resume at any step and see the same data,
and no source holds more than one batch of activations in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from interplab.core.model import HookedModel
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError

Tensor = torch.Tensor


@runtime_checkable
class ActivationSource(Protocol):
    d_in: int
    d_out: int

    def batch(self, step: int, batch_size: int) -> tuple[Tensor, Tensor]:
        """Batch ``step``: (x [batch_size, d_in], target [batch_size, d_out])."""
        ...


class FeatureSource:
    """Activations from a ground-truth organism (:class:`~interplab.data.synthetic.SyntheticFeatures`
    or :class:`~interplab.models.superposition.SuperpositionModel`): anything with ``d`` and
    ``sample(batch_size, index) -> FeatureBatch``. ``transcoder=True`` makes the target the
    organism's ``y`` instead of ``x``."""

    def __init__(self, organism: Any, transcoder: bool = False) -> None:
        self.organism = organism
        self.transcoder = transcoder
        probe = organism.sample(1, 0)
        if transcoder and probe.y is None:
            raise ConfigError(
                "this organism has no transcoder target (y); build SyntheticFeatures "
                "with SyntheticConfig(d_out=...) or use a SuperpositionModel"
            )
        self.d_in = probe.x.shape[-1]
        self.d_out = probe.y.shape[-1] if transcoder else self.d_in

    def batch(self, step: int, batch_size: int) -> tuple[Tensor, Tensor]:
        fb = self.organism.sample(batch_size, step)
        return fb.x, (fb.y if self.transcoder else fb.x)


class TensorSource:
    """Activations already in memory: x [n, d_in] (and optionally target [n, d_out]);
    each step draws a seeded random batch of rows."""

    def __init__(self, x: Tensor, target: Tensor | None = None, seed: int = 0) -> None:
        if x.ndim != 2:
            raise ShapeError(
                f"activations must be [n, d_in], got shape {tuple(x.shape)}; "
                "flatten batch and position axes first: x.reshape(-1, x.shape[-1])"
            )
        if target is not None and (target.ndim != 2 or target.shape[0] != x.shape[0]):
            raise ShapeError(f"target must be [n={x.shape[0]}, d_out], got {tuple(target.shape)}")
        self.x, self.target, self.seed = x, target, seed
        self.d_in = x.shape[1]
        self.d_out = target.shape[1] if target is not None else self.d_in

    def batch(self, step: int, batch_size: int) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(hash((self.seed, int(step))) & 0x7FFF_FFFF_FFFF)
        idx = torch.randint(0, self.x.shape[0], (batch_size,), generator=gen)
        x = self.x[idx]
        return x, (self.target[idx] if self.target is not None else x)


class ModelSource:
    """Activations of ``site`` (and, for a transcoder, ``target_site``) of a HookedModel.

    Each step runs the model on a seeded random choice of examples from ``inputs`` (a tensor
    whose first axis indexes examples, e.g. token ids [n, pos]) or on ``inputs(step)`` when
    ``inputs`` is a function, flattens every axis but the last, and keeps ``batch_size`` rows.
    Only that step's activations are in memory.
    """

    def __init__(
        self,
        model: HookedModel,
        site: Site,
        inputs: Tensor | Callable[[int], Any],
        target_site: Site | None = None,
        seed: int = 0,
    ) -> None:
        model.check_site(site)  # SiteError naming valid sites
        if target_site is not None:
            model.check_site(target_site)
        self.model, self.site, self.target_site = model, site, target_site
        self.inputs, self.seed = inputs, seed
        x, y, rows_per_example = self._run(self._examples(0, 1))
        self.d_in, self.d_out = x.shape[-1], y.shape[-1]
        self.rows_per_example = rows_per_example

    def _examples(self, step: int, n: int) -> Any:
        if callable(self.inputs):
            return self.inputs(step)
        gen = torch.Generator().manual_seed(hash((self.seed, int(step))) & 0x7FFF_FFFF_FFFF)
        total = self.inputs.shape[0]
        idx = (
            torch.randperm(total, generator=gen)[:n]
            if n <= total
            else torch.randint(0, total, (n,), generator=gen)
        )
        return self.inputs[idx]

    def _run(self, examples: Any) -> tuple[Tensor, Tensor, int]:
        sites = [self.site] + ([self.target_site] if self.target_site is not None else [])
        _, cache = self.model.run_with_cache(examples, sites)
        act = cache[self.site]
        n = act.shape[0]
        x = act.reshape(-1, act.shape[-1]).float()
        y = x
        if self.target_site is not None:
            tgt = cache[self.target_site]
            y = tgt.reshape(-1, tgt.shape[-1]).float()
            if y.shape[0] != x.shape[0]:
                raise ShapeError(
                    f"{self.site} gives {x.shape[0]} rows per batch but {self.target_site} "
                    f"gives {y.shape[0]}; a transcoder needs sites aligned by position"
                )
        return x, y, max(1, x.shape[0] // max(n, 1))

    def batch(self, step: int, batch_size: int) -> tuple[Tensor, Tensor]:
        n = math.ceil(batch_size / self.rows_per_example)
        x, y, _ = self._run(self._examples(step, n))
        if x.shape[0] > batch_size:
            gen = torch.Generator().manual_seed(hash((self.seed, int(step), 1)) & 0x7FFF_FFFF_FFFF)
            keep = torch.randperm(x.shape[0], generator=gen)[:batch_size]
            x, y = x[keep], y[keep]
        return x, y


def as_source(source: Any, transcoder: bool = False) -> ActivationSource:
    """Accept an ActivationSource, a ground-truth organism, or a tensor [n, d_in]."""
    if isinstance(source, Tensor):
        return TensorSource(source)
    if hasattr(source, "sample") and hasattr(source, "d"):
        return FeatureSource(source, transcoder=transcoder)
    if isinstance(source, ActivationSource):
        return source
    raise ConfigError(
        f"cannot train a dictionary on a {type(source).__name__}; give a ModelSource "
        "(model, site, inputs), a SyntheticFeatures / SuperpositionModel, a tensor "
        "[n, d_in], or any object with d_in, d_out and batch(step, batch_size)"
    )
