"""Run a model with a direction ablated or added at one site, and compare against random directions.

    iv = steering_intervention(site, direction, Steering("add", alpha=4.0))   # a Replace value
    logits = last_logits(model, prompts, [iv])                               # [n, vocab]
    cmp = compare_steering(model, prompts, site, direction, measure, alphas=(4.0,), n_random=3)

A :class:`Steering` says what happens at the site, at every position of every prompt: ``none``;
``ablate`` (remove the activation's component along the unit direction, ``x - (x·d) d``); or
``add`` (``x + alpha * gap * d``, where ``gap`` is the distance between the two class means along
``d``, so alpha = 1 is one class-mean step). The change is an ordinary
:class:`interplab.core.interventions.Replace`, run through ``HookedModel.run_with``, so the hook
is removed after the run whether it succeeds or fails.

:func:`compare_steering` is the check: it scores a behaviour ``measure`` (a number per prompt from
the last position's logits) under no change, ablation and +/- alpha steering along the learned
direction, and the same along ``n_random`` seeded random unit directions given the *same* gap
(the same step size), the control that separates "this direction carries the behaviour" from
"any push of this size changes things". Prompts of different token lengths run in batches of one
length each, so no padding enters the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from interplab.core.interventions import Intervention, Replace
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError
from interplab.methods.steering.directions import Direction

Tensor = torch.Tensor
KINDS = ("none", "ablate", "add")


@dataclass(frozen=True)
class Steering:
    """What to do along a direction: ``kind`` in none / ablate / add; ``alpha`` (add only) is
    the step in units of the direction's gap (negative: towards the other class)."""

    kind: str
    alpha: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"unknown steering kind {self.kind!r}; expected one of {', '.join(KINDS)}"
            )
        if self.kind != "add" and self.alpha != 0.0:
            raise ConfigError(
                f"alpha applies to kind 'add' only, got kind {self.kind!r} with alpha {self.alpha}"
            )

    @property
    def label(self) -> str:
        return self.kind if self.kind != "add" else f"add {self.alpha:+g}"


def random_direction(like: Direction, seed: int) -> Direction:
    """A seeded uniformly random unit direction with ``like``'s gap (so +alpha moves as far)."""
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(like.vector.shape[0], generator=gen, dtype=torch.float64)
    return Direction((v / v.norm()).to(like.vector.dtype), like.gap, 0.0)


def steering_intervention(
    site: Site, direction: Direction, steering: Steering
) -> Intervention | None:
    """The intervention applying ``steering`` along ``direction`` at ``site`` (None for 'none')."""
    if steering.kind == "none":
        return None
    if steering.kind == "ablate":
        return Replace(site, fn=direction.ablate)
    alpha = float(steering.alpha)
    return Replace(site, fn=lambda value: direction.add(value, alpha))


