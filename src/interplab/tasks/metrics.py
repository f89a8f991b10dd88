"""The metrics that score a (patched) run of a :class:`~interplab.tasks.task.Task`.

Metrics compare the outputs of a run at the scored positions with the clean run:

    logit_diff   mean of logit[label] - logit[wrong_label] (categorical outputs; without wrong
                 labels: logit[label] - mean logit). For a numerical output (d_vocab_out = 1):
                 mean of (out - wrong) * sign(label - wrong). Higher = more like the clean run.
    kl           mean KL(p_clean || p_run) over scored positions (categorical only; nats).
    l2           mean squared distance between run and clean outputs (any output; logit units²).
    accuracy     fraction of scored positions whose argmax (categorical) or rounded value
                 (numerical: within 0.05) equals the label. Not differentiable.
    a callable   fn(out [b, n, v], ctx: MetricContext) -> scalar tensor.

Every named metric is a mean over rows and scored positions. Shapes: b = batch, n = number of
scored positions, v = d_vocab_out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from interplab.errors import ConfigError, unknown_name
from interplab.tasks.task import MetricSpec, Task

Tensor = torch.Tensor
METRICS = ("logit_diff", "kl", "l2", "accuracy")


@dataclass(frozen=True, eq=False)
class MetricContext:
    """What a metric compares against. ``clean_out`` is [b, n, v] (detached)."""

    clean_out: Tensor
    labels: Tensor
    wrong_labels: Tensor | None
    numeric: bool


@dataclass(frozen=True, eq=False)
class Metric:
    """A resolved metric. ``distance``: 0 at the clean run and growing as the run departs from
    it (kl, l2); otherwise a score where the clean run is high (logit_diff, accuracy)."""

    name: str
    fn: Callable[[Tensor, MetricContext], Tensor]
    distance: bool
    differentiable: bool = True
    ctx: MetricContext | None = field(default=None, repr=False)

    def __call__(self, out: Tensor) -> Tensor:
        """out: the run's outputs at the scored positions [b, n, v] -> scalar tensor."""
        assert self.ctx is not None
        return self.fn(out, self.ctx)

    def damage(self, new: float, current: float) -> float:
        """How much worse ``new`` is than ``current``: signed for distances, absolute otherwise."""
        return new - current if self.distance else abs(new - current)


def select_outputs(logits: Tensor, task: Task) -> Tensor:
    """Model outputs [b, p, v] -> the scored positions [b, n, v]."""
    return task.select(logits)


def resolve_metric(spec: MetricSpec | None, task: Task, clean_logits: Tensor) -> Metric:
    """Build the metric for ``task`` given the clean run's logits [b, p, v]."""
    spec = task.metric if spec is None else spec
    out = select_outputs(clean_logits, task).detach()
    numeric = out.shape[-1] == 1
    if task.labels is not None:
        labels = task.labels
    else:
        labels = out[..., 0] if numeric else out.argmax(-1)
    ctx = MetricContext(out, labels, task.wrong_labels, numeric)
    if callable(spec):
        return Metric(getattr(spec, "__name__", "custom"), spec, distance=False, ctx=ctx)
    if spec not in METRICS:
        raise unknown_name("metric", str(spec), METRICS)
    if numeric and spec == "kl":
        raise ConfigError(
            "metric 'kl' needs categorical outputs, but this model has one numerical "
            "output (d_vocab_out = 1); use metric='l2'"
        )
    if spec == "logit_diff" and numeric and task.wrong_labels is None:
        raise ConfigError(
            "metric 'logit_diff' on a numerical output needs task.wrong_labels (the "
            "answers on the corrupted inputs); give them or use metric='l2'"
        )
    fns = {"logit_diff": _logit_diff, "kl": _kl, "l2": _l2, "accuracy": _accuracy}
    return Metric(
        spec, fns[spec], distance=spec in ("kl", "l2"), differentiable=spec != "accuracy", ctx=ctx
    )


def _logit_diff(out: Tensor, ctx: MetricContext) -> Tensor:
    if ctx.numeric:
        assert ctx.wrong_labels is not None
        y, w = ctx.labels.to(out.dtype), ctx.wrong_labels.to(out.dtype)
        return ((out[..., 0] - w) * torch.sign(y - w)).mean()
    right = out.gather(-1, ctx.labels.long().unsqueeze(-1))[..., 0]
    if ctx.wrong_labels is None:
        return (right - out.mean(-1)).mean()
    wrong = out.gather(-1, ctx.wrong_labels.long().unsqueeze(-1))[..., 0]
    return (right - wrong).mean()


def _kl(out: Tensor, ctx: MetricContext) -> Tensor:
    clean = ctx.clean_out.log_softmax(-1)
    run = out.log_softmax(-1)
    return (clean.exp() * (clean - run)).sum(-1).mean()


def _l2(out: Tensor, ctx: MetricContext) -> Tensor:
    return ((out - ctx.clean_out) ** 2).sum(-1).mean()


def _accuracy(out: Tensor, ctx: MetricContext) -> Tensor:
    if ctx.numeric:
        return ((out[..., 0] - ctx.labels.to(out.dtype)).abs() < 0.05).float().mean()
    return (out.argmax(-1) == ctx.labels).float().mean()
