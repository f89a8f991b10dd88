"""The zoo's one registry: every organism by name, with a description, tags and a builder.

Organisms live in family modules, each exposing ``entries() -> list[ZooEntry]`` (and, for
families whose names are unbounded, ``resolve(name) -> ZooEntry | None``)::

    interplab.zoo.compiled          compiled-<program>       compiled RASP library
    interplab.zoo.organisms         trained-<task>, random-2l  trained circuits, random control
    interplab.zoo.siit              siit-<program>           SIIT-trained twins of compiled programs
    interplab.zoo.tabular           credit-*, ...            planted-rule decision models
    interplab.zoo.trojans           trojan-*, twin-*         planted trojans and their twins
    interplab.zoo.data_attribution  digits-*, passages-*     planted training-data truth
    interplab.zoo.generated         generated-<seed>-<i>     generated RASP programs (resolved by name)
    interplab.zoo.siit_generated    siit-generated-<seed>-<i>  their SIIT-trained twins (by name)

This module imports no family module at import time: :data:`FAMILIES` names them, and they are
imported (and their entries added) on the first lookup. Family modules import :class:`ZooEntry`
from here, so the import graph is a tree rooted at this module, never a circle. Builders import
what they need (compiler, training code) only when called.

    from interplab.zoo.registry import get, names
    names("circuits")            # sorted names carrying a tag
    get("compiled-reverse")      # build (or load from cache) one organism
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interplab.errors import InterplabError, unknown_name

FAMILIES: tuple[str, ...] = (
    "interplab.zoo.compiled",
    "interplab.zoo.organisms",
    "interplab.zoo.siit",
    "interplab.zoo.tabular",
    "interplab.zoo.trojans",
    "interplab.zoo.data_attribution",
    "interplab.zoo.generated",
    "interplab.zoo.spurious",
    "interplab.zoo.bios",
    "interplab.zoo.siit_generated",
)


@dataclass(frozen=True)
class ZooEntry:
    """One organism.

    Attributes:
        name: registry key, e.g. "compiled-reverse".
        kind: "compiled", "trained", "random", "superposition", "synthetic" or "pretrained".
        description: one line for listings.
        build: zero-argument function returning the organism object (a HookedModel or an
            organism dataclass that has a ``.model``).
        tags: suites and tracks the organism belongs to, e.g. {"quick", "circuits"}.
        family: the module that defines it (filled in by the registry).
    """

    name: str
    kind: str
    description: str
    build: Callable[[], Any]
    tags: frozenset[str] = frozenset()
    family: str = ""


_REGISTRY: dict[str, ZooEntry] = {}
_LOADED = False
#: families added at run time by :func:`add_family`: module -> (truth kind, contract wrapper)
_ADDED: dict[str, tuple[str, Callable[[str, int, ZooEntry], Any]]] = {}


def add_family(module: str, *, truth: str, organism: Callable[[str, int, ZooEntry], Any]) -> None:
    """Add a family module (one that defines ``entries()``) to the zoo at run time.

    ``truth`` names the kind of truth it carries (circuit, planted, units, retraining, ...) and
    ``organism(name, seed, entry)`` puts one of its objects under the contract (returns an
    :class:`~interplab.zoo.contract.Organism` whose truth it has verified). A new family is one
    module that calls this at import; ``interplab zoo`` and ``interplab.organism`` then know it."""
    global _LOADED
    _ADDED[module] = (truth, organism)
    _LOADED = False  # list its entries on the next lookup


def remove_family(module: str) -> None:
    """Undo :func:`add_family` (for tests); its entries leave the registry."""
    global _LOADED
    _ADDED.pop(module, None)
    for name in [n for n, e in _REGISTRY.items() if e.family == module]:
        del _REGISTRY[name]
    _LOADED = False


def families() -> tuple[str, ...]:
    """Every family module: the built-in :data:`FAMILIES` and those added by :func:`add_family`."""
    return FAMILIES + tuple(m for m in _ADDED if m not in FAMILIES)


def added_contract(module: str) -> tuple[str, Callable[[str, int, ZooEntry], Any]] | None:
    """(truth kind, wrapper) of a family added by :func:`add_family`, else None."""
    return _ADDED.get(module)


def register(entry: ZooEntry) -> ZooEntry:
    """Add (or replace) one entry; for organisms defined outside the family modules."""
    _REGISTRY[entry.name] = entry
    return entry


def _family(module: str) -> Any:
    return importlib.import_module(module)


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    found: dict[str, ZooEntry] = {}
    for module in families():
        for e in _family(module).entries():
            if e.name in found:
                raise InterplabError(
                    f"zoo organism {e.name!r} is defined by both "
                    f"{found[e.name].family} and {module}; rename one"
                )
            found[e.name] = _with_family(e, module)
    for name, e in found.items():
        _REGISTRY.setdefault(name, e)  # an entry register()-ed earlier wins
    _LOADED = True


def _with_family(e: ZooEntry, module: str) -> ZooEntry:
    return ZooEntry(e.name, e.kind, e.description, e.build, e.tags, module)


def names(tag: str | None = None) -> list[str]:
    """Sorted names of the listed organisms (with ``tag`` if given)."""
    _load()
    return sorted(n for n, e in _REGISTRY.items() if tag is None or tag in e.tags)


def entry(name: str) -> ZooEntry:
    """The entry called ``name``; families with unbounded names (generated) resolve on demand."""
    _load()
    if name not in _REGISTRY:
        for module in families():
            resolve = getattr(_family(module), "resolve", None)
            found = resolve(name) if resolve is not None else None
            if found is not None:
                return _with_family(found, module)  # not listed: names() stays the fixed zoo
        raise unknown_name("organism", name, list(_REGISTRY))
    return _REGISTRY[name]


def get(name: str) -> Any:
    """Build (or load from cache) the organism called ``name``."""
    return entry(name).build()
