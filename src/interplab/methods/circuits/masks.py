"""Edge pruning: circuit discovery by learning a mask over every edge of the circuit graph
(after Bhaskar et al. 2024, "Finding Transformer Circuits with Edge Pruning").

Every edge e = s -> r gets a learnable logit ``log_alpha[e]``. A hard-concrete gate
(Louizos et al. 2018: temperature 2/3, stretched to (-0.1, 1.1) and clipped to [0, 1]) samples
z_e in [0, 1] from it, and the model runs with every receiver reading

    x_r + sum_s (1 - z[s->r]) (A_s - S_s)            (the engine's strength a = 1 - z)

(A_s: the ablated sender output, mean / resample / zero; S_s: its output in this run). The
logits are trained with Adam to minimise

    loss = D(masked run, full run) / D(empty circuit, full run)  +  lambda_t * E[kept fraction]

where D is the task behaviour's distance from the full model: the squared error of the per-prompt
metric (logit_diff or a callable metric), or the metric itself for kl / l2 (already distances to
the clean run). Dividing by the empty circuit's distance (every edge ablated; one pass per chunk)
makes the loss 1 for "nothing kept", so one ``penalty`` suits every model and metric.
E[kept fraction] = mean_e P(z_e > 0), the L0 relaxation. ``lambda_t`` rises linearly from 0 to
``penalty`` over the first ``warmup`` share of the steps and then stays: edges whose removal
costs little are pruned first, and since Adam lowers a pruned edge's logit by about ``lr`` per
step, the final logits rank edges by how long they survived as well as by their importance.

The method returns the final logits as edge scores (higher = keep), so top-k rankings and
faithfulness curves apply at every circuit size. Seeded: the gate noise comes from a
``torch.Generator`` seeded with ``seed``, the chunks are visited in a fixed order.

Backends, chosen like EAP's (:func:`~.eap.choose_backend`):

    stacked   :meth:`~.engine.EdgePatcher.run` with a differentiable strength; the whole task
              is one batch per step (organisms, sub-graphs).
    running   :func:`masked_logits`, a differentiable dense forward over the full graph's
              :class:`~.running.GraphLayout`; one chunk of ``batch_size`` prompts per step
              (large models: SmolLM2-135M's 123,211 edges). Memory stays bounded: each sender
              site's A_s - S_s is copied once per forward into one [senders, b*p*d] buffer (83 MB
              for SmolLM2 at 8 prompts of 15 tokens), and each group of receiver sites that read
              the same senders (a layer's q, k, v inputs) takes one matrix product with its
              leading rows (:class:`_Mix`, whose backward hands the gradient back to each
              site's difference). Nothing is stacked per receiver, and one product per group
              instead of one einsum per (sender site, receiver site) pair made a SmolLM2
              forward + backward about 6x faster (measured on a shared 2-core machine).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.methods.base import Cost
from interplab.methods.circuits.eap import choose_backend
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.running import (
    Ablation,
    GraphLayout,
    ablation_sources,
    check_inputs,
    progress_bar,
)
from interplab.methods.circuits.scores import EdgeScores
from interplab.methods.registry import register
from interplab.tasks import METRICS, Metric, MetricSpec, Task, resolve_metric, select_outputs
from interplab.tasks.metrics import MetricContext

Tensor = torch.Tensor

#: hard-concrete gate: temperature and the stretch interval (Louizos et al. 2018)
BETA = 2.0 / 3.0
LEFT, RIGHT = -0.1, 1.1
#: Adam steps when ``steps=None``: the stacked backend takes the whole task per step (organisms:
#: seconds); a running step is one chunk through SmolLM2's full graph (measured: 60 steps of 8
#: IOI prompts took about 7.5 CPU-minutes on one thread), so 60 keeps a run to minutes
DEFAULT_STEPS = {"stacked": 100, "running": 60}
#: log_alpha at the start: every edge kept with probability ~0.99 (the run starts at the full model)
INIT_LOGIT = 3.0


# --------------------------------------------------------------------------- the gates
def sample_keep(log_alpha: Tensor, generator: torch.Generator) -> Tensor:
    """One hard-concrete sample z in [0, 1] per edge (differentiable in ``log_alpha``)."""
    u = torch.rand(log_alpha.shape, generator=generator).clamp(1e-6, 1.0 - 1e-6)
    s = torch.sigmoid((u.log() - (-u).log1p() + log_alpha) / BETA)
    return (s * (RIGHT - LEFT) + LEFT).clamp(0.0, 1.0)


def keep_probability(log_alpha: Tensor) -> Tensor:
    """P(z > 0) per edge: the expected L0 norm's summands."""
    return torch.sigmoid(log_alpha - BETA * math.log(-LEFT / RIGHT))


