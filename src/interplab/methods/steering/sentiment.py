"""A sentiment direction checked by steering: fit it on the sentiment task's fit sentences, then
compare no change / ablation / +-alpha steering with random directions of the same gap on its eval
prompts (data and measure: :class:`interplab.tasks.sentiment.SentimentTask`).

:func:`sentiment_steering_check` runs the whole check on a hooked language model: fit the
direction at ``resid_post`` of one layer, then score every condition of
:func:`interplab.methods.steering.intervene.compare_steering`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from interplab.tasks.sentiment import SentimentTask

Tensor = torch.Tensor


@dataclass(frozen=True)
class SentimentCheck:
    """The direction's gap, how well it separates its own fit sentences (in-sample AUC of the
    projection), the mean projections of the positive and negative fit sentences (last token)
    and of the eval prompts (first token, last token; ablation moves a token by minus its
    projection), and
    the per-prompt log-odds under every condition (``comparison``)."""

    task: SentimentTask
    layer: int
    gap: float
    fit_projection_auc: float
    fit_means: tuple[float, float]
    eval_projection: tuple[float, float]
    comparison: Any  # interplab.methods.steering.intervene.SteeringComparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "gap": self.gap,
            "fit_projection_auc": self.fit_projection_auc,
            "fit_means": list(self.fit_means),
            "eval_projection": {"first": self.eval_projection[0], "last": self.eval_projection[1]},
            "task": self.task.to_dict(),
            **self.comparison.to_dict(),
        }


def _auc(pos: Tensor, neg: Tensor) -> float:
    """P(a positive example projects above a negative one), ties counting half."""
    diff = pos.unsqueeze(1) - neg.unsqueeze(0)
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def sentiment_steering_check(
    model: Any,
    task: SentimentTask,
    layer: int,
    *,
    alphas: tuple[float, ...] = (1.0, 2.0),
    n_random: int = 3,
    seed: int = 0,
    progress: Any = None,
) -> SentimentCheck:
    """Fit the positive-minus-negative direction at ``L{layer}.resid_post`` (last token of the
    fit sentences), then compare no change / ablation / +-alpha steering with random directions
    of the same gap on the eval prompts (see the module docstring)."""
    from interplab.core.sites import Component, Site
    from interplab.methods.steering.directions import diff_in_means
    from interplab.methods.steering.intervene import (
        activations_at,
        compare_steering,
        last_token_activations,
    )

    site = model.check_site(Site(Component.RESID_POST, layer))
    pos = last_token_activations(model, site, task.fit_positive)
    neg = last_token_activations(model, site, task.fit_negative)
    direction = diff_in_means(pos, neg)
    auc = _auc(direction.project(pos), direction.project(neg))
    means = (float(direction.project(pos).mean()), float(direction.project(neg).mean()))
    at_eval = tuple(
        float(direction.project(activations_at(model, site, task.eval_prompts, p)).mean())
        for p in (0, -1)
    )
    comparison = compare_steering(
        model,
        task.eval_prompts,
        site,
        direction,
        task.log_odds,
        alphas=alphas,
        n_random=n_random,
        seed=seed,
        progress=progress,
    )
    return SentimentCheck(
        task,
        layer,
        float(direction.gap),
        auc,
        means,
        at_eval,  # type: ignore[arg-type]
        comparison,
    )


__all__ = ["SentimentCheck", "sentiment_steering_check"]
