"""Registry of zoo organisms: a name, a description and a builder run on first use.

Builders are registered by the modules in this package at import of :mod:`interplab.zoo.catalog`
(which imports compile/models/methods lazily inside the builders, so listing names is cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from interplab.errors import unknown_name


@dataclass(frozen=True)
class ZooEntry:
    """One organism.

    Attributes:
        name: registry key, e.g. "compiled-reverse".
        kind: "compiled", "trained", "random", "superposition", "synthetic" or "pretrained".
        description: one line for listings.
        build: zero-argument function returning the organism object (a HookedModel or an
            organism dataclass that has a ``.model`` HookedModel).
        tags: suites and tracks the organism belongs to, e.g. {"quick", "circuits"}.
    """

    name: str
    kind: str
    description: str
    build: Callable[[], Any]
    tags: frozenset[str] = frozenset()


_REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    _REGISTRY[entry.name] = entry
    return entry


def _load_catalog() -> None:
    from interplab.zoo import catalog  # noqa: F401  (registers the built-in organisms)


def names(tag: str | None = None) -> list[str]:
    _load_catalog()
    return sorted(n for n, e in _REGISTRY.items() if tag is None or tag in e.tags)


def entry(name: str) -> ZooEntry:
    _load_catalog()
    if name not in _REGISTRY:
        raise unknown_name("organism", name, list(_REGISTRY))
    return _REGISTRY[name]


def get(name: str) -> Any:
    """Build (or load from cache) the organism called ``name``."""
    return entry(name).build()