# --------------------------------------------------------------------------- the running forward
def masked_logits(
    model: Any, layout: GraphLayout, tokens: Tensor, abl: Ablation, strength: Tensor
) -> Tensor:
    """Logits [b, p, v] of ``tokens`` with edge e ablated by ``strength[e]`` (0 keep .. 1 ablate;
    [n_edges] in ``layout``'s edge order), differentiable in ``strength`` when it requires grad.

    Each sender site's difference A - S (S live, so gradients also flow through the senders) is
    laid out once as [senders of the site, b*p*d]. Receiver sites that read the same senders
    (a layer's q, k and v inputs) form one group; the group's correction
    [its receiver columns, b*p*d] is one small matrix product per earlier sender site,
    ``coef[site's senders, cols].T @ (A - S)``, accumulated in place, so autograd keeps
    references to the per-site differences, never a stack of all earlier senders."""
    if strength.shape != (len(layout),):
        raise ShapeError(
            f"edge strengths must have shape [{len(layout)}] (one per edge of the full graph), "
            f"got {tuple(strength.shape)}"
        )
    plan = _layout_plan(layout)
    diffs: dict[Site, Tensor] = {}
    buffer: dict[str, Tensor] = {}  # "rows": [senders, b*p*d], row = sender id
    deltas: dict[int, Tensor] = {}  # group -> [cols of the group, b*p*d]
    shape: dict[str, tuple[int, int, int]] = {}
    hooks: dict[Site, Callable[[Tensor], Tensor | None]] = {}
    for site in layout.sender_sites:

        def send(value: Tensor, site: Site = site) -> None:
            diff = abl.values[site].to(value.dtype) - value
            b, p, d = value.shape[0], value.shape[1], value.shape[-1]
            shape["bpd"] = (b, p, d)
            heads = plan.sender_heads[site]
            if heads is None:
                flat = diff.expand(b, p, d).reshape(1, -1)
            else:
                flat = diff.expand(b, p, -1, d).permute(2, 0, 1, 3)[heads].reshape(len(heads), -1)
            if "rows" not in buffer:
                buffer["rows"] = flat.new_empty(len(layout.senders), flat.shape[1])
            lo, hi = plan.sender_rows[site]
            with torch.no_grad():
                buffer["rows"][lo:hi].copy_(flat)
            diffs[site] = flat
            return None

        hooks[site] = send

    def group_delta(g: int) -> Tensor:
        if g not in deltas:
            group = plan.groups[g]
            coef = strength.new_zeros(group.n_prev, group.n_cols)
            coef = coef.index_put((group.rows, group.cols), strength[group.edge_ids])
            sources = [diffs[src] for src in plan.sources[g]]
            rows = buffer["rows"][: group.n_prev]
            deltas[g] = _Mix.apply(coef.to(rows.dtype), rows, *sources)
        return deltas[g]

    for site, (g, offset, n_cols) in plan.receivers.items():

        def receive(
            value: Tensor, g: int = g, offset: int = offset, n_cols: int = n_cols
        ) -> Tensor:
            b, p, d = shape["bpd"]
            delta = group_delta(g)[offset : offset + n_cols].view(n_cols, b, p, d)
            delta = delta.permute(1, 2, 0, 3)  # [b, p, cols, d]
            if value.dim() == 4:  # per-head receiver; heads beyond n_cols are untouched
                if n_cols < value.shape[2]:
                    pad = delta.new_zeros(b, p, value.shape[2] - n_cols, d)
                    delta = torch.cat([delta, pad], 2)
                return value + delta
            return value + delta[:, :, 0]

        hooks[site] = receive
    ctx = torch.enable_grad() if strength.requires_grad else torch.no_grad()
    with ctx, model.hooks(hooks):
        return model.run(tokens)


