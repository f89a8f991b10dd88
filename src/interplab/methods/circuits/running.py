"""The running-sums backend of the circuit engine: EAP, EAP-IG and edge ablation over the
*full* edge graph of a large model, memory-bounded.

The residual stream read by a receiver r is the sum of the outputs of the senders before it. The
stacked backend (:mod:`.engine`) ablates edges by stacking every sender's output at every receiver,
which is exact but needs O(senders x batch x pos x d_model) memory per receiver: fine for
organisms, too much for SmolLM2 (301 senders, 841 receivers, 123,000 edges). Here the same
quantities come from two running sums kept during one forward,

    live(r) = sum of the senders' outputs before r in this run
    abl(r)  = sum of their ablated outputs A_s before r

so that, with every edge ablated by the same strength t, each receiver reads

    x_r + t (abl(r) - live(r))                           (the engine with strength t·1)

and the gradient of the metric m with respect to edge s -> r at that point is
(A_s - S_s) · dm/dx_r: one matrix product between the senders' differences [senders, N] and
the receivers' input gradients [receivers, N] (N = batch x pos x d_model), accumulated over
batch chunks of ``batch_size`` prompts (:func:`chunk_gradients`; :func:`~.eap.eap` and
:func:`~.eap.eap_ig` choose this backend for large graphs).

To run a circuit (edges kept, the rest ablated) a receiver reads
``x_r + (abl - live) - sum over kept s of (A_s - S_s)``, which touches only the kept edges; a
sparse ablation (a node's outgoing edges) reads ``x_r + sum over ablated s of (A_s - S_s)``.
Both agree with :class:`~.engine.EdgePatcher` on the full graph (tested on a tiny Llama).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.circuit import ABLATIONS, Node
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError, unknown_name
from interplab.methods.base import Cost
from interplab.methods.circuits.graph import EdgeIndex, model_graph, receiver_site, sender_site
from interplab.methods.circuits.scores import NodeScores
from interplab.tasks import Task

Tensor = torch.Tensor


class GraphLayout:
    """The full graph of ``model`` with senders and (node, channel) receivers numbered.

    ``edge_sender[e]`` / ``edge_receiver[e]`` give edge e's sender and receiver ids;
    ``receiver_cols[site]`` lists (receiver id, head column or None) read at that site."""

    def __init__(self, model: Any):
        self.index = EdgeIndex(model_graph(model))
        self.senders: tuple[Node, ...] = self.index.senders
        recv: dict[tuple[Node, str], int] = {}
        for e in self.index.edges:
            recv.setdefault((e.receiver, e.channel), len(recv))
        self.receivers = tuple(recv)
        self.edge_sender = torch.tensor([self.index.sender_id[e.sender] for e in self.index.edges])
        self.edge_receiver = torch.tensor([recv[(e.receiver, e.channel)] for e in self.index.edges])
        self.receiver_cols: dict[Site, list[tuple[int, int | None]]] = {}
        for (node, ch), rid in recv.items():
            self.receiver_cols.setdefault(receiver_site(node, ch), []).append(
                (rid, node.head if node.kind == "head" else None)
            )
        self.sender_sites = self.index.sender_sites  # site -> [(sender id, head or None)]
        self.n_prev = {g.site: g.n_prev for g in self.index.groups}  # senders before each site
        # per receiver site: its edge ids and head columns (for running circuits)
        self.site_list = [g.site for g in self.index.groups]
        self.site_edges = [g.edge_ids for g in self.index.groups]
        self.site_cols = [g.n_cols for g in self.index.groups]
        self.edge_col = torch.zeros(len(self.index.edges), dtype=torch.long)
        self.edge_site = torch.zeros(len(self.index.edges), dtype=torch.long)
        for k, g in enumerate(self.index.groups):
            self.edge_col[g.edge_ids] = g.cols
            self.edge_site[g.edge_ids] = k

    @property
    def edges(self):
        return self.index.edges

    def __len__(self) -> int:
        return len(self.index.edges)

    @functools.cached_property
    def edges_into(self) -> list[Tensor]:
        """Per sender id: the ids of the edges into that sender's node (none for embeddings)."""
        recv_sender = torch.tensor([self.index.sender_id.get(n, -1) for n, _ in self.receivers])
        return self._group_edges(recv_sender[self.edge_receiver])

    @functools.cached_property
    def edges_out_of(self) -> list[Tensor]:
        """Per sender id: the ids of the edges out of that sender's node."""
        return self._group_edges(self.edge_sender)

    def _group_edges(self, owner: Tensor) -> list[Tensor]:
        """Edge ids grouped by ``owner[e]`` (a sender id, or −1 for edges owned by none)."""
        order = torch.argsort(owner, stable=True)
        counts = torch.bincount(owner[owner >= 0], minlength=len(self.senders)).tolist()
        bounds = torch.tensor([0, *counts]).cumsum(0) + int((owner < 0).sum())
        return [order[int(a) : int(b)] for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class Ablation:
    """A_s for one batch chunk: {sender site: tensor broadcastable to the site's value}."""

    values: dict[Site, Tensor]


def check_inputs(model: Any, task: Any, ablation: str, batch_size: int) -> None:
    if ablation not in ABLATIONS:
        raise unknown_name("ablation", str(ablation), ABLATIONS)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive int, got {batch_size!r}")
    if task.seq_len > getattr(model.cfg, "n_ctx", task.seq_len):
        raise ShapeError(
            f"prompts have {task.seq_len} tokens, more than the model's context ({model.cfg.n_ctx})"
        )


def _sender_values(model: Any, layout: GraphLayout, tokens: Tensor) -> dict[Site, Tensor]:
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, list(layout.sender_sites))
    return {s: cache[s] for s in layout.sender_sites}


