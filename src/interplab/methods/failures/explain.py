"""Localise the units (hidden neurons, heads) that carry a failure, per example.

Given clean inputs and failing ones (adversarial or triggered) and a list of units — each a
whole-tensor site and an index along its unit axis (the head axis for per-head sites, the last
axis otherwise) — score every unit by how much setting it back to its clean value moves the
failing run towards the clean answer. The metric is ``m = logit[clean label] - logit[failing
label]`` on the failing run (at ``output_position`` for sequence outputs).

    activation   exact: one run per unit with that unit patched to its clean value; score = Δm
    attribution  attribution patching (Nanda 2023): ∂m/∂a · (a_clean - a_fail), one backward
    activation_change   |a_clean - a_fail| summed over the unit (no model reasoning)
    random       seeded noise (the control)

Each explainer is registered in the ``failures`` family (metric ``restoration_rate``) with the
call shape of :func:`explain_failure`, which dispatches through the registry.

Scores are per example ([batch, n_units]); :mod:`interplab.eval.failures` checks an explanation
by patching its top units back (restoration) and only the others (leftover).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from interplab.core.interventions import Patch
from interplab.core.sites import HEAD_AXIS, Site
from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.methods import registry
from interplab.methods.base import Cost, Result
from interplab.methods.registry import Kind, register

Tensor = torch.Tensor
Unit = tuple[Site, "int | None"]  # index None: the whole site (e.g. a whole MLP's output)
#: The metric the failure explainers are registered with (what marks one as an explainer).
EXPLAIN_METRIC = "restoration_rate"


def top_k_mask(scores: Tensor, k: int) -> Tensor:
    """[batch, n] bool: each row's ``k`` highest ``scores`` (k clipped to 0..n)."""
    k = max(0, min(k, scores.shape[1]))
    keep = torch.zeros_like(scores, dtype=torch.bool)
    if k:
        keep.scatter_(1, scores.topk(k, dim=1).indices, True)
    return keep


@dataclass(frozen=True, eq=False)
class FailureExplanation(Result):
    """Per-example unit scores [batch, n_units] (higher: more of the failure runs through it);
    ``cost``: model passes."""

    units: tuple[Unit, ...]
    scores: Tensor
    method: str
    clean_labels: Tensor
    fail_labels: Tensor
    output_position: int | None

    def top(self, k: int) -> Tensor:
        """[batch, n_units] bool: each example's ``k`` highest-scoring units."""
        return top_k_mask(self.scores, k)

    def mean_scores(self) -> dict[Unit, float]:
        """Scores averaged over examples, by unit (for a ranking across the batch)."""
        return {u: float(v) for u, v in zip(self.units, self.scores.mean(0))}


def unit_axis(site: Site) -> int:
    return HEAD_AXIS.get(site.component, -1)


def select_logits(out: Tensor, output_position: int | None) -> Tensor:
    if out.dim() == 3:
        return out[:, -1 if output_position is None else output_position]
    if out.dim() != 2:
        raise ShapeError(
            f"expected logits [batch, classes] or [batch, pos, vocab], got {tuple(out.shape)}"
        )
    return out


def _mixed(clean: Tensor, fail: Tensor, axis: int, chosen: Tensor) -> Tensor:
    """``fail`` with the units ``chosen`` [batch, n] (bool) along ``axis`` taken from ``clean``."""
    shape = [1] * fail.dim()
    shape[0], shape[axis] = chosen.shape[0], chosen.shape[1]
    return torch.where(chosen.view(shape), clean, fail)


def patch_units(
    model: Any,
    clean_cache: dict[Site, Tensor],
    fail_cache: dict[Site, Tensor],
    failing: Any,
    units: Sequence[Unit],
    chosen: Tensor,
) -> Tensor:
    """Run ``failing`` with the units ``chosen`` ([batch, n_units] bool) set to their clean values."""
    interventions = []
    for site in dict.fromkeys(s for s, _ in units):
        cols = [i for i, (s, _) in enumerate(units) if s == site]
        axis = unit_axis(site)
        width = fail_cache[site].shape[axis]
        sel = torch.zeros(chosen.shape[0], width, dtype=torch.bool)
        for c in cols:
            index = units[c][1]
            sel[:, slice(None) if index is None else index] |= (
                chosen[:, c].unsqueeze(-1) if index is None else chosen[:, c]
            )
        if sel.any():
            interventions.append(
                Patch(site, value=_mixed(clean_cache[site], fail_cache[site], axis, sel))
            )
    return model.run_with(failing, interventions)