class _Mix(torch.autograd.Function):
    """coef.T @ rows, where ``rows`` [n_prev, N] is a no-grad buffer holding exactly the
    ``sources`` (the per-sender-site differences, in row order, each [its senders, N]) side by
    side. One matrix product each way instead of one per sender site; the gradient for the
    differences is split back to the sources as views. The buffer's rows are written once per
    forward, before any group that reads them, and never again, so it is safe to keep."""

    @staticmethod
    def forward(ctx: Any, coef: Tensor, rows: Tensor, *sources: Tensor) -> Tensor:
        ctx.save_for_backward(coef)
        ctx.rows = rows  # not saved_tensors: later rows of the buffer are written in place
        ctx.sizes = [s.shape[0] for s in sources]
        return coef.T @ rows

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (coef,) = ctx.saved_tensors
        rows = ctx.rows
        grad_coef = rows @ grad.T if ctx.needs_input_grad[0] else None
        parts: list[Tensor | None] = [None] * len(ctx.sizes)
        if any(ctx.needs_input_grad[2:]):
            parts = list((coef @ grad).split(ctx.sizes))
        return (grad_coef, None, *parts)


@dataclass(frozen=True)
class _Group:
    """Receiver sites reading the same ``n_prev`` senders, their columns side by side."""

    n_prev: int
    n_cols: int
    edge_ids: Tensor
    rows: Tensor
    cols: Tensor


class _Plan:
    """Per sender site: its sender ids (in head order) and heads (None: one sender); receiver
    sites grouped by the senders they read (:class:`_Group`)."""

    def __init__(self, layout: GraphLayout):
        self.sender_ids: dict[Site, list[int]] = {}
        self.sender_heads: dict[Site, list[int] | None] = {}
        for site, members in layout.sender_sites.items():
            ordered = sorted(members, key=lambda m: -1 if m[1] is None else m[1])
            self.sender_ids[site] = [i for i, _ in ordered]
            heads = [h for _, h in ordered if h is not None]
            self.sender_heads[site] = heads if heads else None
            if len(ordered) > 1 and self.sender_heads[site] is None:
                raise ShapeError(f"sender site {site} holds several senders but no heads")
        self.sender_rows: dict[Site, tuple[int, int]] = {}
        for site, ids in self.sender_ids.items():
            if ids != list(range(ids[0], ids[0] + len(ids))):
                raise ShapeError(f"the senders of {site} are not numbered consecutively")
            self.sender_rows[site] = (ids[0], ids[0] + len(ids))
        by_prev: dict[int, list[int]] = {}
        for k, site in enumerate(layout.site_list):
            by_prev.setdefault(layout.n_prev[site], []).append(k)
        self.receivers: dict[Site, tuple[int, int, int]] = {}  # site -> (group, offset, cols)
        self.groups: list[_Group] = []
        self.sources: list[list[Site]] = []  # per group: the sender sites before it, in row order
        for n_prev, site_ks in by_prev.items():
            offset = 0
            group_ids: list[Tensor] = []
            group_cols: list[Tensor] = []
            for k in site_ks:
                recv = layout.site_list[k]
                self.receivers[recv] = (len(self.groups), offset, layout.site_cols[k])
                group_ids.append(layout.site_edges[k])
                group_cols.append(layout.edge_col[layout.site_edges[k]] + offset)
                offset += layout.site_cols[k]
            edge_ids = torch.cat(group_ids)
            self.groups.append(
                _Group(
                    n_prev, offset, edge_ids, layout.edge_sender[edge_ids], torch.cat(group_cols)
                )
            )
            before = [s for s, (lo, hi) in self.sender_rows.items() if hi <= n_prev]
            if sum(hi - lo for lo, hi in (self.sender_rows[s] for s in before)) != n_prev:
                raise ShapeError(f"the {n_prev} senders before a receiver do not fill whole sites")
            self.sources.append(sorted(before, key=lambda s: self.sender_rows[s][0]))