def ablation_sources(
    model: Any, layout: GraphLayout, task: Any, ablation: str, batch_size: int
) -> Callable[[Any], Ablation]:
    """A function chunk -> :class:`Ablation`. Mean ablation averages each sender's clean output
    over every prompt of ``task`` (one pass over the chunks, done here)."""
    if ablation == "resample":
        return lambda chunk: Ablation(_sender_values(model, layout, chunk.corrupted))
    if ablation == "zero":
        probe = _sender_values(model, layout, task.clean[:1])
        zeros = {s: torch.zeros_like(v) for s, v in probe.items()}
        return lambda chunk: Ablation(zeros)
    total: dict[Site, Tensor] = {}
    for chunk in task.chunks(batch_size):
        for s, v in _sender_values(model, layout, chunk.clean).items():
            total[s] = total.get(s, 0) + v.sum(0, keepdim=True)
    means = {s: v / len(task) for s, v in total.items()}
    return lambda chunk: Ablation(means)


def _hooks(
    layout: GraphLayout,
    abl: Ablation,
    record: dict[Site, Tensor],
    on_receiver: Callable[[Site, Tensor, Tensor], Tensor | None],
) -> dict:
    """Site hooks keeping live/abl running sums; ``on_receiver(site, x, abl - live)``."""
    state: dict[str, Any] = {"live": 0.0, "abl": 0.0}
    hooks: dict = {}
    for site in layout.sender_sites:

        def send(value: Tensor, site: Site = site) -> None:
            a = abl.values[site]
            per_head = value.dim() == 4
            state["live"] = state["live"] + (value.sum(2) if per_head else value)
            state["abl"] = state["abl"] + (a.sum(2) if per_head else a)
            record[site] = value
            return None

        hooks[site] = send
    for site in layout.receiver_cols:

        def receive(value: Tensor, site: Site = site) -> Tensor | None:
            return on_receiver(site, value, state["abl"] - state["live"])

        hooks[site] = receive
    return hooks


def _sender_diffs(layout: GraphLayout, abl: Ablation, record: dict[Site, Tensor]) -> Tensor:
    """[senders, b*p*d]: A_s - S_s of this run, flattened (one copy per sender site)."""
    first = next(iter(record.values()))
    n = first.shape[0] * first.shape[1] * first.shape[-1]
    out = torch.empty(len(layout.senders), n, dtype=first.dtype)
    for site, members in layout.sender_sites.items():
        value = record[site].detach()
        diff = abl.values[site].to(value.dtype) - value
        ids = [i for i, _ in members]
        if value.dim() == 4:  # [b, p, h, d] -> [h, b*p*d], heads in member order
            heads = [h for _, h in members]
            out[ids] = diff.permute(2, 0, 1, 3)[heads].reshape(len(heads), -1)
        else:
            out[ids[0]] = diff.reshape(-1)
    return out


