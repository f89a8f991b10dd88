"""The decision model a rationale explains: raw rows in, the positive outcome's logit out.

:class:`DecisionModel` wraps either a torch module (a :class:`~interplab.models.tabular.TabularNet`
or any module mapping float rows [batch, feature] to a logit, a probability, or two-class
logits) or a scikit-learn-style object with ``predict_proba``. Every method works through
:meth:`DecisionModel.logit`; gradient methods also need :attr:`DecisionModel.module`.
Outputs are checked: a "probability" outside [0, 1], or rows of ``predict_proba`` that do not
sum to 1, raise :class:`~interplab.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interplab.data.tabular import Feature
from interplab.errors import ConfigError, ShapeError, unknown_name

Tensor = torch.Tensor
EPS = 1e-12


@dataclass
class DecisionModel:
    """A binary decision: ``outcomes[1]`` when the logit is > 0 (probability > 0.5)."""

    features: tuple[Feature, ...]
    logit_fn: Callable[[Tensor], Tensor]
    outcomes: tuple[str, str] = ("refuse", "approve")
    module: Any = None  # a torch module, for gradient methods

    @classmethod
    def from_torch(
        cls,
        module: torch.nn.Module,
        features: Sequence[Feature],
        *,
        output: str = "logit",
        outcomes: tuple[str, str] = ("refuse", "approve"),
    ) -> DecisionModel:
        """``output``: "logit" (one logit per row, or two-class logits [batch, 2]) or "probability"."""
        if output not in ("logit", "probability"):
            raise ConfigError(f"output must be 'logit' or 'probability', not {output!r}")

        def logit(x: Tensor) -> Tensor:
            out = module(x)
            if out.dim() == 2 and out.shape[1] == 2:
                if output == "probability":
                    return _logit_of_proba(out, "the torch model")
                return out[:, 1] - out[:, 0]
            out = out.reshape(x.shape[0])
            return _logit_of_p(out, "the torch model") if output == "probability" else out

        return cls(tuple(features), logit, outcomes, module)

    @classmethod
    def from_predict_proba(
        cls,
        estimator: Any,
        features: Sequence[Feature],
        *,
        outcomes: tuple[str, str] = ("refuse", "approve"),
    ) -> DecisionModel:
        """A scikit-learn-style classifier: ``predict_proba(numpy [n, feature]) -> [n, 2]``."""
        if not hasattr(estimator, "predict_proba"):
            raise ConfigError(
                f"{type(estimator).__name__} has no predict_proba; pass a classifier "
                "or use DecisionModel.from_torch"
            )

        def logit(x: Tensor) -> Tensor:
            p = torch.as_tensor(
                np.asarray(estimator.predict_proba(x.detach().cpu().numpy())), dtype=torch.float64
            )
            return _logit_of_proba(p, type(estimator).__name__)

        return cls(tuple(features), logit, outcomes)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise unknown_name("feature", name, self.names)
        return self.names.index(name)

    def logit(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.logit_fn(x.double()).double()

    def decide(self, x: Tensor) -> Tensor:
        return self.logit(x) > 0

    def check_row(self, x: Tensor) -> Tensor:
        """A row [feature] checked against the features (shape, ranges, category codes)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        if x.shape[0] != len(self.features):
            raise ShapeError(f"a row needs {len(self.features)} features, got {x.shape[0]}")
        bad = []
        for f, v in zip(self.features, x.tolist()):
            lo, hi = f.span
            if not lo - 1e-9 <= v <= hi + 1e-9 or (f.discrete and not float(v).is_integer()):
                bad.append(
                    f"{f.name}={v:g} (allowed {lo:g}..{hi:g}{', integer codes' if f.discrete else ''})"
                )
        if bad:
            raise ConfigError("row values out of range: " + "; ".join(bad))
        return x


def _logit_of_p(p: Tensor, who: str) -> Tensor:
    p = p.double()
    if not bool(torch.isfinite(p).all()) or bool((p < -1e-9).any()) or bool((p > 1 + 1e-9).any()):
        raise ConfigError(
            f"{who}'s output is not a probability: values range "
            f"{float(p.min()):.3g}..{float(p.max()):.3g}, expected [0, 1]. Pass "
            "output='logit' for raw scores"
        )
    p = p.clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def _logit_of_proba(p: Tensor, who: str) -> Tensor:
    if p.dim() != 2 or p.shape[1] != 2:
        raise ConfigError(
            f"{who}'s predict_proba must return [n, 2] probabilities, got shape "
            f"{tuple(p.shape)}; interplab explains binary decisions"
        )
    if not bool(torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-6)):
        raise ConfigError(
            f"{who}'s output is not a probability: rows sum to "
            f"{float(p.sum(1).min()):.3g}..{float(p.sum(1).max()):.3g}, expected 1"
        )
    return _logit_of_p(p[:, 1], who)
