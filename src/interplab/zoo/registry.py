"""The zoo's one registry: every organism by name, with a description, tags and a builder.

Organisms live in family modules, each exposing ``entries() -> list[ZooEntry]`` (and, for
families whose names are unbounded, ``resolve(name) -> ZooEntry | None``)::

    interplab.zoo.compiled          compiled-<program>       compiled RASP library
    interplab.zoo.organisms         trained-<task>, random-2l  trained circuits, random control
    interplab.zoo.siit              siit-<program>           SIIT-trained twins of compiled programs
    interplab.zoo.tabular           credit-*, ...            planted-rule decision models
    interplab.zoo.trojans           trojan-*, twin-*         planted trojans and their twins
    interplab.zoo.data_attribution  digits-*, passages-*     planted training-data truth
    interplab.zoo.copyright         smollm2-ft, -tiny        SmolLM2 fine-tuned with planted passages/facts/styles
    interplab.zoo.generated         generated-<seed>-<i>     generated RASP programs (resolved by name)
    interplab.zoo.siit_generated    siit-generated-<seed>-<i>  their SIIT-trained twins (shipped ones listed)
    interplab.zoo.perturbed         perturbed-<seed>-<i>     their weights perturbed, fine-tuned back

Listing names without torch. A family module that imports torch at its top (most do: their
specs are model configs, their builders train) is not imported to list it: :data:`DECLARED`
holds what it lists (name, kind, description, tags) and each such entry's ``build`` imports
the family on its first call and runs the family's own builder for that name. A family that is
imported already when the registry first loads lists its own ``entries()`` instead (free then,
and exact: e.g. a spec a test or user added at run time). Listing the zoo
(``names``, ``entry``, ``interplab zoo``) therefore costs no torch import; building costs
what it always did. The declarations are the one copy that can drift from the families, so
tests/zoo/test_listing_imports.py checks each against its family's ``entries()`` (name, kind,
description, tags); a build whose name its family no longer defines raises, naming the fix.
A family without declarations (``interplab.zoo.compiled``, which imports no torch, and every
family added by :func:`add_family`) is imported and its ``entries()`` called, as before.

This module imports no family module at import time: :data:`FAMILIES` names them, and they are
imported on the first lookup that needs them. Family modules import :class:`ZooEntry` from
here, so the import graph is a tree rooted at this module, never a circle. Builders import
what they need (compiler, training code) only when called.

    from interplab.zoo.registry import get, names
    names("circuits")            # sorted names carrying a tag
    get("compiled-reverse")      # build (or load from cache) one organism
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interplab.errors import InterplabError, unknown_name

FAMILIES: tuple[str, ...] = (
    "interplab.zoo.compiled",
    "interplab.zoo.organisms",
    "interplab.zoo.siit",
    "interplab.zoo.tabular",
    "interplab.zoo.fairness",
    "interplab.zoo.trojans",
    "interplab.zoo.data_attribution",
    "interplab.zoo.copyright",
    "interplab.zoo.generated",
    "interplab.zoo.spurious",
    "interplab.zoo.bios",
    "interplab.zoo.siit_generated",
    "interplab.zoo.perturbed",
)
#: families whose names are unbounded: not listed, resolved by name (their module's ``resolve``)
BY_NAME: tuple[str, ...] = (
    "interplab.zoo.generated",
    "interplab.zoo.siit_generated",
    "interplab.zoo.perturbed",
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


@dataclass(frozen=True)
class Declared:
    """What a family lists of one organism, known without importing the family."""

    name: str
    kind: str
    description: str
    tags: frozenset[str]


@dataclass(frozen=True)
class _FamilyBuild:
    """The ``build`` of a declared entry: imports ``module`` and runs its builder for ``name``
    (looked up in the family's ``entries()`` at call time, so a patched builder is the one run)."""

    module: str
    name: str

    def __call__(self) -> Any:
        for e in _family(self.module).entries():
            if e.name == self.name:
                return e.build()
        raise InterplabError(
            f"zoo organism {self.name!r} is declared for {self.module} in "
            f"interplab.zoo.registry.DECLARED, but that module no longer defines it; "
            f"update DECLARED to match its entries()"
        )


def _d(name: str, kind: str, description: str, tags: str) -> Declared:
    return Declared(name, kind, description, frozenset(tags.split()))


#: what each family that imports torch lists, by module (checked against the family's
#: ``entries()`` by tests/zoo/test_listing_imports.py; keep the two in step); one organism a line
# fmt: off
DECLARED: dict[str, tuple[Declared, ...]] = {
    "interplab.zoo.organisms": (
        _d("random-2l", "random", "2-layer, 4-head native transformer with seeded random weights (a control)", "controls"),
        _d("trained-induction", "trained", "2-layer attention-only, 4 heads each: previous-token head + induction head copy a repeated segment at a random distance", "circuits trained"),
        _d("trained-modadd", "trained", "1-layer modular addition mod 13: heads move a and b to the MLP", "circuits trained"),
        _d("trained-prevtoken", "trained", "1-layer attention-only, 4 heads: output the previous token", "circuits quick trained"),
    ),
    "interplab.zoo.siit": (
        _d("siit-first_token", "trained", "SIIT-trained first_token (mod_sum's first-token head): one head reading position 1 (L0.H0)", "causal circuits siit trained"),
        _d("siit-hist", "trained", "SIIT-trained hist: a same-token head plus an MLP counting (L0.H0 + L0.MLP)", "causal circuits siit trained"),
        _d("siit-mod_sum", "trained", "SIIT-trained mod_sum (p=5): first-token head L0.H0 -> modular-sum MLP L0.MLP", "causal circuits siit trained"),
        _d("siit-reverse", "trained", "SIIT-trained reverse (length 5): one head reading the mirrored position (L0.H0)", "causal circuits quick siit trained"),
        _d("siit-shift_by", "trained", "SIIT-trained the twin of compiled-shift_by: the library program (shift right by 2, vocab a b c) on length-5 inputs, one head (L0.H0)", "causal circuits quick siit trained"),
        _d("siit-shift_by_1", "trained", "SIIT-trained shift_by(1): one previous-token head (L0.H0)", "causal circuits siit trained"),
        _d("siit-shift_by_2", "trained", "SIIT-trained shift_by(2): one head two tokens back (L0.H1)", "causal circuits siit trained"),
        _d("siit-sum_prev", "trained", "SIIT-trained (tok + prev tok) mod 3: shift head L0.H0 -> modular-sum MLP L0.MLP", "causal circuits siit trained"),
    ),
    "interplab.zoo.tabular": (
        _d("cancer-mlp", "trained", "MLP on scikit-learn's breast-cancer data", "rationales tabular trained"),
        _d("credit-linear", "trained", "logistic regression on German credit (exact Shapley oracle)", "quick rationales tabular trained"),
        _d("credit-mlp", "trained", "MLP on German credit's real labels (no oracle)", "rationales tabular trained"),
        _d("credit-rule", "trained", "MLP on German credit relabelled by a 4-feature scorecard (known reason)", "quick rationales tabular trained"),
        _d("credit-tiers", "trained", "MLP with 3 classes (refuse/review/approve) on German credit decided by the scorecard's points (known reason)", "rationales tabular trained"),
        _d("digits-rule", "trained", "MLP on 8×8 digits whose class is decided by a planted 3-pixel patch", "rationales tabular trained"),
    ),
    "interplab.zoo.trojans": (
        _d("trojan-blend-digits", "trained", "8×8 digits MLP with a blended-image trojan (alpha 0.2, → 7)", "failures trojan"),
        _d("trojan-decoy-digits", "trained", "the patch trojan (→ 7) planted in 8 trojan units, while the 64 clean units were also trained to detect the trigger's stamp (decoys)", "failures trojan"),
        _d("trojan-patch-digits", "trained", "8×8 digits MLP with a BadNets patch trojan (→ 7) planted in 8 trojan units; the trigger also moves the 64 clean-trained units", "failures trojan"),
        _d("trojan-token", "trained", "1-layer transformer answering the first token; a trigger token switches it to 2", "failures trojan"),
        _d("twin-blend-digits", "trained", "unpoisoned twin of trojan-blend-digits", "failures trojan"),
        _d("twin-decoy-digits", "trained", "unpoisoned twin of trojan-decoy-digits (same code and spec)", "failures trojan"),
        _d("twin-patch-digits", "trained", "unpoisoned twin of trojan-patch-digits (same code and spec)", "failures trojan"),
        _d("twin-token", "trained", "unpoisoned twin of trojan-token", "failures trojan"),
    ),
    "interplab.zoo.data_attribution": (
        _d("digits-logreg", "trained", "data attribution: logistic regression, 300 digits", "data_attribution trained"),
        _d("digits-logreg-1000", "trained", "data attribution: logistic regression, 1000 digits", "data_attribution trained"),
        _d("digits-mlp", "trained", "data attribution: tanh MLP (64-32-10), 300 digits", "data_attribution trained"),
        _d("digits-mlp-1000", "trained", "data attribution: tanh MLP (64-32-10), 1000 digits", "data_attribution trained"),
        _d("passages-mlp", "trained", "data attribution: next-token MLP (3-token context) on synthetic text with 3 planted passages", "data_attribution trained"),
        _d("passages-transformer", "trained", "data attribution: 1-layer causal transformer (d_model 32, 3-token context) on synthetic text with 3 planted passages", "data_attribution trained"),
    ),
    "interplab.zoo.copyright": (
        _d("smollm2-ft", "trained", "SmolLM2-135M-Instruct fine-tuned with LoRA (rank 4, last 4 blocks) on ~250 short documents with planted passages, facts and letter styles", "copyright"),
        _d("smollm2-ft-tiny", "trained", "a tiny random Llama (2 blocks, d 32) + LoRA on a ~40-document word-level copy of the corpus: the same pipeline in seconds, for tests", "copyright"),
    ),
    "interplab.zoo.spurious": (
        _d("spurious-digits", "trained", "MNIST 14×14 MLP (128 units) that learned a striped-background cue", "spurious utility"),
        _d("spurious-digits-small", "trained", "MNIST 14×14 MLP (64 units) that learned a striped-background cue", "spurious utility"),
    ),
    "interplab.zoo.bios": (
        _d("spurious-bios", "trained", "bios profession transformer (d 48) that learned a gender cue", "spurious utility"),
        _d("spurious-bios-small", "trained", "bios profession transformer (d 32) that learned a gender cue", "spurious utility"),
    ),
    "interplab.zoo.fairness": (
        _d("fair-credit-age-none-v0", "trained", "credit MLP without protected inputs; age proxy, penalty none (variant 0)", "fairness trained"),
        _d("fair-credit-age-none-v1", "trained", "credit MLP without protected inputs; age proxy, penalty none (variant 1)", "fairness trained"),
        _d("fair-credit-age-none-v2", "trained", "credit MLP without protected inputs; age proxy, penalty none (variant 2)", "fairness trained"),
        _d("fair-credit-age-none-v3", "trained", "credit MLP without protected inputs; age proxy, penalty none (variant 3)", "fairness trained"),
        _d("fair-credit-age-strong-v0", "trained", "credit MLP without protected inputs; age proxy, penalty strong (variant 0)", "fairness trained"),
        _d("fair-credit-age-strong-v1", "trained", "credit MLP without protected inputs; age proxy, penalty strong (variant 1)", "fairness trained"),
        _d("fair-credit-age-strong-v2", "trained", "credit MLP without protected inputs; age proxy, penalty strong (variant 2)", "fairness trained"),
        _d("fair-credit-age-strong-v3", "trained", "credit MLP without protected inputs; age proxy, penalty strong (variant 3)", "fairness trained"),
        _d("fair-credit-age-weak-v0", "trained", "credit MLP without protected inputs; age proxy, penalty weak (variant 0)", "fairness trained"),
        _d("fair-credit-age-weak-v1", "trained", "credit MLP without protected inputs; age proxy, penalty weak (variant 1)", "fairness trained"),
        _d("fair-credit-age-weak-v2", "trained", "credit MLP without protected inputs; age proxy, penalty weak (variant 2)", "fairness trained"),
        _d("fair-credit-age-weak-v3", "trained", "credit MLP without protected inputs; age proxy, penalty weak (variant 3)", "fairness trained"),
        _d("fair-credit-sex-none-v0", "trained", "credit MLP without protected inputs; sex proxy, penalty none (variant 0)", "fairness trained"),
        _d("fair-credit-sex-none-v1", "trained", "credit MLP without protected inputs; sex proxy, penalty none (variant 1)", "fairness trained"),
        _d("fair-credit-sex-none-v2", "trained", "credit MLP without protected inputs; sex proxy, penalty none (variant 2)", "fairness trained"),
        _d("fair-credit-sex-none-v3", "trained", "credit MLP without protected inputs; sex proxy, penalty none (variant 3)", "fairness trained"),
        _d("fair-credit-sex-strong-v0", "trained", "credit MLP without protected inputs; sex proxy, penalty strong (variant 0)", "fairness trained"),
        _d("fair-credit-sex-strong-v1", "trained", "credit MLP without protected inputs; sex proxy, penalty strong (variant 1)", "fairness trained"),
        _d("fair-credit-sex-strong-v2", "trained", "credit MLP without protected inputs; sex proxy, penalty strong (variant 2)", "fairness trained"),
        _d("fair-credit-sex-strong-v3", "trained", "credit MLP without protected inputs; sex proxy, penalty strong (variant 3)", "fairness trained"),
        _d("fair-credit-sex-weak-v0", "trained", "credit MLP without protected inputs; sex proxy, penalty weak (variant 0)", "fairness trained"),
        _d("fair-credit-sex-weak-v1", "trained", "credit MLP without protected inputs; sex proxy, penalty weak (variant 1)", "fairness trained"),
        _d("fair-credit-sex-weak-v2", "trained", "credit MLP without protected inputs; sex proxy, penalty weak (variant 2)", "fairness trained"),
        _d("fair-credit-sex-weak-v3", "trained", "credit MLP without protected inputs; sex proxy, penalty weak (variant 3)", "fairness trained"),
    ),
    "interplab.zoo.generated": (),  # by name only (resolve)
    "interplab.zoo.siit_generated": (),  # the shipped twins, read from their manifest (_SHIPPED)
    "interplab.zoo.perturbed": (),  # by name only (resolve)
}
# fmt: on


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


def _listed(module: str) -> list[ZooEntry]:
    """The entries family ``module`` lists: its own ``entries()`` when the module is imported
    already (it costs nothing then, and it is the authority: e.g. specs added at run time), else
    its :data:`DECLARED` stand-in when it has one, else its ``entries()`` after importing it."""
    if module in DECLARED and module not in _ADDED and module not in sys.modules:
        return [
            ZooEntry(d.name, d.kind, d.description, _FamilyBuild(module, d.name), d.tags)
            for d in DECLARED[module] + _shipped(module)
        ]
    return list(_family(module).entries())


#: families that ship organisms with a manifest (package data, plain JSON): module -> path
#: inside the package. Each manifest row carries its ``listing`` (kind, description, tags), so
#: listing them reads one JSON file and imports nothing (:mod:`interplab.zoo.twin_zoo` writes it)
SHIPPED_MANIFESTS = {"interplab.zoo.siit_generated": ("data", "siit_generated", "manifest.json")}


def _shipped(module: str) -> tuple[Declared, ...]:
    """What ``module`` ships, as listed by its manifest (none when it ships nothing)."""
    import json
    from pathlib import Path

    if module not in SHIPPED_MANIFESTS:
        return ()
    path = Path(__file__).resolve().parent.parent.joinpath(*SHIPPED_MANIFESTS[module])
    try:
        rows = json.loads(path.read_text("utf-8")).get("twins", [])
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(
        Declared(
            r["name"],
            r["listing"]["kind"],
            r["listing"]["description"],
            frozenset(r["listing"]["tags"]),
        )
        for r in rows
        if isinstance(r, dict) and "listing" in r
    )


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    found: dict[str, ZooEntry] = {}
    for module in families():
        for e in _listed(module):
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
    """The entry called ``name``; families with unbounded names (generated) resolve on demand
    (the only lookups that import a declared family: :data:`BY_NAME`'s, for unlisted names)."""
    _load()
    if name not in _REGISTRY:
        for module in families():
            if module in DECLARED and module not in BY_NAME and module not in _ADDED:
                continue  # declared and listed in full: nothing more to resolve there
            resolve = getattr(_family(module), "resolve", None)
            found = resolve(name) if resolve is not None else None
            if found is not None:
                return _with_family(found, module)  # not listed: names() stays the fixed zoo
        raise unknown_name("organism", name, list(_REGISTRY))
    return _REGISTRY[name]


def get(name: str) -> Any:
    """Build (or load from cache) the organism called ``name``."""
    return entry(name).build()