def scored_logits(model: Any, chunk: Any) -> Tensor:
    """Logits of ``chunk.clean`` at its scored positions only, [b, n, v] (row i's j-th scored
    position at [i, j]). Models with ``scored_input`` (the Llama) skip the unembedding of the
    other positions; others run in full and select. Hooks fire as in a full run."""
    make = getattr(model, "scored_input", None)
    if make is None:
        return chunk.select(model.run(chunk.clean))
    return model.run(make(chunk.clean, chunk.positions))


def scored_view(chunk: Any) -> Any:
    """``chunk`` with its positions renumbered 0..n-1, so metrics built for it read the
    [b, n, v] outputs of :func:`scored_logits` directly."""
    import dataclasses

    b, n = chunk.positions.shape
    return dataclasses.replace(chunk, positions=torch.arange(n).expand(b, n).clone())


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def chunk_gradients(
    model: Any,
    layout: GraphLayout,
    chunk: Task,
    abl: Ablation,
    t: float,
    metric: Callable[[Tensor], Tensor],
) -> Tensor:
    """[senders, receivers]: (A_s - S_s) · dm/dx_r at strength t, summed over the chunk, where
    ``metric(logits [b, n, v])`` is the chunk's scalar metric m of the outputs at its scored
    positions (:func:`scored_logits`)."""
    record: dict[Site, Tensor] = {}
    inputs: dict[Site, Tensor] = {}

    def on_receiver(site: Site, value: Tensor, delta: Tensor) -> Tensor:
        y = value + t * (delta.unsqueeze(2) if value.dim() == 4 else delta)
        if y.requires_grad:
            y.retain_grad()
        else:  # nothing upstream needs grad (frozen weights, t = 0): y is a leaf
            y.requires_grad_(True)
        inputs[site] = y
        return y

    with torch.enable_grad(), model.hooks(_hooks(layout, abl, record, on_receiver)):
        metric(scored_logits(model, chunk)).backward()
    diffs = _sender_diffs(layout, abl, record)
    out = torch.zeros(len(layout.senders), len(layout.receivers), dtype=torch.float64)
    for site, cols in layout.receiver_cols.items():
        grad = inputs[site].grad
        if grad is None:
            continue
        if grad.dim() == 4:  # [b, p, h, d] -> [cols, b*p*d]
            g = grad.permute(2, 0, 1, 3)[[c for _, c in cols]].reshape(len(cols), -1)
        else:
            g = grad.reshape(1, -1)
        n_prev = layout.n_prev[site]  # only senders before the site can feed it
        out[:n_prev, [rid for rid, _ in cols]] = (diffs[:n_prev] @ g.T).double()
    return out


# ------------------------------------------------------------------ running with edges ablated
def run_ablated(
    model: Any,
    layout: GraphLayout,
    chunk: Any,
    abl: Ablation,
    strength: Tensor | None,
    scored: bool = False,
) -> Tensor:
    """Logits of ``chunk.clean`` with edge e ablated by ``strength[e]`` (0 keep .. 1 ablate;
    None = the clean run). Touches only the edges whose strength is not 0 (or not 1).
    ``scored=True`` returns only the scored positions' logits [b, n, v] (cheaper)."""
    run = (lambda: scored_logits(model, chunk)) if scored else (lambda: model.run(chunk.clean))
    if strength is None:
        with torch.no_grad():
            return run()
    if strength.shape != (len(layout),):
        raise ShapeError(
            f"edge strengths must have shape [{len(layout)}], got {tuple(strength.shape)}"
        )
    plan = _plan(layout, strength)
    record: dict[Site, Tensor] = {}
    dense = _DenseDiffs(layout, abl, record, plan)

    def on_receiver(site: Site, value: Tensor, delta: Tensor) -> Tensor | None:
        if site not in plan:
            return None
        mode, senders, coef = plan[site]
        if mode == "none":
            return None
        per_head = value.dim() == 4
        out = value
        if mode == "complement":
            out = value + (delta.unsqueeze(2) if per_head else delta)
        if len(senders) > DENSE_MIN_SENDERS:  # one matrix product beats stacking many senders
            add = dense.mix(site, value)
            return out - add if mode == "complement" else out + add
        if senders:
            diffs = torch.stack([_diff(layout, abl, record, s) for s in senders])  # [k, b, p, d]
            sign = -1.0 if mode == "complement" else 1.0
            if per_head:
                out = out + sign * torch.einsum("kbpd,kh->bphd", diffs, coef.to(diffs.dtype))
            else:
                out = out + sign * torch.einsum("kbpd,k->bpd", diffs, coef[:, 0].to(diffs.dtype))
        return out

    with torch.no_grad(), model.hooks(_hooks(layout, abl, record, on_receiver)):
        return run()