def _layout_plan(layout: GraphLayout) -> _Plan:
    plan = getattr(layout, "_edge_pruning_plan", None)
    if plan is None:
        plan = _Plan(layout)
        layout._edge_pruning_plan = plan  # type: ignore[attr-defined]
    return plan


# --------------------------------------------------------------------------- the loss
def _distance(metric: Metric, out: Tensor) -> Tensor:
    """The behaviour's distance from the clean run for outputs ``out`` [b, n, v] (the metric's
    context holds the clean run's outputs): the metric itself for kl / l2, else the mean over
    prompts of (metric on that prompt - metric on its clean run)^2."""
    if metric.distance:
        return metric(out)
    ctx = metric.ctx
    assert ctx is not None
    errors = []
    for i in range(out.shape[0]):
        row = MetricContext(
            ctx.clean_out[i : i + 1],
            ctx.labels[i : i + 1],
            None if ctx.wrong_labels is None else ctx.wrong_labels[i : i + 1],
            ctx.numeric,
        )
        value = metric.fn(out[i : i + 1], row)
        errors.append((value - metric.fn(ctx.clean_out[i : i + 1], row).detach()) ** 2)
    return torch.stack(errors).mean()


def _check_metric(metric: Metric) -> None:
    if not metric.differentiable:
        raise ConfigError(
            f"edge pruning trains through the metric; {metric.name!r} is not differentiable. "
            "Use metric='logit_diff', 'kl' or 'l2'"
        )


