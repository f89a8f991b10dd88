"""Edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG): one
implementation each, with one set of defaults, on two backends.

With ablation strengths ``a`` ([n_edges], see :mod:`.engine`), the metric m(a) is a smooth
function of ``a``; m(0) is the clean run and m(1) the fully ablated one.

    EAP     score_e = |d m / d a_e| at a = 0  =  |(A_s - S_s) · d m / d x_r|
            passes: 1 forward for the ablation source, 1 forward, 1 backward (per chunk).
    EAP-IG  score_e = |sum_k w_k d m / d a_e at a = t_k · 1| over ``steps`` points t_k of the
            straight path from clean to fully ablated (``rule`` "midpoint": t_k = (k - 1/2)/steps,
            w_k = 1/steps; "gauss_legendre": its nodes and weights on (0, 1)); the signed scores
            sum to m(1) - m(0) as steps grow. passes: 1 + steps forwards, steps backwards.

Defaults (everywhere: the bench, the CLI, notebooks): ``ablation="resample"``,
``metric="logit_diff"``, ``steps=5``, ``rule="midpoint"``.

Backends (``backend=``):

    stacked   :class:`~.engine.EdgePatcher`: every sender's output held at once, the whole task
              in one batch; any sub-graph (``graph=``). For small graphs (organisms).
    running   :mod:`.running`: two running sums per forward and batch chunks of ``batch_size``
              prompts; the full graph only. For large graphs (SmolLM2: 123,211 edges).
    auto      stacked when ``graph`` is given or the full graph has at most
              :data:`STACKED_MAX_EDGES` edges, running otherwise.

Both give the same scores (up to float rounding; tested on a tiny Llama and an organism).
kl and l2 have zero gradient at the clean run, so EAP needs logit_diff (or a callable);
EAP-IG works with any differentiable metric.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from interplab.core.circuit import Circuit
from interplab.errors import ConfigError, unknown_name
from interplab.methods.base import Cost
from interplab.methods.circuits.engine import EdgePatcher
from interplab.methods.circuits.graph import model_graph
from interplab.methods.circuits.running import (
    GraphLayout,
    ablation_sources,
    check_inputs,
    chunk_gradients,
    progress_bar,
    scored_logits,
    scored_view,
)
from interplab.methods.circuits.scores import EdgeScores
from interplab.methods.quadrature import ig_points
from interplab.methods.registry import register
from interplab.tasks import METRICS, MetricSpec, Task, resolve_metric, select_outputs

Tensor = torch.Tensor
BACKENDS = ("auto", "stacked", "running")
#: ``backend="auto"`` stacks the full graph up to this many edges (organisms have hundreds to a
#: few thousand; the stack costs senders x batch x pos x d_model floats per receiver site).
STACKED_MAX_EDGES = 20_000


def choose_backend(model: Any, graph: Circuit | None, backend: str) -> str:
    """``stacked`` or ``running`` for ``backend`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise unknown_name("circuit engine backend", str(backend), BACKENDS)
    if backend == "running" and graph is not None:
        raise ConfigError(
            "the running-sums backend scores the model's full graph; leave graph=None or use "
            "backend='stacked' for a sub-graph"
        )
    if backend != "auto":
        return backend
    if graph is not None:
        return "stacked"
    return "stacked" if len(model_graph(model).edges) <= STACKED_MAX_EDGES else "running"


def _check_metric(name: str, differentiable: bool, distance: bool, method: str) -> None:
    if not differentiable:
        raise ConfigError(
            f"{method} needs a differentiable metric; {name!r} is not. "
            "Use metric='logit_diff' (or 'kl'/'l2' with eap_ig)"
        )
    if method == "EAP" and distance:
        raise ConfigError(
            f"EAP with metric {name!r}: its gradient is zero at the clean "
            "run, so every edge would score 0. Use metric='logit_diff', or eap_ig"
        )


@register(
    "circuits", "eap", kind="method", cost_unit="passes", metric="edge_auroc", needs_gradients=True
)
def eap(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "logit_diff",
    graph: Circuit | None = None,
    signed: bool = False,
    backend: str = "auto",
    batch_size: int = 8,
    progress: bool = False,
) -> EdgeScores:
    """Edge attribution patching: every edge from one gradient. ``signed=True`` keeps the sign
    (positive = ablating the edge raises the metric). ``batch_size`` and ``progress`` apply to
    the running-sums backend."""
    if choose_backend(model, graph, backend) == "running":
        return _running(
            model, task, "eap", ablation, metric, ([0.0], [1.0], None), signed, batch_size, progress
        )
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    eng.ablated()  # the ablation source (1 forward; for zero/mean it is the clean run)
    strength = torch.zeros(eng.n_edges, requires_grad=True)
    logits = eng.run(strength, grad=True)
    if eng._clean_logits is None:
        eng._clean_logits = logits.detach()  # a = 0 is the clean run: no extra pass needed
    m = eng.metric
    _check_metric(m.name, m.differentiable, m.distance, "EAP")
    grad = eng.backward(m(select_outputs(logits, task)), strength)
    values = grad if signed else grad.abs()
    return eng.edge_scores(values, "eap", start, backend="stacked", signed_sum=float(grad.sum()))


@register(
    "circuits",
    "eap_ig",
    kind="method",
    cost_unit="passes",
    metric="edge_auroc",
    needs_gradients=True,
)
def eap_ig(
    model: Any,
    task: Task,
    *,
    ablation: str = "resample",
    metric: MetricSpec | None = "logit_diff",
    steps: int = 5,
    rule: str = "midpoint",
    graph: Circuit | None = None,
    signed: bool = False,
    backend: str = "auto",
    batch_size: int = 8,
    progress: bool = False,
) -> EdgeScores:
    """EAP with integrated gradients over the patch direction, ``steps`` points of ``rule``.
    ``extra["signed_sum"]`` is the sum of the signed scores (close to m(1) - m(0))."""
    points, weights = ig_points(steps, rule)
    if choose_backend(model, graph, backend) == "running":
        return _running(
            model,
            task,
            "eap_ig",
            ablation,
            metric,
            (points, weights, rule),
            signed,
            batch_size,
            progress,
        )
    start = time.perf_counter()
    eng = EdgePatcher(model, task, ablation, graph, metric)
    eng.ablated()
    m = eng.metric
    _check_metric(m.name, m.differentiable, m.distance, "EAP-IG")
    total = torch.zeros(eng.n_edges)
    for t, w in zip(points, weights):
        strength = torch.full((eng.n_edges,), t, requires_grad=True)
        grad = eng.backward(eng.score(strength, grad=True), strength)
        total += grad if rule == "midpoint" else w * grad  # midpoint: sum, then / steps
    mean = total / steps if rule == "midpoint" else total
    values = mean if signed else mean.abs()
    extra = {"backend": "stacked", "steps": steps, "rule": rule, "signed_sum": float(mean.sum())}
    return eng.edge_scores(values, "eap_ig", start, **extra)


def _running(
    model: Any,
    task: Task,
    method: str,
    ablation: str,
    metric: MetricSpec | None,
    path: tuple[list[float], list[float], str | None],
    signed: bool,
    batch_size: int,
    progress: bool,
) -> EdgeScores:
    """The running-sums backend: gradients accumulated over batch chunks, each chunk weighted by
    its share of the prompts (every named metric is a mean over rows)."""
    check_inputs(model, task, ablation, batch_size)
    points, weights, rule = path
    spec = task.metric if metric is None else metric
    if isinstance(spec, str):
        if spec not in METRICS:
            raise unknown_name("metric", spec, METRICS)
        label = "EAP" if method == "eap" else "EAP-IG"
        _check_metric(spec, spec != "accuracy", spec in ("kl", "l2"), label)
    start = time.perf_counter()
    layout = GraphLayout(model)
    source = ablation_sources(model, layout, task, ablation, batch_size)
    chunks = task.chunks(batch_size)
    scores = torch.zeros(len(layout.senders), len(layout.receivers), dtype=torch.float64)
    forward = backward = 0
    name = spec if isinstance(spec, str) else getattr(spec, "__name__", "custom")
    bar = progress_bar(len(chunks) * len(points), f"{method} [{ablation}]", progress)
    for chunk in chunks:
        abl = source(chunk)
        forward += ablation != "zero"
        clean = None
        view = scored_view(chunk)  # metrics read the scored positions' logits only
        if not (
            spec == "logit_diff" and chunk.labels is not None
        ):  # the metric reads the clean run
            with torch.no_grad():
                clean = scored_logits(model, chunk)
            forward += 1

        def m(logits: Tensor, view: Task = view, clean: Tensor | None = clean) -> Tensor:
            ref = logits.detach() if clean is None else clean
            return resolve_metric(spec, view, ref)(logits)

        for t, w in zip(points, weights):
            share = len(chunk) / len(task)
            scores += w * chunk_gradients(model, layout, chunk, abl, t, m) * share
            forward, backward = forward + 1, backward + 1
            bar.update(1)
    bar.close()
    values = scores[layout.edge_sender, layout.edge_receiver].float()
    signed_sum = float(values.sum())
    values = values if signed else values.abs()
    return EdgeScores(
        dict(zip(layout.edges, values.tolist())),
        method,
        ablation,
        name,
        cost=Cost(forward=forward, backward=backward),
        seconds=time.perf_counter() - start,
        extra={
            "backend": "running",
            "steps": len(points),
            "rule": rule,
            "signed_sum": signed_sum,
            "batch_size": batch_size,
        },
    )