def _check_units(model: Any, units: Sequence[Unit]) -> list[Site]:
    if not units:
        raise ConfigError("no units to score: pass units=[(site, index), ...]")
    sites = list(dict.fromkeys(s for s, _ in units))
    for s in sites:
        model.check_site(s)
        if s.head is not None:
            raise ConfigError(
                f"give units on whole sites with an index (e.g. ({s.without_head()}, "
                f"{s.head})), not the per-head site {s}"
            )
    return sites


def _caches(model: Any, clean: Any, failing: Any, sites: list[Site]) -> tuple[dict, dict, Tensor]:
    _, cc = model.run_with_cache(clean, sites)
    out, fc = model.run_with_cache(failing, sites)
    return {s: cc[s] for s in sites}, {s: fc[s] for s in sites}, out


def _metric(logits: Tensor, clean_labels: Tensor, fail_labels: Tensor) -> Tensor:
    rows = torch.arange(len(logits))
    return logits[rows, clean_labels] - logits[rows, fail_labels]


@dataclass(frozen=True, eq=False)
class _Run:
    """What every explainer reads: the clean and failing activations at the units' sites, the
    failing logits, and the clean and failing labels."""

    units: tuple[Unit, ...]
    sites: list[Site]
    clean_cache: dict[Site, Tensor]
    fail_cache: dict[Site, Tensor]
    fail_logits: Tensor
    cl: Tensor
    fl: Tensor
    output_position: int | None
    seed: int
    start: float

    @property
    def n_units(self) -> int:
        return len(self.units)

    def change_scores(self) -> Tensor:
        cc, fc = self.clean_cache, self.fail_cache
        return torch.stack([_unit_sum((cc[s] - fc[s]).abs(), s, i) for s, i in self.units], 1)

    def patching_scores(self, model: Any, failing: Any) -> Tensor:
        cl, fl, n, units = self.cl, self.fl, len(self.cl), self.units
        base = _metric(self.fail_logits, cl, fl)
        cols = []
        for j in range(len(units)):
            chosen = torch.zeros(n, len(units), dtype=torch.bool)
            chosen[:, j] = True
            out = select_logits(
                patch_units(model, self.clean_cache, self.fail_cache, failing, units, chosen),
                self.output_position,
            )
            cols.append(_metric(out, cl, fl) - base)
        return torch.stack(cols, 1)

    def gradient_scores(self, model: Any, failing: Any) -> Tensor:
        grads = _site_grads(model, failing, self.sites, self.cl, self.fl, self.output_position)
        cc, fc = self.clean_cache, self.fail_cache
        return torch.stack([_unit_sum(grads[s] * (cc[s] - fc[s]), s, i) for s, i in self.units], 1)

    def explanation(
        self, method: str, scores: Tensor, forward: int, backward: int
    ) -> FailureExplanation:
        return FailureExplanation(
            self.units,
            scores.detach().float(),
            method,
            self.cl,
            self.fl,
            self.output_position,
            cost=Cost(forward=forward, backward=backward),
            seconds=time.perf_counter() - self.start,
        )


def _prepare(
    model: Any,
    clean: Any,
    failing: Any,
    units: Sequence[Unit],
    clean_labels: Tensor | None,
    output_position: int | None,
    seed: int = 0,
) -> _Run:
    """Three forward passes: clean and failing with caches, and the clean predictions."""
    start = time.perf_counter()
    sites = _check_units(model, units)
    clean_cache, fail_cache, fail_out = _caches(model, clean, failing, sites)
    with torch.no_grad():
        clean_pred = select_logits(model.run(clean), output_position).argmax(-1)
    fail_logits = select_logits(fail_out, output_position)
    cl = clean_pred if clean_labels is None else torch.as_tensor(clean_labels, dtype=torch.long)
    return _Run(
        tuple(units),
        sites,
        clean_cache,
        fail_cache,
        fail_logits,
        cl,
        fail_logits.argmax(-1),
        output_position,
        seed,
        start,
    )


def explainers() -> list[str]:
    """The registered failure explainers (those scored by restoration), sorted."""
    return [s.name for s in registry.specs("failures") if s.metric == EXPLAIN_METRIC]


def explain_failure(
    model: Any,
    clean: Any,
    failing: Any,
    *,
    method: str = "attribution",
    units: Sequence[Unit],
    clean_labels: Tensor | None = None,
    output_position: int | None = None,
    seed: int = 0,
) -> FailureExplanation:
    """Score each unit in ``units`` for carrying the failure on each (clean, failing) pair.
    ``clean_labels`` default to the model's predictions on ``clean``; ``method``: one of
    :func:`explainers`."""
    if method not in explainers():
        raise unknown_name("failure explainer", method, explainers())
    return registry.get("failures", method).fn(
        model,
        clean,
        failing,
        units=units,
        clean_labels=clean_labels,
        output_position=output_position,
        seed=seed,
    )