# --------------------------------------------------------------------------- the method
@register(
    "circuits",
    "edge_pruning",
    kind="method",
    cost_unit="passes",
    metric="edge_auroc",
    needs_gradients=True,
)
def edge_pruning(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "logit_diff",
    graph: Circuit | None = None,
    backend: str = "auto",
    batch_size: int = 8,
    progress: bool = False,
    steps: int | None = None,
    lr: float = 0.2,
    penalty: float = 1.0,
    warmup: float = 0.5,
    seed: int = 0,
    signed: bool = False,
) -> EdgeScores:
    """Edge pruning: learn a hard-concrete keep-mask over the edges that keeps the task
    behaviour with few edges; the scores are the learned keep-logits (higher = keep).

    ``steps`` Adam steps (None: :data:`DEFAULT_STEPS` for the backend) of learning rate ``lr``
    (one per chunk of ``batch_size`` prompts on the running backend, the whole task per step
    on the stacked one); ``penalty``: the final weight of the expected kept-edge fraction,
    reached after ``warmup`` x steps; ``signed`` is accepted and ignored (the logits carry
    their own sign)."""
    del signed
    which = choose_backend(model, graph, backend)
    steps = DEFAULT_STEPS[which] if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    for name, value in (("lr", lr), ("penalty", penalty)):
        if not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
    if not isinstance(warmup, int | float) or not 0 <= warmup <= 1:
        raise ConfigError(f"warmup must be a share of the steps in [0, 1], got {warmup!r}")
    start = time.perf_counter()
    if which == "running":
        trainer: _Trainer = _RunningTrainer(model, task, ablation, metric, batch_size)
    else:
        trainer = _StackedTrainer(model, task, ablation, metric, graph)
    log_alpha = torch.full((trainer.n_edges,), INIT_LOGIT, requires_grad=True)
    opt = torch.optim.Adam([log_alpha], lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    ramp = max(1, round(warmup * steps))
    bar = progress_bar(steps, f"edge_pruning [{ablation}]", progress)
    history: list[tuple[float, float]] = []
    for step in range(steps):
        lam = penalty * min(1.0, (step + 1) / ramp) if warmup > 0 else penalty
        z = sample_keep(log_alpha, gen)
        faith = trainer.loss(1.0 - z, step)
        kept = keep_probability(log_alpha).mean()
        total = faith + lam * kept
        opt.zero_grad()
        (log_alpha.grad,) = torch.autograd.grad(total, [log_alpha])
        trainer.backward += 1
        opt.step()
        history.append((float(faith.detach()), float(kept.detach())))
        bar.update(1)
    bar.close()
    scores = log_alpha.detach()
    prob = keep_probability(scores)
    tail = history[-max(1, steps // 10) :]
    extra = {
        "backend": which,
        "scores": "keep-logits log_alpha (higher = keep; P(keep) = sigmoid(log_alpha + 1.6))",
        "steps": steps,
        "lr": lr,
        "penalty": penalty,
        "warmup": warmup,
        "seed": seed,
        "batch_size": batch_size if which == "running" else len(task),
        "final_loss": sum(f for f, _ in tail) / len(tail),
        "final_kept_fraction": float(prob.mean()),
        "kept_over_half": float((prob > 0.5).float().mean()),
        "loss_norm": trainer.norm,
    }
    return EdgeScores(
        dict(zip(trainer.edges, scores.tolist())),
        "edge_pruning",
        ablation,
        trainer.metric_name,
        cost=Cost(forward=trainer.forward, backward=trainer.backward),
        seconds=time.perf_counter() - start,
        extra=extra,
    )


class _Trainer:
    """What a backend gives the training loop: its edges, the normalised distance of a masked
    run (one forward with autograd per call) and the passes used."""

    n_edges: int
    edges: tuple
    metric_name: str
    norm: float
    forward: int = 0
    backward: int = 0

    def loss(self, strength: Tensor, step: int) -> Tensor:
        raise NotImplementedError


def _normaliser(value: float, ablation: str) -> float:
    if not value > 0:
        raise ConfigError(
            f"ablating every edge ({ablation}) leaves the task behaviour unchanged "
            "(distance 0 from the full model); there is no circuit to find"
        )
    return value


class _StackedTrainer(_Trainer):
    def __init__(
        self,
        model: Any,
        task: Task,
        ablation: str,
        metric: MetricSpec | None,
        graph: Circuit | None,
    ):
        self.eng = EdgePatcher(model, task, ablation, graph, metric)
        self.eng.ablated()
        self.task = task
        m = self.eng.metric
        _check_metric(m)
        self.metric_name = m.name
        self.n_edges = self.eng.n_edges
        self.edges = self.eng.index.edges
        with torch.no_grad():
            empty = self.eng.run(torch.ones(self.n_edges))
            self.norm = _normaliser(float(_distance(m, select_outputs(empty, task))), ablation)

    @property
    def forward(self) -> int:  # type: ignore[override]
        return self.eng.counter.forward

    def loss(self, strength: Tensor, step: int) -> Tensor:
        logits = self.eng.run(strength, grad=True)
        return _distance(self.eng.metric, select_outputs(logits, self.task)) / self.norm


class _RunningTrainer(_Trainer):
    def __init__(
        self, model: Any, task: Task, ablation: str, metric: MetricSpec | None, batch_size: int
    ):
        check_inputs(model, task, ablation, batch_size)
        spec = task.metric if metric is None else metric
        if isinstance(spec, str) and spec not in METRICS:
            raise unknown_name("metric", spec, METRICS)
        self.model = model
        self.layout = GraphLayout(model)
        self.n_edges = len(self.layout)
        self.edges = self.layout.edges
        self.chunks = task.chunks(batch_size)
        n = len(self.chunks)
        source = ablation_sources(model, self.layout, task, ablation, batch_size)
        self.forward = {"mean": n, "zero": 1, "resample": 0}[ablation]
        self.abl = [source(c) for c in self.chunks]
        self.forward += n if ablation == "resample" else 0
        self.metrics: list[Metric] = []
        total = 0.0
        ones = torch.ones(self.n_edges)
        for chunk, abl in zip(self.chunks, self.abl):
            with torch.no_grad():
                clean = model.run(chunk.clean)
                m = resolve_metric(spec, chunk, clean)
                _check_metric(m)
                empty = masked_logits(model, self.layout, chunk.clean, abl, ones).detach()
                total += float(_distance(m, select_outputs(empty, chunk))) * len(chunk)
            self.metrics.append(m)
            self.forward += 2
        self.metric_name = self.metrics[0].name
        self.norm = _normaliser(total / len(task), ablation)

    def loss(self, strength: Tensor, step: int) -> Tensor:
        k = step % len(self.chunks)
        chunk = self.chunks[k]
        logits = masked_logits(self.model, self.layout, chunk.clean, self.abl[k], strength)
        self.forward += 1
        return _distance(self.metrics[k], select_outputs(logits, chunk)) / self.norm
