"""Shared case table for the compiler's unit and integration tests.

Every library program appears once. ``quick_inputs`` caps how many inputs the default (fast) run
checks; the slow run checks every input (or the seeded 10,000 sample) as `interplab compile --check`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from interplab.compile.programs import LIBRARY


@dataclass(frozen=True)
class Case:
    program: str
    quick_inputs: int = 300
    numerical: bool = False


NUMERICAL = {"frac_prevs", "pair_balance"}
CASES = [Case(name, numerical=name.removeprefix("causal-") in NUMERICAL) for name in LIBRARY]
IDS = [c.program for c in CASES]
#: compiled only in the slow run (the quick run has their bidirectional twins)
SLOW_ONLY = {"causal-max_so_far", "causal-min_so_far"}
#: CASES as pytest params, SLOW_ONLY marked slow
PARAMS = [
    pytest.param(c, id=c.program, marks=[pytest.mark.slow] if c.program in SLOW_ONLY else [])
    for c in CASES
]


@functools.cache
def compiled(name: str):
    """Compile each library program once per test session."""
    return LIBRARY[name].compile()
