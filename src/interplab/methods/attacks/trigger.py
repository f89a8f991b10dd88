"""Trigger reconstruction (Neural Cleanse, Wang et al. 2019) and its random control.

For a candidate target class, optimise a mask ``m`` and a pattern ``p`` (both squashed by
``(tanh + 1) / 2`` into [0, 1] and the input bounds) so that ``(1 - m) * x + m * p`` is
classified as the target on clean inputs, while an L1 penalty ``l1 * sum(m)`` keeps the mask
small. A trojaned class needs a much smaller mask than the others: :func:`neural_cleanse`
reconstructs one trigger per class and reports the anomaly index of the smallest mask
(``(median - min) / (1.4826 * MAD)`` of the mask norms; above 2 is the paper's "trojaned").

:func:`synthesis_scan` runs feature synthesis (:func:`synthesize_trigger`) for every class and
flags the class whose synthesized trigger, stamped on the given clean inputs of other classes,
sends the largest share of them there (ties: the smaller mask). Neither scan is told the
target: a caller scores the trigger of the class the scan *flags*.

:func:`random_trigger` draws a mask of a given size at random positions with a random pattern:
the control every reconstruction is reported beside. :func:`weight_norm` scores a model for
being trojaned by its weights' squared L2 norm alone (a detection baseline that reads no input).

``neural_cleanse``, ``feature_synthesis`` and ``weight_norm`` are registered in the ``failures``
family (they find or flag a planted failure); each result's ``cost`` counts model passes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.nn import functional as F

from interplab.errors import ConfigError
from interplab.methods.attacks.gradient import model_fn
from interplab.methods.base import Cost, Result
from interplab.methods.registry import register

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class TriggerReconstruction(Result):
    """A reconstructed trigger: ``mask`` and ``pattern`` [*input_shape], the target it sends
    inputs to, the share of the given inputs it sends there, and the mask's L1 norm."""

    target: int
    mask: Tensor
    pattern: Tensor
    attack_success: float
    mask_l1: float
    method: str

    def apply(self, x: Tensor) -> Tensor:
        return (1 - self.mask) * x + self.mask * self.pattern


@dataclass(frozen=True, eq=False)
class NeuralCleanse(Result):
    """One reconstruction per class; ``anomaly_index`` of the smallest mask and its class."""

    triggers: tuple[TriggerReconstruction, ...]
    anomaly_index: float
    flagged: int


@dataclass(frozen=True)
class TrojanScore(Result):
    """How likely a model is trojaned by one detector (higher: more likely)."""

    score: float
    method: str


def _success(f: Any, x: Tensor, target: int) -> float:
    with torch.no_grad():
        return float((f(x).argmax(-1) == target).float().mean())


def _check(f: Any, x: Tensor, target: int) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ConfigError(
            "trigger reconstruction needs floating-point inputs (it optimises a "
            "mask in input space)"
        )
    with torch.no_grad():
        n_classes = f(x[:1]).shape[-1]
    if not 0 <= int(target) < n_classes:
        raise ConfigError(
            f"target class {target} does not exist: the model has classes 0..{n_classes - 1}"
        )


def _trigger(
    f: Any,
    x: Tensor,
    target: int,
    mask: Tensor,
    pattern: Tensor,
    method: str,
    cost: Cost,
    start: float | None = None,
) -> TriggerReconstruction:
    """The trigger ``mask``/``pattern`` for ``target`` found by ``method``, with its success
    rate on the clean inputs ``x``; seconds since ``start`` (0 when not timed)."""
    triggered = (1 - mask) * x + mask * pattern
    return TriggerReconstruction(
        int(target),
        mask,
        pattern,
        _success(f, triggered, target),
        float(mask.sum()),
        method,
        cost=cost,
        seconds=0.0 if start is None else time.perf_counter() - start,
    )


def reconstruct_trigger(
    model: Any,
    x: Tensor,
    target: int,
    *,
    steps: int = 300,
    lr: float = 0.1,
    l1: float = 0.01,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
) -> TriggerReconstruction:
    """Neural-Cleanse mask + pattern for ``target`` on clean inputs ``x`` (full batch)."""
    f = model_fn(model)
    _check(f, x, target)
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    m_raw = (torch.randn(x.shape[1:], generator=gen) * 0.1 - 2.0).requires_grad_(True)
    p_raw = (torch.randn(x.shape[1:], generator=gen) * 0.1).requires_grad_(True)
    opt = torch.optim.Adam([m_raw, p_raw], lr=lr)
    lo, hi = bounds
    goal = torch.full((len(x),), int(target), dtype=torch.long)
    with torch.enable_grad():
        for _ in range(steps):
            mask, pattern = (
                (torch.tanh(m_raw) + 1) / 2,
                lo + (hi - lo) * (torch.tanh(p_raw) + 1) / 2,
            )
            loss = F.cross_entropy(f((1 - mask) * x + mask * pattern), goal) + l1 * mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    mask = ((torch.tanh(m_raw) + 1) / 2).detach()
    pattern = (lo + (hi - lo) * (torch.tanh(p_raw) + 1) / 2).detach()
    cost = Cost(forward=steps + 2, backward=steps)
    return _trigger(f, x, target, mask, pattern, "neural_cleanse", cost, start)


def anomaly_index(norms: Sequence[float]) -> tuple[float, int]:
    """(anomaly index of the smallest norm, its position) by the median absolute deviation."""
    t = torch.tensor(list(norms), dtype=torch.float64)
    med = t.median()
    mad = 1.4826 * (t - med).abs().median()
    low = int(t.argmin())
    return float((med - t[low]) / mad.clamp_min(1e-12)), low


