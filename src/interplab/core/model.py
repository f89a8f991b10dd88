"""HookedModel: run any torch module while reading and changing activations at typed sites."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from interplab.core.cache import ActivationCache, CacheSpec
from interplab.core.hooks import Binding, HookRegistry, SiteHook, hooks_removed_after
from interplab.core.interventions import Intervention, Mean, Patch, Resample
from interplab.core.sites import Site, check_head_in_range
from interplab.errors import InterplabError, ShapeError, SiteError

Tensor = torch.Tensor


def _default_call(module: nn.Module, inputs: Any) -> Any:
    return module(inputs)


class HookedModel:
    """A torch module plus a map from typed sites to where their activations live.

    Args:
        module: the model.
        bindings: Site -> :class:`Binding`. Per-head sites are served from their whole-layer
            site (``site.without_head()``), so bind only those.
        call: how to run the module on ``inputs`` and get its output tensor
            (default: ``module(inputs)``).
        validate: optional check of ``inputs`` that raises an InterplabError on bad input.
        batch_size_of: how many examples ``inputs`` holds (default: ``len(inputs)``).
        name: display name.
    """

    def __init__(
        self,
        module: nn.Module,
        bindings: Mapping[Site, Binding],
        *,
        call: Callable[[nn.Module, Any], Tensor] = _default_call,
        validate: Callable[[Any], None] | None = None,
        batch_size_of: Callable[[Any], int] | None = None,
        name: str = "model",
    ):
        self.module = module
        self._bindings = dict(bindings)
        self._call = call
        self._validate = validate
        self._batch_size_of = batch_size_of or (lambda x: len(x))
        self.name = name

    # ----------------------------------------------------------------- sites
    @property
    def sites(self) -> tuple[Site, ...]:
        """Every whole-tensor site this model exposes (per-head sites are derived from these)."""
        return tuple(self._bindings)

    def has_site(self, site: Site) -> bool:
        return site in self._bindings or (
            site.head is not None and site.without_head() in self._bindings
        )

    def check_site(self, site: Site) -> Site:
        """Return the whole-tensor site bound for ``site``, or raise SiteError naming valid ones."""
        if not isinstance(site, Site):
            raise SiteError(
                f"expected a Site, got {type(site).__name__} {site!r}; "
                "use interplab.parse_site('L0.resid_pre') to read one from text"
            )
        base = site.without_head()
        if base not in self._bindings:
            import difflib

            names = [str(s) for s in self._bindings]
            close = difflib.get_close_matches(str(base), names, n=3)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise SiteError(
                f"{self.name} has no site {site}.{hint} It has {len(names)} sites; "
                f"list them with model.sites or `interplab sites`."
            )
        return base

    # ------------------------------------------------------------------ runs
    def forward(self, inputs: Any) -> Tensor:
        if self._validate is not None:
            self._validate(inputs)
        return self._call(self.module, inputs)

    def run(self, inputs: Any) -> Tensor:
        """Plain forward pass (no hooks)."""
        return self.forward(inputs)

    __call__ = run

    def run_with_cache(
        self,
        inputs: Any,
        sites: Iterable[Site] | None = None,
        *,
        spec: Mapping[Site, CacheSpec] | None = None,
        positions: Sequence[int] | None = None,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        keep_grad: bool = False,
        interventions: Sequence[Intervention] = (),
    ) -> tuple[Tensor, ActivationCache]:
        """Run and record activations.

        Args:
            sites: which sites to record (default: all). Per-head sites store only that slice.
            spec: per-site :class:`CacheSpec`, overriding ``positions``/``dtype``/``device``.
            positions, dtype, device: the default CacheSpec for every site.
            keep_grad: keep activations in the autograd graph (for attribution); otherwise
                they are detached and the run is under ``torch.no_grad()``.
            interventions: applied during the same run (the cache records the changed values).

        Returns:
            (output, cache). Raises SiteError if a requested site never fired.
        """
        wanted = list(self._bindings) if sites is None else list(sites)
        default = CacheSpec(tuple(positions) if positions is not None else None, dtype, device)
        spec = dict(spec or {})
        for site in spec:
            if site not in wanted:
                wanted.append(site)
        store: dict[Site, Tensor] = {}
        by_base: dict[Site, list[Site]] = {}
        for site in wanted:
            by_base.setdefault(self.check_site(site), []).append(site)

        def make_hook(base: Site, requested: list[Site]) -> SiteHook:
            def hook(value: Tensor) -> None:
                for site in requested:
                    check_head_in_range(site, value.shape)
                    v = value if site.head is None else value.select(_head_axis(site), site.head)
                    v = v if keep_grad else v.detach()
                    store[site] = spec.get(site, default).apply(site, v)
                return None

            return hook

        grad_ctx = contextlib.nullcontext() if keep_grad else torch.no_grad()
        with grad_ctx, hooks_removed_after() as registry:
            fired = self._register_interventions(registry, inputs, interventions)
            for base, requested in by_base.items():
                registry.add(self._bindings[base].register(make_hook(base, requested)))
            output = self.forward(inputs)
        missing = [str(s) for s in wanted if s not in store]
        if missing:
            raise SiteError(
                f"these sites never fired during the run: {', '.join(missing)}. The "
                "module did not execute them for these inputs (a skipped branch, or a "
                "binding to a module that the forward does not call)."
            )
        self._check_fired(interventions, fired)
        return output, ActivationCache(store, self._batch_size_of(inputs))

    def run_with(
        self, inputs: Any, interventions: Sequence[Intervention], *, grad: bool = False
    ) -> Tensor:
        """Run with ``interventions`` applied in order; returns the output.
        ``grad=True`` keeps the autograd graph (e.g. to train through an intervention).

        Raises SiteError if an intervention's site never fired during the run (so the
        intervention changed nothing), naming those sites."""
        ctx = contextlib.nullcontext() if grad else torch.no_grad()
        with ctx, hooks_removed_after() as registry:
            fired = self._register_interventions(registry, inputs, interventions)
            output = self.forward(inputs)
        self._check_fired(interventions, fired)
        return output

    @contextlib.contextmanager
    def hooks(self, fns: Mapping[Site, SiteHook]) -> Iterator[None]:
        """Attach raw site hooks for the duration of a ``with`` block. Each hook gets the whole
        site tensor and returns a replacement or None. Removed on exit, error or not."""
        with hooks_removed_after() as registry:
            for site, fn in fns.items():
                registry.add(self._bindings[self.check_site(site)].register(fn))
            yield

    # --------------------------------------------------------------- helpers
    def _register_interventions(
        self, registry: HookRegistry, inputs: Any, interventions: Sequence[Intervention]
    ) -> set[Site]:
        """Hook ``interventions`` into the next forward; returns the set that the hooks fill
        with the whole-tensor sites that fired (see :meth:`_check_fired`)."""
        fired: set[Site] = set()
        if not interventions:
            return fired
        for iv in interventions:
            if not isinstance(iv, Intervention):
                raise InterplabError(
                    f"interventions must be Intervention values (Zero, Mean, "
                    f"Resample, Patch, Steer, Replace), got {type(iv).__name__}"
                )
            self.check_site(iv.site)
        sources = self._resolve_sources(inputs, interventions)
        by_base: dict[Site, list[tuple[Intervention, Tensor | None]]] = {}
        for iv, src in zip(interventions, sources):
            by_base.setdefault(iv.site.without_head(), []).append((iv, src))
        for base, items in by_base.items():

            def hook(value: Tensor, items: list = items, base: Site = base) -> Tensor:
                fired.add(base)
                for iv, src in items:
                    value = iv.apply(value, src)
                return value

            registry.add(self._bindings[base].register(hook))
        return fired

    def _check_fired(self, interventions: Sequence[Intervention], fired: set[Site]) -> None:
        """Raise SiteError naming every intervention whose site never fired (it changed nothing)."""
        silent = [iv for iv in interventions if iv.site.without_head() not in fired]
        if not silent:
            return
        named = ", ".join(dict.fromkeys(f"{type(iv).__name__} at {iv.site}" for iv in silent))
        raise SiteError(
            f"{len(silent)} intervention(s) never took effect because their site never "
            f"fired during the run: {named}. {self.name} did not execute these sites "
            "for these inputs (a skipped branch, a layer the run starts after, or a "
            "binding to a module the forward does not call), so the output is the "
            "unchanged run. Check the layer and component against model.sites (or "
            "`interplab sites`) and intervene where the computation happens."
        )

    def _resolve_sources(
        self, inputs: Any, interventions: Sequence[Intervention]
    ) -> list[Tensor | None]:
        """Compute what Mean/Resample/Patch interventions need, running each distinct source
        input once for all the sites that read it."""
        batch = self._batch_size_of(inputs)
        groups: dict[int, tuple[Any, set[Site]]] = {}
        for iv in interventions:
            src = (
                iv.reference
                if isinstance(iv, Mean)
                else iv.source
                if isinstance(iv, Resample)
                else None
            )
            if src is not None:
                groups.setdefault(id(src), (src, set()))[1].add(iv.site.without_head())
        caches = {key: self.run_with_cache(src, sites)[1] for key, (src, sites) in groups.items()}
        out: list[Tensor | None] = []
        for iv in interventions:
            base = iv.site.without_head()
            if isinstance(iv, Mean):
                if iv.mean is not None:
                    out.append(iv.mean.unsqueeze(0))
                else:
                    out.append(caches[id(iv.reference)][base].mean(0, keepdim=True))
            elif isinstance(iv, Resample):
                if iv.source is None:
                    raise ShapeError(f"Resample at {iv.site} needs source= inputs to resample from")
                value = caches[id(iv.source)][base]
                if value.shape[0] != batch:
                    raise ShapeError(
                        f"Resample at {iv.site}: the source has {value.shape[0]} inputs "
                        f"but the run has {batch}; give a source batch of the same size"
                    )
                out.append(value)
            elif isinstance(iv, Patch):
                if isinstance(iv.value, ActivationCache):
                    iv.value.check_batch(batch, "the patched run")
                out.append(iv.resolved())
            else:
                out.append(None)
        return out


def _head_axis(site: Site) -> int:
    from interplab.core.sites import HEAD_AXIS

    return HEAD_AXIS[site.component]


def mean_activations(
    model: HookedModel, reference: Any, sites: Iterable[Site]
) -> dict[Site, Tensor]:
    """Batch-mean activation of each whole site on ``reference`` inputs: {site: [*site_shape_without_batch]}.
    Feed the values to ``Mean(site, mean=...)``."""
    bases = sorted({model.check_site(s) for s in sites}, key=str)
    _, cache = model.run_with_cache(reference, bases)
    return {s: cache[s].mean(0) for s in bases}


def wrap_module(
    module: nn.Module, paths: Iterable[str] | None = None, *, name: str | None = None, **kwargs: Any
) -> HookedModel:
    """Wrap a plain ``nn.Module``: each named submodule's output becomes ``Site.module(path)``.

    Args:
        paths: module paths to expose (default: every named submodule with no children,
            plus every container). Unknown paths raise SiteError listing valid ones.
    """
    named = dict(module.named_modules())
    named.pop("", None)
    chosen = list(named) if paths is None else list(paths)
    unknown = [p for p in chosen if p not in named]
    if unknown:
        raise SiteError(f"module has no submodule(s) {unknown}; valid paths: {', '.join(named)}")
    bindings = {Site.module(p): Binding(named[p]) for p in chosen}
    return HookedModel(module, bindings, name=name or type(module).__name__, **kwargs)