#: Above this many senders at a receiver site, a circuit run mixes the senders' differences with
#: one matrix product over a buffer of every sender's A_s - S_s (filled once per run) instead
#: of stacking them per site: a 20% circuit of SmolLM2 then costs about a plain forward.
DENSE_MIN_SENDERS = 8


class _DenseDiffs:
    """A_s - S_s of every sender computed so far in this run, as rows of one [senders, N]
    buffer (N = batch x pos x d_model), filled lazily site by site."""

    def __init__(
        self,
        layout: GraphLayout,
        abl: Ablation,
        record: dict[Site, Tensor],
        plan: dict[Site, tuple[str, list[int], Tensor]],
    ):
        self.layout, self.abl, self.record, self.plan = layout, abl, record, plan
        self.buf: Tensor | None = None
        self.filled: set[Site] = set()
        self.ready: dict[Site, Tensor] = {}  # computed with an earlier site of the same block
        self.visited: set[Site] = set()

    def _fill(self) -> Tensor:
        for site, members in self.layout.sender_sites.items():
            if site in self.filled or site not in self.record:
                continue
            value = self.record[site]
            if self.buf is None:
                n = value.shape[0] * value.shape[1] * value.shape[-1]
                self.buf = torch.empty(len(self.layout.senders), n, dtype=value.dtype)
            diff = self.abl.values[site].to(value.dtype) - value
            ids = [i for i, _ in members]
            if value.dim() == 4:  # [b, p, h, d] -> [h, b*p*d], heads in member order
                heads = [h for _, h in members]
                self.buf[ids] = diff.permute(2, 0, 1, 3)[heads].reshape(len(heads), -1)
            else:
                self.buf[ids[0]] = diff.expand_as(value).reshape(-1)
            self.filled.add(site)
        assert self.buf is not None
        return self.buf

    def mix(self, site: Site, value: Tensor) -> Tensor:
        """sum over the site's planned senders of coef[s, col] * (A_s - S_s), shaped like
        ``value``. Sites that read the same senders (a block's q, k and v inputs) are mixed in
        one matrix product, so the buffer is read once per block, not once per site."""
        self.visited.add(site)
        if site in self.ready:
            return self.ready.pop(site)
        buf = self._fill()
        n_prev = self.layout.n_prev[site]  # senders before the site: a view, never a copy
        group = [site] + [
            other
            for other, (mode, senders, _) in self.plan.items()
            if other not in self.visited
            and mode != "none"
            and len(senders) > DENSE_MIN_SENDERS
            and self.layout.n_prev[other] == n_prev
            and other.layer == site.layer
        ]
        blocks = []
        for g in group:
            _, senders, coef = self.plan[g]
            dense = torch.zeros(n_prev, coef.shape[1], dtype=buf.dtype)
            dense[torch.as_tensor(senders)] = coef.to(buf.dtype)
            blocks.append(dense)
        add = torch.cat(blocks, 1).T @ buf[:n_prev]  # [cols of the group, N]
        b, p, d = value.shape[0], value.shape[1], value.shape[-1]
        out, start = {}, 0
        for g, dense in zip(group, blocks):
            part = add[start : start + dense.shape[1]].view(-1, b, p, d)
            start += dense.shape[1]
            per_head = any(h is not None for _, h in self.layout.receiver_cols[g])
            out[g] = part.permute(1, 2, 0, 3) if per_head else part[0]
        for g in group[1:]:
            self.ready[g] = out[g]
        return out[site]


