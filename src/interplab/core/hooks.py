"""Hook points and the bookkeeping that guarantees hooks are removed.

A :class:`HookPoint` is an identity module placed at every activation of a native model.
:class:`Binding` says where a site's tensor lives in *any* module (its output or an input
argument, possibly inside a tuple, possibly viewed into per-head form), so one hook mechanism
serves native models and wrapped third-party ones alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

Tensor = torch.Tensor
#: A site hook receives the site's full tensor and returns a replacement (or None to keep it).
SiteHook = Callable[[Tensor], "Tensor | None"]


class HookPoint(nn.Module):
    """Identity module marking an activation. ``active`` tells the owner whether anyone listens,
    so expensive optional activations (per-head results, per-head inputs) are built only then."""

    def forward(self, x: Tensor) -> Tensor:
        return x

    @property
    def active(self) -> bool:
        return bool(self._forward_hooks)


class AttentionHooks(nn.Module):
    """Base of an attention module with hook points ``hook_q`` ... ``hook_result`` (declared
    here for the type checker; the module makes them in its ``__init__``)."""

    hook_q: HookPoint
    hook_k: HookPoint
    hook_v: HookPoint
    hook_scores: HookPoint
    hook_pattern: HookPoint
    hook_z: HookPoint
    hook_result: HookPoint


class ModelHooks(nn.Module):
    """Base of a transformer with hook points on its embedding, the final residual and the
    logits (declared here for the type checker; the model makes them in its ``__init__``)."""

    hook_embed: HookPoint
    hook_unembed_in: HookPoint
    hook_logits: HookPoint


class BlockHooks(nn.Module):
    """Base of a transformer block with hook points on its residual stream (declared here for
    the type checker; the block makes them in its ``__init__``)."""

    hook_resid_pre: HookPoint
    hook_attn_out: HookPoint
    hook_resid_mid: HookPoint
    hook_mlp_in: HookPoint
    hook_mlp_out: HookPoint
    hook_resid_post: HookPoint


def _identity(x: Tensor) -> Tensor:
    return x


@dataclass(frozen=True)
class Binding:
    """Where a site's tensor is found.

    Attributes:
        module: the module whose output (or input) holds the value.
        where: "output" (forward hook) or "input" (forward pre-hook on positional args).
        index: position inside a tuple output/argument list; None means the value itself
            (for "input", None means argument 0).
        to_site: maps the raw tensor to the site's documented shape (e.g. [b,p,h*dh] ->
            [b,p,h,dh]); must return a view or a tensor whose changes are written back by
            ``from_site``.
        from_site: maps a site-shaped tensor back to the raw layout.
    """

    module: nn.Module
    where: str = "output"
    index: int | None = None
    to_site: Callable[[Tensor], Tensor] = _identity
    from_site: Callable[[Tensor], Tensor] = _identity

    def register(self, fn: SiteHook) -> torch.utils.hooks.RemovableHandle:
        """Register ``fn`` on the module; returns the handle (the caller must remove it)."""
        if self.where == "output":

            def out_hook(_module: nn.Module, _args: Any, output: Any) -> Any:
                if self.index is None:
                    return self._transform(output, fn)
                new = self._transform(output[self.index], fn)
                return None if new is None else _replace_item(output, self.index, new)

            return self.module.register_forward_hook(out_hook)
        if self.where == "input":
            index = 0 if self.index is None else self.index

            def in_hook(_module: nn.Module, args: tuple) -> Any:
                new = self._transform(args[index], fn)
                return None if new is None else _replace_item(args, index, new)

            return self.module.register_forward_pre_hook(in_hook)
        raise ValueError(f"Binding.where must be 'output' or 'input', got {self.where!r}")

    def _transform(self, raw: Tensor, fn: SiteHook) -> Tensor | None:
        """Apply ``fn`` in site layout; None when ``fn`` kept the value unchanged."""
        new = fn(self.to_site(raw))
        return None if new is None else self.from_site(new)


def _replace_item(container: Any, index: int, value: Any) -> Any:
    items = list(container)
    items[index] = value
    return tuple(items) if isinstance(container, tuple) else items


class HookRegistry:
    """Collects hook handles and removes them all on exit, on success and on error."""

    def __init__(self) -> None:
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def add(self, handle: torch.utils.hooks.RemovableHandle) -> None:
        self._handles.append(handle)

    def remove_all(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __len__(self) -> int:
        return len(self._handles)


@contextlib.contextmanager
def hooks_removed_after() -> Iterator[HookRegistry]:
    """Context manager yielding a registry whose hooks are removed however the block exits.

    Hooked runs keep freed memory for reuse (:func:`interplab.core.memory.keep_freed_memory_for_hooks`,
    applied once per process unless opted out)."""
    from interplab.core.memory import keep_freed_memory_for_hooks

    keep_freed_memory_for_hooks()
    registry = HookRegistry()
    try:
        yield registry
    finally:
        registry.remove_all()


def count_hooks(module: nn.Module) -> int:
    """Number of forward and pre-forward hooks attached anywhere in ``module`` (for tests)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())
