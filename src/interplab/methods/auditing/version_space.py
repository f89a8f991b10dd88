"""The version space of an audit: which members of a rule family the observations allow.

Every auditor keeps a weight per member of the :class:`~interplab.compile.hidden_rules.RuleFamily`
(1 by default; an interpretability prior may lower some) and a mask of the members still
consistent with every (input, output) pair seen. A member ``(a, p, q, c)`` is consistent with an
observation when the outputs equal the base task's everywhere except at ``q`` and, at ``q``, equal
``c`` if ``x_p = a`` and the base output otherwise. :meth:`VersionSpace.best_query` picks, from a
pool of candidate inputs, the one whose predicted outcomes split the surviving weight most evenly
(smallest expected surviving weight, the sum over outcome cells of the squared cell weight):
the standard greedy active-learning query. :meth:`VersionSpace.statement` names the heaviest
survivor (ties broken by the seed), or the member with the fewest wrong outputs when none survives.

Families: a :class:`~interplab.compile.hidden_rules.RuleFamily` (a member fires when ``x_p = a``)
or any family with the member-array protocol of
:class:`~interplab.compile.content_rules.ContentRuleFamily`: ``member_arrays()`` (index arrays
``a``, ``b``, ``q``, ``c`` per member of ``rules``) and a vectorised ``fires(x_codes, arrays)``.
Either way a member predicts the base outputs except ``c`` at ``q`` where it fires; ``a``/``b``
are each member's trigger tokens (``b = a`` for one-token triggers) and ``p`` its trigger
position (``None`` for families without one).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from interplab.compile.hidden_rules import RuleFamily


class VersionSpace:
    def __init__(self, family: Any, weights: np.ndarray | None = None):
        self.family = family
        self.rules = family.rules
        self._arrays: dict[str, np.ndarray] | None = None
        self.p: np.ndarray | None
        if isinstance(family, RuleFamily):
            self.a, self.p, self.q, self.c = family.rule_arrays()
            self.b = self.a
        else:
            self._arrays = family.member_arrays()
            self.a, self.b = self._arrays["a"], self._arrays["b"]
            self.q, self.c, self.p = self._arrays["q"], self._arrays["c"], None
        self._tok = {v: i for i, v in enumerate(family.vocab)}
        self._out = {v: i for i, v in enumerate(family.outputs)}
        self.alive = np.ones(len(self.rules), dtype=bool)
        self.errors = np.zeros(len(self.rules), dtype=np.int64)
        self.weights = np.ones(len(self.rules)) if weights is None else np.asarray(weights, float)
        self.n_observed = 0
        #: the last observed input whose outputs differ from the base task's (None if none)
        self.last_deviation: list[Any] | None = None

    def _codes(self, xs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([self._tok[v] for v in xs])
        b = np.array([self._out.get(v, -1) for v in self.family.base_outputs(xs)])
        return x, b

    def _fires(self, x: np.ndarray) -> np.ndarray:
        """Per member: whether its trigger holds on the input with token indices ``x``."""
        if self._arrays is None:
            return x[self.p] == self.a
        return self.family.fires(x, self._arrays)

    def observe(self, xs: Sequence[Any], ys: Sequence[Any]) -> None:
        x, b = self._codes(xs)
        y = np.array([self._out.get(v, -1) if v is not None else -1 for v in ys])
        off = y != b
        if off.any():
            self.last_deviation = list(xs)
        expected = np.where(self._fires(x), self.c, b[self.q])
        wrong = (off.sum() - off[self.q]) + (y[self.q] != expected)
        self.errors += wrong
        self.alive &= wrong == 0
        self.n_observed += 1

    def outcomes(self, xs: Sequence[Any]) -> np.ndarray:
        """Per member: -1 if it predicts the base outputs on ``xs``, else the code of (q, c)."""
        x, b = self._codes(xs)
        fires = self._fires(x) & (b[self.q] != self.c)
        return np.where(fires, self.q * len(self.family.outputs) + self.c, -1)

    def best_query(self, candidates: Sequence[Sequence[Any]]) -> int:
        """Index of the candidate with the smallest expected surviving weight."""
        w = self.weights * self.alive
        n_codes = self.family.length * len(self.family.outputs) + 1
        scores = [
            float((np.bincount(self.outcomes(xs) + 1, weights=w, minlength=n_codes) ** 2).sum())
            for xs in candidates
        ]
        return int(np.argmin(scores))

    @property
    def n_alive(self) -> int:
        return int(self.alive.sum())

    def statement(self, rng: random.Random) -> Any:
        if self.alive.any():
            score = np.where(self.alive, self.weights, -np.inf)
        else:
            score = -self.errors.astype(float)
        best = np.flatnonzero(score == score.max())
        return self.rules[int(best[rng.randrange(len(best))])]


__all__ = ["VersionSpace"]
