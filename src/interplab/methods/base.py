"""What every method returns: a result with the cost of computing it.

Every method family returns its own result class (edge scores, attributions, an explanation of
a failure, an audit report, ...), and each of those derives from :class:`Result`, so the cost
of any method is read the same way::

    scores = ip.methods.run("circuits", "eap", model, task)
    scores.cost.forward, scores.cost.backward, scores.seconds

The cost counts what the method spent on the model, in four units: ``forward`` and ``backward``
passes (each over the whole batch it was given), ``evaluations`` of a black-box score function
(one row each: kernel SHAP, occlusion) and ``queries`` (an auditor's questions to a model it may
only ask). A method fills the units it uses and leaves the others 0; the registry records which
unit a method is judged by (:attr:`interplab.methods.registry.MethodSpec.cost_unit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The units a cost is counted in, in the order they are shown.
COST_UNITS = ("forward", "backward", "evaluations", "queries")


@dataclass(frozen=True)
class Cost:
    """What a method spent on the model. Costs add: ``a + b`` is the cost of doing both."""

    forward: int = 0
    backward: int = 0
    evaluations: int = 0
    queries: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.forward + other.forward,
            self.backward + other.backward,
            self.evaluations + other.evaluations,
            self.queries + other.queries,
        )

    def of(self, unit: str) -> int:
        """The count in one unit (``"forward"``, ..., or ``"passes"`` = forward + backward)."""
        if unit == "passes":
            return self.forward + self.backward
        if unit not in COST_UNITS:
            from interplab.errors import unknown_name

            raise unknown_name("cost unit", unit, (*COST_UNITS, "passes"))
        return int(getattr(self, unit))

    def as_dict(self) -> dict[str, int]:
        return {u: int(getattr(self, u)) for u in COST_UNITS}


@dataclass(frozen=True, kw_only=True)
class Result:
    """Base of every method's result: ``cost`` (see :class:`Cost`), wall ``seconds`` and
    method-specific ``extra`` details. Subclasses add their own fields before these (the
    base's fields are keyword-only, so a subclass's positional fields come first)."""

    cost: Cost = field(default_factory=Cost)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
