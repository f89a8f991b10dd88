"""Compiled organisms: ``compiled-<program>`` for every program in the RASP library.

Each is compiled on first use (:mod:`interplab.compile.programs`); its ground truth is the
compiler's own record of which weights implement which RASP operation.
"""

from __future__ import annotations

from interplab.zoo.registry import ZooEntry

QUICK = ("reverse", "frac_prevs")


def entries() -> list[ZooEntry]:
    """One entry per library program (tags "compiled", "circuits"; two also "quick")."""
    from interplab.compile.programs import LIBRARY

    return [
        ZooEntry(
            f"compiled-{name}",
            "compiled",
            f"compiled RASP: {spec.description}",
            lambda spec=spec: spec.compile(),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"compiled", "circuits"} | ({"quick"} if name in QUICK else set())),
        )
        for name, spec in LIBRARY.items()
    ]
