"""What an edge of a compiled program carries, as values the RASP evaluator can replace.

    Read      one value an edge carries: the receiving expression, the variable, the role
    Mixture   a mean-ablated categorical value: each value with its share
    same      equal outputs (numbers within a tolerance, anything else by repr)

Shared by the edge truth (:mod:`interplab.compile.dataflow_truth`) and the model of the
compiled machinery (:mod:`interplab.compile.compiled_run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interplab.compile.residual_basis import BOS, ONE

#: the variable name under which a selector width's BOS weight is read
SCRATCH = ":bos_weight"
CONSTANTS = (ONE, BOS)
LOGITS = "<logits>"


@dataclass(frozen=True)
class Mixture:
    """A mean-ablated categorical value at one position: each value with its share."""

    shares: tuple[tuple[Any, float], ...]

    def collapse(self) -> Any:
        """The value holding more than half the share, else None (no value of the variable)."""
        for value, p in self.shares:
            if p > 0.5:
                return value
        return None


@dataclass(frozen=True, order=True)
class Read:
    """One value an edge carries: ``reader`` (the label the receiving block computes, or
    ``<logits>``) reads ``variable`` in ``role`` ("q", "k", "v" or "in")."""

    reader: str
    variable: str
    role: str

    def to_json(self) -> list[str]:
        return [self.reader, self.variable, self.role]


def same(a: Sequence[Any], b: Sequence[Any], tol: float = 1e-6) -> bool:
    """Whether two outputs agree: numbers within ``tol``, other values by ``repr``."""
    for x, y in zip(a, b):
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            if abs(float(x) - float(y)) > tol:
                return False
        elif repr(x) != repr(y):
            return False
    return True
