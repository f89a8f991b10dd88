"""Interventions: small values saying how to change one site's activation during a run.

Every intervention names a :class:`Site`; a per-head site (``head=h``) changes only that head's
slice, and ``positions`` restricts the change to some sequence positions. Several interventions
compose: they are applied in the order given, each seeing the result of the previous ones.

    Zero(site)                          set to 0
    Mean(site, mean=... | reference=...)  set to the mean over a reference batch (per position)
    Resample(site, source=inputs)       set to the value the site takes on ``source`` (aligned
                                        by batch row and position)
    Patch(site, cache | tensor)         set to a stored activation
    Steer(site, vector, scale)          add ``scale * vector``
    Replace(site, fn)                   set to ``fn(value)`` (a function or an nn.Module)

Sources for Mean/Resample are computed by the model right before the run
(:meth:`interplab.core.model.HookedModel.run_with`).

Errors name the site: a head or position outside the activation raises SiteError with the valid
range; a new value of another shape or dtype than the activation raises ShapeError.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.core.cache import ActivationCache
from interplab.core.sites import HEAD_AXIS, POS_AXIS, Site, check_head_in_range
from interplab.errors import ShapeError, SiteError

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class Intervention:
    """Base class. Subclasses define :meth:`new_value`."""

    site: Site
    positions: tuple[int, ...] | None = field(default=None, kw_only=True)

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        """Return the replacement for ``current`` (the site's slice: per head and positions
        applied). ``source`` is the matching slice of the resolved source, if any."""
        raise NotImplementedError

    @property
    def needs_source(self) -> bool:
        return False

    def apply(self, full: Tensor, source_full: Tensor | None) -> Tensor:
        """Apply to the whole tensor at ``site.without_head()``; returns a new tensor.
        Raises SiteError when the head or a position lies outside the tensor."""
        check_head_in_range(self.site, full.shape)
        _check_positions(self, full.shape)
        index = _slice_index(self.site, full.dim(), self.positions)
        if index is None:
            new = self.new_value(full, source_full)
            _check_shape(self, new, full)
            return new
        current = full[index]
        source = (
            None if source_full is None else _source_slice(self, source_full, index, full.dim())
        )
        new = self.new_value(current, source)
        _check_shape(self, new, current)
        out = full.clone()
        out[index] = new
        return out


@dataclass(frozen=True, eq=False)
class Zero(Intervention):
    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        return torch.zeros_like(current)


@dataclass(frozen=True, eq=False)
class Mean(Intervention):
    """Mean ablation. Give ``mean`` — one batch row of the *whole* site tensor
    (``site.without_head()``), e.g. [pos, d_model] or [pos, head, d_head], as
    :func:`interplab.core.model.mean_activations` returns — or ``reference`` inputs whose
    batch mean the model computes before the run."""

    mean: Tensor | None = None
    reference: Any = None

    def __post_init__(self) -> None:
        if (self.mean is None) == (self.reference is None):
            raise ShapeError(
                "Mean ablation needs exactly one of mean= (a tensor) or reference= "
                "(inputs whose mean activation is used)"
            )

    @property
    def needs_source(self) -> bool:
        return True

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        assert source is not None  # [1, ...] resolved by the model before the run
        try:
            return source.to(device=current.device, dtype=current.dtype).expand_as(current).clone()
        except RuntimeError:
            raise ShapeError(
                f"mean for {self.site} has shape {tuple(source.shape[1:])}, which does "
                f"not match the activation's {tuple(current.shape[1:])} per input; "
                "compute it from inputs of the same sequence length"
            ) from None


@dataclass(frozen=True, eq=False)
class Resample(Intervention):
    """Resample ablation: the site takes its value on ``source`` inputs (same batch size and
    sequence length; row i of the run gets row i of the source)."""

    source: Any = None

    @property
    def needs_source(self) -> bool:
        return True

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        assert source is not None
        return source.to(device=current.device, dtype=current.dtype)


@dataclass(frozen=True, eq=False)
class Patch(Intervention):
    """Activation patching from a cache (or a tensor of the site's full shape)."""

    value: ActivationCache | Tensor | None = None

    def resolved(self) -> Tensor:
        if isinstance(self.value, ActivationCache):
            return (
                self.value[self.site.without_head()]
                if self.site.without_head() in self.value
                else self.value[self.site]
            )
        if isinstance(self.value, Tensor):
            return self.value
        raise ShapeError(
            f"Patch for {self.site} needs value= an ActivationCache or a tensor, "
            f"got {type(self.value).__name__}"
        )

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        assert source is not None
        return source.to(device=current.device, dtype=current.dtype)


@dataclass(frozen=True, eq=False)
class Steer(Intervention):
    """Add ``scale * vector`` (broadcast over batch and positions)."""

    vector: Tensor | None = None
    scale: float = 1.0

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        if self.vector is None:
            raise ShapeError(f"Steer for {self.site} needs vector=")
        vec = self.vector.to(device=current.device, dtype=current.dtype)
        if vec.shape[-1] != current.shape[-1]:
            raise ShapeError(
                f"steering vector for {self.site} has width {vec.shape[-1]}, "
                f"the activation has {current.shape[-1]}"
            )
        return current + self.scale * vec


@dataclass(frozen=True, eq=False)
class Replace(Intervention):
    """Set the site to ``fn(value)``; ``fn`` may be any callable or nn.Module."""

    fn: Callable[[Tensor], Tensor] | None = None

    def new_value(self, current: Tensor, source: Tensor | None) -> Tensor:
        if self.fn is None:
            raise ShapeError(f"Replace for {self.site} needs fn=")
        return self.fn(current)


def _slice_index(site: Site, ndim: int, positions: tuple[int, ...] | None) -> tuple | None:
    """Index tuple selecting the head and positions, or None for the whole tensor."""
    if site.head is None and positions is None:
        return None
    index: list[Any] = [slice(None)] * ndim
    if site.head is not None:
        index[HEAD_AXIS[site.component]] = site.head
    if positions is not None:
        index[POS_AXIS[site.component]] = list(positions)
    return tuple(index)


def _source_slice(iv: Intervention, source: Tensor, index: tuple, ndim: int) -> Tensor:
    """The source slice matching ``index``. A source that already is the head's slice (one
    dimension fewer, e.g. a cache of the per-head site) is indexed by positions only."""
    if source.dim() == ndim - 1 and iv.site.head is not None:
        axis = HEAD_AXIS[iv.site.component]
        index = index[:axis] + index[axis + 1 :]
    elif source.dim() != ndim:
        raise ShapeError(
            f"source for {iv.site} has {source.dim()} dimensions "
            f"{tuple(source.shape)}; the activation has {ndim}"
        )
    try:
        return source[index]
    except IndexError:
        raise ShapeError(
            f"source for {iv.site} has shape {tuple(source.shape)}; it cannot be "
            "indexed like the activation"
        ) from None


def _check_positions(iv: Intervention, full_shape: torch.Size) -> None:
    """Raise SiteError when ``iv.positions`` do not index the site's position axis."""
    if iv.positions is None:
        return
    axis = POS_AXIS.get(iv.site.component)
    if axis is None or axis >= len(full_shape):
        raise SiteError(
            f"{type(iv).__name__} at {iv.site}: this site has no position axis "
            f"(shape {tuple(full_shape)}); drop positions="
        )
    n = full_shape[axis]
    bad = [p for p in iv.positions if not _is_index(p) or not -n <= int(p) < n]
    if bad:
        raise SiteError(
            f"{type(iv).__name__} at {iv.site}: positions {bad} are out of range; the "
            f"sequence has {n} positions (valid: 0..{n - 1}, or -{n}..-1 from the end)"
        )


def _is_index(p: Any) -> bool:
    if isinstance(p, bool):
        return False
    try:
        operator.index(p)
    except TypeError:
        return False
    return True


def _check_shape(iv: Intervention, new: Tensor, current: Tensor) -> None:
    if not isinstance(new, Tensor):
        raise ShapeError(
            f"{type(iv).__name__} at {iv.site} produced a {type(new).__name__}, "
            f"expected a tensor of shape {tuple(current.shape)} and dtype "
            f"{_dtype(current)}; return a tensor like the value it was given"
        )
    problems = []
    if new.shape != current.shape:
        problems.append(f"shape {tuple(new.shape)} (expected {tuple(current.shape)})")
    if new.dtype != current.dtype:
        problems.append(f"dtype {_dtype(new)} (expected {_dtype(current)})")
    if problems:
        raise ShapeError(
            f"{type(iv).__name__} at {iv.site} produced a tensor of "
            f"{' and '.join(problems)}; the activation has shape "
            f"{tuple(current.shape)} and dtype {_dtype(current)}. Return a tensor of "
            "the same shape and dtype (e.g. `.reshape(value.shape).to(value.dtype)`)"
        )


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")