class Scored(Protocol):
    """What an explainer's score reads from a prepared run: units are its site's units here
    (:class:`_Run`) or a dictionary's latents (:mod:`.features`)."""

    @property
    def cl(self) -> Tensor: ...  # the clean labels [batch]

    @property
    def seed(self) -> int: ...

    @property
    def n_units(self) -> int: ...

    def change_scores(self) -> Tensor: ...

    def patching_scores(self, model: Any, failing: Any) -> Tensor: ...

    def gradient_scores(self, model: Any, failing: Any) -> Tensor: ...


#: (model, failing inputs, prepared run) -> (scores [batch, n_units], forward passes beyond
#: the three that prepared the run, backward passes)
Score = Callable[[Any, Any, Scored], tuple[Tensor, int, int]]


class Explainer:
    """A registered failure explainer. Called with the shape of :func:`explain_failure`, it
    scores ``units``; :attr:`score` scores any prepared run (the latents of a dictionary in
    :func:`.features.explain_failure_features`), so one registration serves both."""

    def __init__(self, name: str, doc: str, score: Score) -> None:
        self.name, self.score = name, score
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc

    def __call__(
        self,
        model: Any,
        clean: Any,
        failing: Any,
        *,
        units: Sequence[Unit],
        clean_labels: Tensor | None = None,
        output_position: int | None = None,
        seed: int = 0,
    ) -> FailureExplanation:
        run = _prepare(model, clean, failing, units, clean_labels, output_position, seed)
        scores, forward, backward = self.score(model, failing, run)
        return run.explanation(self.name, scores, 3 + forward, backward)


def _explainer(
    name: str, doc: str, score: Score, *, kind: Kind = "method", needs_gradients: bool = False
) -> Explainer:
    fn = Explainer(name, doc, score)
    register(
        "failures",
        name,
        kind=kind,
        cost_unit="passes",
        metric=EXPLAIN_METRIC,
        needs_gradients=needs_gradients,
    )(fn)
    return fn


def _random_scores(model: Any, failing: Any, run: Scored) -> tuple[Tensor, int, int]:
    gen = torch.Generator().manual_seed(run.seed)
    return torch.rand(len(run.cl), run.n_units, generator=gen), 0, 0


def _change_scores(model: Any, failing: Any, run: Scored) -> tuple[Tensor, int, int]:
    return run.change_scores(), 0, 0


def _patching_scores(model: Any, failing: Any, run: Scored) -> tuple[Tensor, int, int]:
    return run.patching_scores(model, failing), run.n_units, 0


def _attribution_scores(model: Any, failing: Any, run: Scored) -> tuple[Tensor, int, int]:
    return run.gradient_scores(model, failing), 1, 1


random_units = _explainer(
    "random", "Seeded uniform scores (the control).", _random_scores, kind="baseline"
)
activation_change = _explainer(
    "activation_change",
    "|a_clean - a_fail| summed over each unit (no model reasoning).",
    _change_scores,
    kind="baseline",
)
activation = _explainer(
    "activation",
    "Exact: one run per unit with that unit patched to its clean value; score = Δm.",
    _patching_scores,
)
attribution = _explainer(
    "attribution",
    "Attribution patching: ∂m/∂a · (a_clean - a_fail) per unit, from one backward pass.",
    _attribution_scores,
    needs_gradients=True,
)


def _site_grads(
    model: Any, failing: Any, sites: list[Site], cl: Tensor, fl: Tensor, output_position: int | None
) -> dict[Site, Tensor]:
    """∂m/∂(site value) on the failing run, via a zero offset added at each site (so gradients
    still flow through every site to the earlier ones)."""
    offsets: dict[Site, Tensor] = {}

    def hook(site: Site):
        def fn(value: Tensor) -> Tensor:
            offsets[site] = torch.zeros_like(value, requires_grad=True)
            return value + offsets[site]

        return fn

    with torch.enable_grad():
        with model.hooks({s: hook(s) for s in sites}):
            out = model.forward(failing)
        m = _metric(select_logits(out, output_position), cl, fl).sum()
        grads = torch.autograd.grad(m, [offsets[s] for s in sites], allow_unused=True)
    return {s: torch.zeros_like(offsets[s]) if g is None else g for s, g in zip(sites, grads)}


def _unit_sum(t: Tensor, site: Site, index: int | None) -> Tensor:
    """Sum of ``t`` over everything but the batch, at ``index`` along the unit axis → [batch]."""
    if index is None:
        return t.reshape(t.shape[0], -1).sum(1)
    return t.select(unit_axis(site), index).reshape(t.shape[0], -1).sum(1)
