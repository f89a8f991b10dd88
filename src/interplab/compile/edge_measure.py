"""Single-edge ablations measured in a compiled model's weights — a *check* of the ground truth.

    measure_edge_ablations(weights, vocab, pairs, edges) -> {edge: ablations under which it matters}

Each edge alone is ablated in the compiled weights (the receiver reads, from that sender only,
zeros / the per-position mean over clean inputs of that length / the sender's output on the
corrupted input), and the edge matters under that ablation when the decoded output changes on
some input. This is what edge-patching methods compute, so it never *defines* the truth a
method is scored against: tests use it on pairs of their own to verify the truth derived from
the RASP program (:mod:`interplab.compile.dataflow_truth`), and users may use it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from interplab.compile.assemble import BOS_ID, Weights
from interplab.core.circuit import ABLATIONS, Circuit, Edge, Node

Tensor = torch.Tensor
EdgeKey = tuple[Node, Node, str]


def measure_circuit(
    model: Any, pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]], name: str | None = None
) -> Circuit:
    """The edges of a compiled model that single-edge ablations in its weights show to matter on
    ``pairs`` (clean, corrupted inputs of equal length), flagged per ablation.

    A check, not a ground truth to score methods against: it computes what edge patching
    computes. Use pairs disjoint from any scoring pairs. ``model`` is a
    :class:`~interplab.compile.compiled.CompiledModel`; its designed circuit (``structure``)
    gives the candidate edges."""
    truth = model.ground_truth
    if truth.structure is None:
        from interplab.core.circuit import full_graph

        cfg = model.cfg
        candidates = sorted(full_graph(cfg.n_layers, cfg.n_heads).edges)
    else:
        candidates = sorted(truth.structure.edges)
    weights = Weights(model.cfg, model.model.state_dict(), {}, model.output_values)
    with torch.no_grad():
        flags = measure_edge_ablations(weights, truth.vocab, pairs, candidates)
    kept = [e for e in candidates if flags[e]]
    return Circuit.from_edges(
        kept,
        name=name or f"{truth.output} (measured on {len(pairs)} pairs)",
        edge_ablations={e: flags[e] for e in kept},
    )


def measure_edge_ablations(
    weights: Weights,
    vocab: Sequence[Any],
    pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    edges: Sequence[Edge],
) -> dict[Edge, frozenset[str]]:
    """For each edge, the ablation types under which ablating it alone changes some output."""
    ids = {repr(v): i + 1 for i, v in enumerate(vocab)}
    rows = list(
        {
            repr((list(c), list(x))): (c, x) for c, x in pairs if len(c) == len(x) and len(c) > 0
        }.values()
    )
    found: dict[Edge, set[str]] = {e: set() for e in edges}
    if not rows:
        return {e: frozenset() for e in edges}
    P = 1 + max(len(c) for c, _ in rows)
    pad = lambda xs: [BOS_ID] + [ids[repr(v)] for v in xs] + [BOS_ID] * (P - 1 - len(xs))  # noqa: E731
    clean = torch.tensor([pad(c) for c, _ in rows])
    corrupt = torch.tensor([pad(x) for _, x in rows])
    lengths = torch.tensor([len(c) for c, _ in rows])
    valid = torch.arange(P)[None, :] <= lengths[:, None]  # [batch, pos]: BOS and the input
    with torch.no_grad():
        base, clean_out = edge_forward(weights, clean, valid)
        _, corrupt_out = edge_forward(weights, corrupt, valid)
        sources = {
            "zero": {k: torch.zeros_like(v) for k, v in clean_out.items()},
            "mean": {k: _mean_per_length(v, lengths) for k, v in clean_out.items()},
            "resample": corrupt_out,
        }
        for ablation in ABLATIONS:
            # a few rows settle most edges; only the edges still unchanged see every row
            for rows_used in (slice(0, 8), slice(None)):
                todo = [e for e in edges if ablation not in found[e]]
                if not todo:
                    break
                source = {k: v[rows_used] for k, v in sources[ablation].items()}
                before = {k: v[rows_used] for k, v in clean_out.items()}
                for e in _changed(
                    weights,
                    clean[rows_used],
                    valid[rows_used],
                    base[rows_used],
                    before,
                    source,
                    todo,
                ):
                    found[e].add(ablation)
    return {e: frozenset(v) for e, v in found.items()}


def _mean_per_length(value: Tensor, lengths: Tensor) -> Tensor:
    """Per-position mean over the inputs of the same length (mean ablation on a batch of one
    length): [batch, pos, d] -> [batch, pos, d]."""
    out = torch.empty_like(value)
    for n in lengths.unique():
        rows = lengths == n
        out[rows] = value[rows].mean(0, keepdim=True)
    return out


def _changed(
    weights: Weights,
    clean: Tensor,
    valid: Tensor,
    base: Tensor,
    clean_out: dict[Node, Tensor],
    source: dict[Node, Tensor],
    edges: Sequence[Edge],
) -> list[Edge]:
    """Edges whose single ablation (reading ``source`` from the sender) changes some output.

    Edges are grouped by their receiver's layer; each group's forward reuses the clean outputs
    of every earlier layer, which an ablation there cannot change."""
    n, L = clean.shape[0], weights.cfg.n_layers
    groups: dict[int, list[Edge]] = {}
    for e in edges:
        groups.setdefault(L if e.receiver.layer is None else e.receiver.layer, []).append(e)
    changed = []
    for layer, group in sorted(groups.items()):
        E = len(group)
        masks = {}
        for i, e in enumerate(group):
            m = torch.zeros(E * n, dtype=torch.bool)
            m[i * n : (i + 1) * n] = True
            masks[(e.sender, e.receiver, e.channel)] = m
        senders = {e.sender for e in group}
        tiled_source = {k: v.repeat(E, 1, 1) for k, v in source.items() if k in senders}
        prefix = {
            k: v.repeat(E, 1, 1) for k, v in clean_out.items() if k.layer is None or k.layer < layer
        }
        logits, _ = edge_forward(
            weights,
            clean.repeat(E, 1),
            valid.repeat(E, 1),
            masks,
            tiled_source,
            start_layer=layer,
            prefix=prefix,
        )
        diff = _output_differs(weights, base.repeat(E, 1, 1), logits, valid.repeat(E, 1)).view(E, n)
        changed += [e for i, e in enumerate(group) if bool(diff[i].any())]
    return changed


def _output_differs(weights: Weights, a: Tensor, b: Tensor, valid: Tensor) -> Tensor:
    """[batch] True where decoded outputs differ at some input position."""
    a, b, valid = a[:, 1:], b[:, 1:], valid[:, 1:]
    if weights.output_values is None:
        return (((a - b).abs() > 1e-3).any(-1) & valid).any(1)
    da = torch.where(a.max(-1).values > 0.5, a.argmax(-1), -1)
    db = torch.where(b.max(-1).values > 0.5, b.argmax(-1), -1)
    return ((da != db) & valid).any(1)


def edge_forward(
    weights: Weights,
    tokens: Tensor,
    valid: Tensor | None = None,
    masks: dict[EdgeKey, Tensor] | None = None,
    source: dict[Node, Tensor] | None = None,
    *,
    start_layer: int = 0,
    prefix: dict[Node, Tensor] | None = None,
) -> tuple[Tensor, dict[Node, Tensor]]:
    """Forward pass over the edge graph of a compiled (no-LayerNorm) model.

    Each receiver's input on each channel is the sum of every earlier sender's output; where
    ``masks[(sender, receiver, channel)]`` [batch] is True, ``source[sender]`` [batch, pos, d]
    replaces that sender's output in that input only. ``valid`` [batch, pos] marks the key
    positions each row may attend to (rows of different lengths padded at the end); a causal
    model (``cfg.attention == "causal"``) also masks every key after the query. With
    ``start_layer``, the outputs of the embeddings and of layers before it are taken from
    ``prefix`` instead of being recomputed. Returns (logits [batch, pos, vocab_out], outputs
    {node: [batch, pos, d]})."""
    sd, cfg = weights.state_dict, weights.cfg
    masks = masks or {}
    P = tokens.shape[1]
    if prefix is not None:
        out: dict[Node, Tensor] = dict(prefix)
    else:
        out = {
            Node.tok_embed(): sd["embed.W_E"][tokens],
            Node.pos_embed(): sd["pos_embed.W_pos"][:P].expand(tokens.shape[0], P, -1),
        }

    by_receiver: dict[tuple[Node, str], list[tuple[Node, Tensor]]] = {}
    for (sender, receiver, channel), m in masks.items():
        by_receiver.setdefault((receiver, channel), []).append((sender, m[:, None, None]))
    resid = cast(Tensor, sum(out.values()))  # out holds at least the embeddings

    def read(receiver: Node, channel: str) -> Tensor:
        x = resid
        for sender, m in by_receiver.get((receiver, channel), ()):
            x = x + torch.where(m, source[sender] - out[sender], 0.0)  # type: ignore[index]
        return x

    later = torch.ones(P, P, dtype=torch.bool).triu(1)  # [query, key]: key after the query
    for layer in range(start_layer if prefix is not None else 0, cfg.n_layers):
        p = f"blocks.{layer}."
        new = {}
        for h in range(cfg.n_heads):
            node = Node.attn_head(layer, h)
            q = read(node, "q") @ sd[p + "attn.W_Q"][h] + sd[p + "attn.b_Q"][h]
            k = read(node, "k") @ sd[p + "attn.W_K"][h] + sd[p + "attn.b_K"][h]
            v = read(node, "v") @ sd[p + "attn.W_V"][h] + sd[p + "attn.b_V"][h]
            scores = q @ k.transpose(1, 2) / cfg.scale
            if valid is not None:
                scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
            if cfg.attention == "causal":
                scores = scores.masked_fill(later, float("-inf"))
            pattern = scores.softmax(-1)
            new[node] = (pattern @ v) @ sd[p + "attn.W_O"][h]
        out.update(new)
        resid = resid + sum(new.values())
        node = Node.mlp(layer)
        hidden = torch.relu(read(node, "in") @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
        out[node] = hidden @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
        resid = resid + out[node]
    logits = read(Node.logits(), "in") @ sd["unembed.W_U"] + sd["unembed.b_U"]
    return logits, out
