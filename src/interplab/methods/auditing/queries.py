"""The query budget: the only door an auditor has to the model.

:class:`QueryProxy` wraps a compiled model and counts queries. **One query is one model forward
pass on one input**, whatever is read from it: its outputs (:meth:`QueryProxy.query`, black box)
or its outputs and internal activations (:meth:`QueryProxy.inspect`, white box). Gradients of
that same pass (:meth:`QueryProxy.attribute`, a backward pass on the input just run) are part of
its query: they run no new input, and are a function of the weights (free) and that pass's
activations. Any further run of the model, on another input or on edited activations, is a query. A call that would take the count past the budget raises
:class:`QueryBudgetExceeded` *before* the model runs, so no auditor can spend more than it has.
Reading the weights themselves runs no input and costs nothing (no auditor here does it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from interplab.core.sites import Component, Site
from interplab.errors import ConfigError, InterplabError


class QueryBudgetExceeded(InterplabError, RuntimeError):
    """An auditor asked for more model forward passes than its budget allows."""


class QueryProxy:
    """Counts forward passes on ``model`` (a CompiledModel) against ``budget`` queries."""

    def __init__(self, model: Any, budget: int):
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
            raise ConfigError(f"a query budget must be an int >= 0, got {budget!r}")
        self._model = model
        self.budget = budget
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def _spend(self, n: int) -> None:
        if self.used + n > self.budget:
            raise QueryBudgetExceeded(
                f"{n} more queries would make {self.used + n}, over the "
                f"budget of {self.budget} (one query = one forward pass on "
                "one input); check proxy.remaining first"
            )
        self.used += n

    def query(self, inputs: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """The model's outputs on each input (``len(inputs)`` queries)."""
        inputs = [list(x) for x in inputs]
        self._spend(len(inputs))
        return self._model(inputs) if inputs else []

    def inspect(self, xs: Sequence[Any]) -> tuple[list[Any], dict[int, torch.Tensor]]:
        """One query: the outputs on ``xs`` and every layer's attention pattern
        ``{layer: [head, query_pos, key_pos]}`` (position 0 is BOS)."""
        self._spend(1)
        m = self._model
        sites = [Site(Component.ATTN_PATTERN, layer) for layer in range(m.cfg.n_layers)]
        with torch.no_grad():
            logits, cache = m.run_with_cache(m.encode([list(xs)]), sites=sites)
        patterns = {layer: cache[s][0].detach().clone() for layer, s in enumerate(sites)}
        return m.decode(logits)[0], patterns

    def attribute(self, xs: Sequence[Any]) -> tuple[list[Any], torch.Tensor]:
        """One query: the outputs on ``xs`` and gradient x input attributions
        ``[output position, input position]``: for each output position, the gradient of its
        largest logit with respect to the residual stream entering layer 0 (token + position
        embedding), dotted with that residual, at each input position (BOS dropped)."""
        self._spend(1)
        m = self._model
        site = Site(Component.RESID_PRE, 0)
        held: dict[str, torch.Tensor] = {}

        def keep(value: torch.Tensor) -> torch.Tensor:
            value = value.detach().requires_grad_(True)
            held["x"] = value
            return value

        with torch.enable_grad(), m.hooks({site: keep}):
            logits = m.run(m.encode([list(xs)]))
        n = len(xs)
        rows = []
        for i in range(1, n + 1):
            (grad,) = torch.autograd.grad(logits[0, i].max(), held["x"], retain_graph=i < n)
            rows.append((grad[0] * held["x"][0]).sum(-1)[1:].detach())
        return m.decode(logits.detach())[0], torch.stack(rows)


__all__ = ["QueryBudgetExceeded", "QueryProxy"]
