"""ActivationCache: the activations one run recorded, addressed by Site."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from interplab.core.sites import HEAD_AXIS, POS_AXIS, Component, Site
from interplab.errors import ShapeError, SiteError

Tensor = torch.Tensor


@dataclass(frozen=True)
class CacheSpec:
    """How to store one site's activation.

    Attributes:
        positions: keep only these sequence positions (indices along the site's position axis);
            None keeps all.
        dtype: convert to this dtype (e.g. torch.float16 to halve memory); None keeps it.
        device: move to this device (e.g. "cpu" while the model runs elsewhere); None keeps it.
    """

    positions: tuple[int, ...] | None = None
    dtype: torch.dtype | None = None
    device: str | torch.device | None = None

    def apply(self, site: Site, value: Tensor) -> Tensor:
        if self.positions is not None:
            axis = POS_AXIS.get(site.component)
            if axis is None:
                raise SiteError(
                    f"site {site} has no position axis; drop positions= from its CacheSpec"
                )
            n = value.shape[axis]
            bad = [p for p in self.positions if not -n <= p < n]
            if bad:
                raise SiteError(
                    f"CacheSpec positions {bad} are out of range for {site}, whose "
                    f"sequence has {n} positions"
                )
            index = torch.as_tensor([p % n for p in self.positions], device=value.device)
            value = value.index_select(axis, index)
        if self.dtype is not None or self.device is not None:
            value = value.to(device=self.device, dtype=self.dtype)
        return value


class ActivationCache(Mapping[Site, Tensor]):
    """Mapping Site -> tensor from one run (shapes as documented in ``interplab.core.sites``).

    A per-head site (``head=h``) is answered from the whole-layer tensor when only that was
    stored. ``batch_size`` is the batch the activations came from."""

    def __init__(self, activations: Mapping[Site, Tensor], batch_size: int | None = None):
        self._acts = dict(activations)
        self.batch_size = batch_size

    def __getitem__(self, site: Site) -> Tensor:
        if not isinstance(site, Site):
            raise SiteError(
                f"cache keys are Site values, got {type(site).__name__} {site!r}; "
                "use interplab.parse_site() to turn a string into a Site"
            )
        if site in self._acts:
            return self._acts[site]
        if site.head is not None and site.without_head() in self._acts:
            return self._acts[site.without_head()].select(HEAD_AXIS[site.component], site.head)
        raise SiteError(
            f"site {site} is not in this cache; it holds {len(self._acts)} sites: "
            f"{_preview(self._acts)}. Pass it in sites= when running the model."
        )

    def __contains__(self, site: object) -> bool:
        if not isinstance(site, Site):
            return False
        return site in self._acts or (site.head is not None and site.without_head() in self._acts)

    def __iter__(self) -> Iterator[Site]:
        return iter(self._acts)

    def __len__(self) -> int:
        return len(self._acts)

    def stack(self, component: Component | str, layers: Sequence[int] | None = None) -> Tensor:
        """Stack one component over layers: shape [layer, *site_shape]."""
        component = Component(component)
        if layers is None:
            layers = sorted(
                {s.layer for s in self._acts if s.component is component and s.layer is not None}
            )
            if not layers:
                raise SiteError(
                    f"this cache holds no {component.value} sites; cached: {_preview(self._acts)}"
                )
        return torch.stack([self[Site(component, layer)] for layer in layers])

    def stack_heads(
        self, component: Component | str, layers: Sequence[int] | None = None
    ) -> Tensor:
        """Per-head component over layers with the head axis first after layer:
        shape [layer, head, batch, ...] (positions and features keep their order)."""
        component = Component(component)
        if component not in HEAD_AXIS:
            raise SiteError(f"{component.value} has no head axis; use stack() instead")
        stacked = self.stack(component, layers)  # [layer, batch, ..., head, ...]
        return stacked.movedim(HEAD_AXIS[component] + 1, 1)

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ActivationCache:
        return ActivationCache(
            {s: v.to(device=device, dtype=dtype) for s, v in self._acts.items()}, self.batch_size
        )

    def check_batch(self, batch_size: int, what: str = "this run") -> None:
        """Raise ShapeError when the cache came from a batch of a different size."""
        if self.batch_size is not None and self.batch_size != batch_size:
            raise ShapeError(
                f"the cache holds activations of a batch of {self.batch_size} inputs, "
                f"but {what} has {batch_size}; patch from a cache of the same batch "
                "size (or index the source batch to match)"
            )

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} sites, batch_size={self.batch_size})"


def _preview(acts: Mapping[Site, Tensor], limit: int = 8) -> str:
    names = [str(s) for s in list(acts)[:limit]]
    more = f", … (+{len(acts) - limit})" if len(acts) > limit else ""
    return ", ".join(names) + more if names else "(nothing)"