#: registers a trigger scan: one trigger per class, scored by the true trigger's IoU
_scan = partial(
    register,
    "failures",
    kind="method",
    cost_unit="passes",
    metric="trigger_iou",
    needs_gradients=True,
)


@_scan("neural_cleanse")
def neural_cleanse(
    model: Any,
    x: Tensor,
    *,
    classes: Sequence[int] | None = None,
    steps: int = 300,
    lr: float = 0.1,
    l1: float = 0.01,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool = False,
) -> NeuralCleanse:
    """Reconstruct a trigger for every class and score how anomalous the smallest one is."""
    from tqdm.auto import tqdm

    f = model_fn(model)
    probes = int(classes is None)  # one pass to count the classes
    if classes is None:
        with torch.no_grad():
            classes = range(f(x[:1]).shape[-1])
    triggers = tuple(
        reconstruct_trigger(model, x, c, steps=steps, lr=lr, l1=l1, bounds=bounds, seed=seed + i)
        for i, c in enumerate(
            tqdm(list(classes), desc="neural cleanse", disable=not progress, leave=False)
        )
    )
    index, low = anomaly_index([t.mask_l1 for t in triggers])
    return NeuralCleanse(
        triggers,
        index,
        triggers[low].target,
        cost=sum((t.cost for t in triggers), Cost(forward=probes)),
        seconds=sum(t.seconds for t in triggers),
        extra={"l1": l1, "steps": steps},
    )


@register(
    "failures", "weight_norm", kind="baseline", cost_unit="none", metric="trojan_detection_auroc"
)
def weight_norm(model: Any, x: Tensor | None = None, *, seed: int = 0) -> TrojanScore:
    """The squared L2 norm of all the model's weights (reads no input; ``x`` is unused)."""
    module = getattr(model, "module", model)
    with torch.no_grad():
        score = float(sum(p.norm() ** 2 for p in module.parameters()))
    return TrojanScore(score, "weight_norm")


def random_trigger(
    model: Any,
    x: Tensor,
    target: int,
    *,
    size: int,
    seed: int = 0,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> TriggerReconstruction:
    """The random control: ``size`` input positions chosen at random, a uniform random pattern."""
    f = model_fn(model)
    _check(f, x, target)
    gen = torch.Generator().manual_seed(seed)
    d = x[0].numel()
    mask = torch.zeros(d)
    mask[torch.randperm(d, generator=gen)[: max(0, min(size, d))]] = 1.0
    mask = mask.view(x.shape[1:])
    pattern = bounds[0] + (bounds[1] - bounds[0]) * torch.rand(x.shape[1:], generator=gen)
    return _trigger(f, x, target, mask, pattern, "random", Cost(forward=2))


def synthesize_trigger(
    model: Any,
    x: Tensor,
    target: int,
    *,
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 0.05,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
) -> TriggerReconstruction:
    """Feature synthesis (activation maximisation, as in Casper et al.'s trojan benchmark): find
    the input ``s`` in ``bounds`` that maximises the target logit minus ``l2 * |s - mean|²``,
    starting from the mean clean input. The mask is where ``s`` departs from the mean by more
    than half the range; the pattern is ``s`` itself."""
    f = model_fn(model)
    _check(f, x, target)
    start = time.perf_counter()
    lo, hi = bounds
    mean = x.mean(0)
    gen = torch.Generator().manual_seed(seed)
    s = (mean + 0.01 * torch.randn(mean.shape, generator=gen)).clamp(lo, hi).requires_grad_(True)
    opt = torch.optim.Adam([s], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            logits = f(s.unsqueeze(0))[0]
            loss = -logits[int(target)] + l2 * ((s - mean) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                s.clamp_(lo, hi)
    pattern = s.detach()
    mask = ((pattern - mean).abs() > 0.5 * (hi - lo)).float()
    cost = Cost(forward=steps + 2, backward=steps)
    return _trigger(f, x, target, mask, pattern, "feature_synthesis", cost, start)


@dataclass(frozen=True, eq=False)
class TriggerScan(Result):
    """One synthesized trigger per class and the class the scan flags (``flip_rates[i]``: the
    share of clean inputs of other classes that ``triggers[i]`` sends to its class)."""

    triggers: tuple[TriggerReconstruction, ...]
    flip_rates: tuple[float, ...]
    flagged: int

    def trigger_for(self, target: int) -> TriggerReconstruction:
        return next(t for t in self.triggers if t.target == int(target))


def _flip_rate(f: Any, rec: TriggerReconstruction, x: Tensor, labels: Tensor) -> float:
    keep = labels != rec.target
    if not keep.any():
        return 0.0
    return _success(f, rec.apply(x[keep]), rec.target)


@_scan("feature_synthesis")
def synthesis_scan(
    model: Any,
    x: Tensor,
    *,
    classes: Sequence[int] | None = None,
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 0.05,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
) -> TriggerScan:
    """Feature synthesis for every class (or ``classes``); flag the class whose trigger flips the
    most clean inputs ``x`` of other classes (by the model's own predictions), ties to the
    smaller mask."""
    f = model_fn(model)
    with torch.no_grad():
        labels = f(x).argmax(-1)
        classes = range(f(x[:1]).shape[-1]) if classes is None else classes
    triggers = tuple(
        synthesize_trigger(model, x, c, steps=steps, lr=lr, l2=l2, bounds=bounds, seed=seed + i)
        for i, c in enumerate(classes)
    )
    rates = tuple(_flip_rate(f, t, x, labels) for t in triggers)
    best = max(range(len(triggers)), key=lambda i: (rates[i], -triggers[i].mask_l1))
    return TriggerScan(
        triggers,
        rates,
        triggers[best].target,
        cost=sum((t.cost for t in triggers), Cost(forward=2 + len(triggers))),
        seconds=sum(t.seconds for t in triggers),
    )