def _diff(layout: GraphLayout, abl: Ablation, record: dict[Site, Tensor], sender: int) -> Tensor:
    node = layout.senders[sender]
    site = sender_site(node)
    value = record[site]
    a = abl.values[site].to(value.dtype)
    if node.kind == "head":
        return (a[:, :, node.head] - value[:, :, node.head]).expand(value.shape[0], -1, -1)
    return (a - value).expand(value.shape[0], -1, -1)


def _plan(layout: GraphLayout, strength: Tensor) -> dict[Site, tuple[str, list[int], Tensor]]:
    """Per receiver site: "direct" (add a·(A - S) over edges with a != 0) or "complement"
    (ablate all, then put back (1 - a)·(A - S) over edges with a != 1), whichever is sparser."""
    plan = {}
    col_of = layout.edge_col
    for k, site in enumerate(layout.site_list):
        ids = layout.site_edges[k]
        a = strength[ids]
        n_direct, n_comp = int((a != 0).sum()), int((a != 1).sum())
        if n_direct == 0:
            continue
        mode = "direct" if n_direct <= n_comp else "complement"
        coef_all = a if mode == "direct" else 1.0 - a
        live = coef_all != 0
        ids, coef_all = ids[live], coef_all[live]
        senders, inv = torch.unique(layout.edge_sender[ids], return_inverse=True)
        coef = torch.zeros(len(senders), layout.site_cols[k])
        coef[inv, col_of[ids]] = coef_all.float()
        plan[site] = (mode, senders.tolist(), coef)
    return plan


class CircuitRunner:
    """Per-prompt metric values of ``task`` with edges ablated, over batch chunks.

    ``values(strength)`` -> [n_prompts] tensor of the task's per-prompt metric (mean over its
    scored positions); ``strength`` as in :func:`run_ablated`."""

    def __init__(
        self,
        model: Any,
        task: Any,
        ablation: str = "mean",
        batch_size: int = 8,
        layout: GraphLayout | None = None,
    ):
        check_inputs(model, task, ablation, batch_size)
        self.model, self.task, self.ablation = model, task, ablation
        self.layout = layout or GraphLayout(model)
        self.chunks = task.chunks(batch_size)
        source = ablation_sources(model, self.layout, task, ablation, batch_size)
        self._abl = [source(c) for c in self.chunks]
        self.forward = 0

    def values(self, strength: Tensor | None) -> Tensor:
        out = []
        for chunk, abl in zip(self.chunks, self._abl):
            at = run_ablated(self.model, self.layout, chunk, abl, strength, scored=True)
            out.append(chunk.logit_diffs_at(at).mean(1))
            self.forward += 1
        return torch.cat(out)

    def keep(self, edges: Sequence[int]) -> Tensor:
        """Per-prompt metric keeping only edge ids ``edges`` (all others ablated)."""
        strength = torch.ones(len(self.layout))
        strength[list(edges)] = 0.0
        return self.values(strength)


def patch_nodes_full(
    model: Any,
    task: Any,
    *,
    ablation: str = "mean",
    batch_size: int = 8,
    progress: bool = False,
    runner: CircuitRunner | None = None,
) -> NodeScores:
    """Node-level activation patching: |m(node's outputs ablated for every reader) - m(clean)|
    for each head and MLP (one forward per node and chunk)."""
    start = time.perf_counter()
    runner = runner or CircuitRunner(model, task, ablation, batch_size)
    layout = runner.layout
    base = float(runner.values(None).mean())
    nodes = [n for n in layout.senders if n.kind in ("head", "mlp")]
    scores = {}
    bar = progress_bar(len(nodes), f"patch nodes [{ablation}]", progress)
    for node in nodes:
        strength = (layout.edge_sender == layout.index.sender_id[node]).float()
        scores[node] = abs(float(runner.values(strength).mean()) - base)
        bar.update(1)
    bar.close()
    return NodeScores(
        scores,
        "patch_nodes",
        ablation,
        "logit_diff",
        cost=Cost(forward=runner.forward),
        seconds=time.perf_counter() - start,
    )
