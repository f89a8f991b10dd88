"""The stacked backend of the circuit engine: one forward pass in which any set of edges is ablated.

The residual stream is a sum of sender outputs, so ablating edge s -> r means: at r's input,
subtract s's output in this run and add s's ablated output A_s. With an ablation strength
``a[e]`` in [0, 1] per edge (0 = keep, 1 = fully ablated) the receiver input becomes

    x_r  +  sum_s a[s->r] * (A_s - S_s)          S_s: s's output in this (patched) run

``a`` may require grad: d metric / d a[e] at a = 0 is exactly EAP's edge score
(A_s - S_s) · d metric / d x_r, and integrating it along a = t·1 is EAP-IG.

Ablated outputs A_s: zero -> 0; mean -> the mean of s's output over the clean inputs (per
position); resample -> s's output on the corrupted inputs (row i from corrupted row i).

Every sender's output is held at once (a stack [senders, b, p, d] per receiver site), so the
whole task runs as one batch: exact and fast on organisms, too much memory for a large model's
full graph, which the running-sums backend (:mod:`.running`) handles.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.circuit import ABLATIONS, Circuit, Edge
from interplab.errors import ShapeError, unknown_name
from interplab.methods.base import Cost
from interplab.methods.circuits.graph import EdgeIndex, model_graph
from interplab.methods.circuits.scores import EdgeScores
from interplab.tasks import Metric, MetricSpec, Task, resolve_metric, select_outputs

Tensor = torch.Tensor


@dataclass
class PassCounter:
    """Forward and backward passes through the model (each over the whole task batch)."""

    forward: int = 0
    backward: int = 0

    def snapshot(self) -> tuple[int, int]:
        return (self.forward, self.backward)


class EdgePatcher:
    """Runs ``model`` on ``task`` with edges of ``graph`` (default: the full graph) ablated.

    Args:
        model: a native HookedTransformer (anything with ``.cfg`` and the per-head sites).
        task: the clean/corrupted inputs.
        ablation: "zero", "mean" or "resample".
        graph: the edges that may be ablated; others always keep their clean-run value.
        metric: metric name or callable (default ``task.metric``).
    """

    def __init__(
        self,
        model: Any,
        task: Task,
        ablation: str = "resample",
        graph: Circuit | None = None,
        metric: MetricSpec | None = None,
    ):
        if ablation not in ABLATIONS:
            raise unknown_name("ablation", str(ablation), ABLATIONS)
        self.model = model
        self.task = task
        self.ablation = ablation
        self.index = EdgeIndex(graph if graph is not None else model_graph(model))
        self.counter = PassCounter()
        self._ablated: Tensor | None = None
        self._clean_logits: Tensor | None = None
        self._metric_spec = metric
        self._metric: Metric | None = None

    # ------------------------------------------------------------ results
    def cost(self) -> Cost:
        """The passes this engine has run so far."""
        return Cost(forward=self.counter.forward, backward=self.counter.backward)

    def edge_scores(
        self, values: Tensor | Mapping[Edge, float], method: str, start: float, **extra: Any
    ) -> EdgeScores:
        """``method``'s result: ``values`` per edge (a dict, or a tensor [n_edges] in the
        engine's edge order) with this engine's ablation, metric and passes; seconds since
        ``start`` (a :func:`time.perf_counter` reading); ``extra``: method details."""
        if isinstance(values, Tensor):
            values = {e: float(values[i]) for i, e in enumerate(self.index.edges)}
        return EdgeScores(
            values,
            method,
            self.ablation,
            self.metric.name,
            cost=self.cost(),
            seconds=time.perf_counter() - start,
            extra=extra,
        )

    # ------------------------------------------------------------ reference values
    @property
    def n_edges(self) -> int:
        return len(self.index)

    def sender_outputs(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """One plain forward recording every sender: (logits [b,p,v], outputs [s, b, p, d])."""
        sites = list(self.index.sender_sites)
        with torch.no_grad():
            logits, cache = self.model.run_with_cache(inputs, sites)
        self.counter.forward += 1
        outs: dict[int, Tensor] = {}
        for site, members in self.index.sender_sites.items():
            value = cache[site]
            for i, head in members:
                outs[i] = value[:, :, head] if head is not None else value
        return logits, torch.stack([outs[i] for i in range(len(self.index.senders))])

    def ablated(self) -> Tensor:
        """A_s for every sender: [s, b or 1, p, d] (computed once)."""
        if self._ablated is None:
            if self.ablation == "resample":
                _, outs = self.sender_outputs(self.task.corrupted)
            else:
                logits, outs = self.sender_outputs(self.task.clean)
                if self._clean_logits is None:
                    self._clean_logits = logits
                outs = (
                    torch.zeros_like(outs[:, :1])
                    if self.ablation == "zero"
                    else outs.mean(1, keepdim=True)
                )
            self._ablated = outs
        return self._ablated

    def clean_logits(self) -> Tensor:
        if self._clean_logits is None:
            with torch.no_grad():
                self._clean_logits = self.model.run(self.task.clean)
            self.counter.forward += 1
        return self._clean_logits

    @property
    def metric(self) -> Metric:
        if self._metric is None:
            self._metric = resolve_metric(self._metric_spec, self.task, self.clean_logits())
        return self._metric

    # ----------------------------------------------------------------- the run
    def run(
        self, strength: Tensor | None, *, grad: bool = False, inputs: Tensor | None = None
    ) -> Tensor:
        """Logits [b, p, v] of a run on the clean inputs with edge ``e`` ablated by
        ``strength[e]`` ([n_edges], 0 = keep, 1 = ablate; None = nothing ablated).
        ``grad=True`` keeps the autograd graph (``strength`` may require grad)."""
        inputs = self.task.clean if inputs is None else inputs
        ablated = self.ablated()
        if strength is None:
            strength = torch.zeros(self.n_edges)
        if strength.shape != (self.n_edges,):
            raise ShapeError(
                f"edge strengths must have shape [{self.n_edges}] (one per edge of the "
                f"graph), got {tuple(strength.shape)}"
            )
        current: dict[int, Tensor] = {}
        hooks = {}
        for site, members in self.index.sender_sites.items():
            hooks[site] = _recorder(current, members)
        for group in self.index.groups:
            values = strength[group.edge_ids]
            if not grad and not bool((values != 0).any()):
                continue
            hooks[group.site] = _patcher(group, values, current, ablated)
        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx, self.model.hooks(hooks):
            logits = self.model.run(inputs)
        self.counter.forward += 1
        return logits

    def score(self, strength: Tensor | None, *, grad: bool = False) -> Tensor:
        """The metric (a scalar tensor) of :meth:`run`."""
        return self.metric(select_outputs(self.run(strength, grad=grad), self.task))

    def score_keep(self, keep: Tensor) -> float:
        """Metric of the run keeping edges where ``keep`` is 1 and ablating the rest."""
        return float(self.score(1.0 - keep))

    def backward(self, value: Tensor, wrt: Tensor) -> Tensor:
        """d value / d wrt, counted as one backward pass."""
        (grad,) = torch.autograd.grad(value, wrt)
        self.counter.backward += 1
        return grad


def _recorder(current: dict[int, Tensor], members: list[tuple[int, int | None]]):
    def hook(value: Tensor) -> None:
        for i, head in members:
            current[i] = value[:, :, head] if head is not None else value
        return None

    return hook


def _patcher(group, values: Tensor, current: dict[int, Tensor], ablated: Tensor):
    def hook(value: Tensor) -> Tensor:
        coef = torch.zeros(group.n_prev, group.n_cols, dtype=value.dtype)
        coef = coef.index_put((group.rows, group.cols), values.to(value.dtype))
        live = torch.stack([current[i] for i in range(group.n_prev)])  # [s, b, p, d]
        diff = ablated[: group.n_prev].to(value.dtype) - live
        if group.per_head:  # value [b, p, h, d]; heads beyond n_cols are untouched
            delta = torch.einsum("sbpd,sh->bphd", diff, coef)
            if group.n_cols < value.shape[2]:
                pad = value.shape[2] - group.n_cols
                delta = torch.cat(
                    [delta, delta.new_zeros(*delta.shape[:2], pad, delta.shape[3])], 2
                )
            return value + delta
        return value + torch.einsum("sbpd,s->bpd", diff, coef[:, 0])

    return hook