def _by_length(prompts: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    if len(prompts) == 0:
        raise ShapeError("no prompts given")
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ShapeError(f"prompt {i} has no tokens")
        groups.setdefault(len(p), []).append(i)
    return groups


def last_logits(
    model: Any, prompts: Sequence[Sequence[int]], interventions: Sequence[Intervention] = ()
) -> Tensor:
    """Next-token logits at each prompt's last position [n, vocab] (float32), with
    ``interventions`` applied; prompts of one length run as one batch."""
    out: Tensor | None = None
    for idx in _by_length(prompts).values():
        tokens = torch.tensor([list(prompts[i]) for i in idx], dtype=torch.long)
        logits = model.run_with(tokens, list(interventions))[:, -1].float()
        if out is None:
            out = torch.empty(len(prompts), logits.shape[-1])
        out[idx] = logits
    assert out is not None
    return out


def last_token_activations(model: Any, site: Site, prompts: Sequence[Sequence[int]]) -> Tensor:
    """The activation at ``site`` at each prompt's last token [n, d]."""
    return activations_at(model, site, prompts, -1)


def activations_at(
    model: Any, site: Site, prompts: Sequence[Sequence[int]], position: int
) -> Tensor:
    """The activation at ``site`` at token ``position`` of each prompt (negative: from the
    end) [n, d]."""
    out: Tensor | None = None
    for idx in _by_length(prompts).values():
        tokens = torch.tensor([list(prompts[i]) for i in idx], dtype=torch.long)
        _, cache = model.run_with_cache(tokens, [site])
        acts = cache[site][:, position].float()
        if out is None:
            out = torch.empty(len(prompts), acts.shape[-1])
        out[idx] = acts
    assert out is not None
    return out


@dataclass(frozen=True)
class Condition:
    """One run of the check: ``direction`` is 'learned', 'random' (``seed`` given) or '-' for
    none; ``scores`` is the measure per prompt."""

    direction: str
    steering: Steering
    scores: tuple[float, ...]
    seed: int | None = None

    @property
    def label(self) -> str:
        who = (
            ""
            if self.direction == "-"
            else (self.direction if self.seed is None else f"random#{self.seed}")
        )
        return f"{who} {self.steering.label}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "direction": self.direction,
            "kind": self.steering.kind,
            "alpha": self.steering.alpha,
            "seed": self.seed,
            "scores": list(self.scores),
        }


@dataclass(frozen=True)
class SteeringComparison:
    """Per-prompt measures under every condition (see :func:`compare_steering`)."""

    site: Site
    gap: float
    alphas: tuple[float, ...]
    conditions: tuple[Condition, ...] = field(default=())

    def find(self, direction: str, kind: str, alpha: float = 0.0) -> list[Condition]:
        return [
            c
            for c in self.conditions
            if c.direction == direction and c.steering.kind == kind and c.steering.alpha == alpha
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": str(self.site),
            "gap": self.gap,
            "alphas": list(self.alphas),
            "conditions": [c.to_dict() for c in self.conditions],
        }


def compare_steering(
    model: Any,
    prompts: Sequence[Sequence[int]],
    site: Site,
    direction: Direction,
    measure: Callable[[Tensor], Tensor],
    *,
    alphas: Sequence[float] = (4.0,),
    n_random: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> SteeringComparison:
    """Score ``measure(last_logits) -> [n]`` on ``prompts`` with no change, then ablating and
    adding +/-alpha along ``direction`` and along ``n_random`` random directions (seeds
    ``seed``, ``seed + 1``, ...) of the same gap, at ``site`` at every position."""
    alphas = tuple(float(a) for a in alphas)
    if not alphas or any(not a > 0 for a in alphas):
        raise ConfigError(f"alphas must be positive numbers, got {list(alphas)}")
    if n_random < 0:
        raise ConfigError(f"n_random must be at least 0, got {n_random}")
    model.check_site(site)
    plans: list[tuple[str, Direction, Steering, int | None]] = [
        ("-", direction, Steering("none"), None)
    ]
    steps = [Steering("ablate")] + [Steering("add", s * a) for a in alphas for s in (1, -1)]
    plans += [("learned", direction, s, None) for s in steps]
    for k in range(n_random):
        rand = random_direction(direction, seed + k)
        plans += [("random", rand, s, seed + k) for s in steps]
    conditions = []
    for who, d, steering, rseed in plans:
        iv = steering_intervention(site, d, steering)
        scores = measure(last_logits(model, prompts, [] if iv is None else [iv]))
        cond = Condition(who, steering, tuple(float(x) for x in scores), rseed)
        if progress is not None:
            progress(cond.label)
        conditions.append(cond)
    return SteeringComparison(site, float(direction.gap), alphas, tuple(conditions))


__all__ = [
    "Condition",
    "Steering",
    "SteeringComparison",
    "activations_at",
    "compare_steering",
    "last_logits",
    "last_token_activations",
    "random_direction",
    "steering_intervention",
]
