"""Agreement between a compiled model and the reference evaluator, and residual decoding checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.compile import rasp
from interplab.compile.compiled import CompiledModel
from interplab.compile.ground_truth import values_equal
from interplab.core.sites import Site


@dataclass(frozen=True)
class Agreement:
    """``agreement`` = matching inputs / ``inputs_checked``; an input matches when every output
    position decodes to the evaluator's value (numerical within ``tol``)."""

    inputs_checked: int
    matching: int
    tol: float
    mismatches: tuple[tuple[list[Any], list[Any], list[Any]], ...] = field(default=(), repr=False)

    @property
    def agreement(self) -> float:
        return self.matching / self.inputs_checked if self.inputs_checked else float("nan")


def by_length(inputs: Sequence[Sequence[Any]]) -> dict[int, list[list[Any]]]:
    """Inputs grouped by length (a compiled model takes one length per batch)."""
    groups: dict[int, list[list[Any]]] = {}
    for x in inputs:
        groups.setdefault(len(x), []).append(list(x))
    return groups


def check_agreement(
    model: CompiledModel,
    program: rasp.SOp,
    inputs: Sequence[Sequence[Any]],
    *,
    tol: float = 1e-4,
    batch_size: int = 4096,
    keep: int = 5,
) -> Agreement:
    """Run ``model`` on every input and compare with ``rasp.evaluate(program, input)``."""
    matching = 0
    bad: list[tuple[Any, Any, Any]] = []  # (input, evaluator's output, model's output)
    with torch.no_grad():
        for group in by_length(inputs).values():
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                for x, got in zip(chunk, model(chunk)):
                    want = rasp.evaluate(program, x)
                    if values_equal(want, got, tol):
                        matching += 1
                    elif len(bad) < keep:
                        bad.append((x, want, got))
    return Agreement(len(inputs), matching, tol, tuple(bad))


def decoded_variables(
    model: CompiledModel, inputs: Sequence[Sequence[Any]]
) -> dict[str, list[list[Any]]]:
    """Every variable decoded from the residual site the ground truth names (equal-length inputs)."""
    truth = model.ground_truth
    sites = sorted({v.resid_site for v in truth.variables.values()})
    with torch.no_grad():
        _, cache = model.run_with_cache(model.encode(inputs), sites=sites)
    return {
        label: truth.decode_residual(cache[v.resid_site], label)
        for label, v in truth.variables.items()
    }


__all__ = ["Agreement", "Site", "by_length", "check_agreement", "decoded_variables"]
