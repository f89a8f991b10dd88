"""Run a RASP program as a *high-level causal model*: evaluate it with some variables forced.

A high-level intervention sets an SOp (by label) to given per-position values and lets every
expression downstream of it recompute; expressions upstream and beside it keep their values.
This is how a hypothesis predicts what the model should do under an intervention.

    values = run_program(prog, [1, 2, 3])                       # every expression, by label
    values = run_program(prog, [1, 2, 3], {"hist": [2, 2, 1]})  # with hist forced
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from interplab.compile import rasp
from interplab.errors import ConfigError

#: The value a prediction takes when the program is undefined under an intervention (e.g. a
#: categorical Aggregate that now selects keys holding different values).
UNDEFINED = "<undefined>"


def variables(program: rasp.SOp) -> dict[str, rasp.SOp]:
    """Every SOp of ``program`` by label, children before parents (selectors excluded)."""
    return {e.label: e for e in rasp.walk(program) if isinstance(e, rasp.SOp)}


def run_program(
    program: rasp.SOp, xs: Sequence[Any], overrides: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """Value of every expression of ``program`` on input ``xs`` with ``overrides`` forced.

    Args:
        program: the output SOp.
        xs: one input sequence (values, not token ids).
        overrides: label -> per-position values (length ``len(xs)``) that replace the
            expression's own value; its descendants recompute from them.

    Returns:
        label -> value (SOps: a list per position; selectors: a [query][key] bool matrix).
        If the program is undefined under the overrides, the output label maps to
        :data:`UNDEFINED`.
    """
    overrides = dict(overrides or {})
    exprs = rasp.walk(program)
    known = {e.label for e in exprs}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"cannot intervene on {unknown}: not expressions of {program.label!r}; "
            f"its SOps are {sorted(variables(program))}"
        )
    values: dict[int, Any] = {}
    out: dict[str, Any] = {}
    for expr in exprs:
        if expr.label in overrides:
            value = list(overrides[expr.label])
            if len(value) != len(xs):
                raise ConfigError(
                    f"override for {expr.label!r} has {len(value)} values; the "
                    f"input has {len(xs)} positions"
                )
        else:
            try:
                value = rasp.eval_node(expr, xs, lambda e: values[id(e)])
            except (rasp.EvaluationError, TypeError, KeyError, ValueError, ZeroDivisionError):
                out[program.label] = UNDEFINED
                return out
        values[id(expr)] = value
        out[expr.label] = value
    return out


def output(
    program: rasp.SOp, xs: Sequence[Any], overrides: Mapping[str, Sequence[Any]] | None = None
) -> Any:
    """The program's output (a list per position, or :data:`UNDEFINED`)."""
    return run_program(program, xs, overrides)[program.label]


def outputs_equal(a: Any, b: Any, *, numerical: bool, atol: float = 1e-2) -> bool:
    """Whether two output sequences agree: exactly (categorical) or within ``atol`` (numerical).
    :data:`UNDEFINED` equals nothing."""
    if (isinstance(a, str) and a == UNDEFINED) or (isinstance(b, str) and b == UNDEFINED):
        return False
    if len(a) != len(b):
        return False
    if not numerical:
        return list(a) == list(b)
    return all(
        x is not None and y is not None and abs(float(x) - float(y)) <= atol for x, y in zip(a, b)
    )
