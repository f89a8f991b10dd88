"""The true circuit of a compiled model, with the ablation types under which each edge matters.

Pass:
    blocks_to_circuit(graph, allocation, blocks, weights, vocab, pairs) -> Circuit

Structure: an edge (sender -> receiver, channel) exists where the receiver's weights read a
direction the sender writes: a head reads its queries on ``q``, its keys on ``k``, what it
aggregates on ``v`` (plus ``one``/``bos`` from the token embedding for the BOS fallback); an MLP
reads its inputs on ``in``; the logits read the output variable.

Which ablations matter is *measured*, on task data ``pairs`` of (clean, corrupted) inputs of
equal length: the edge alone is ablated in the compiled weights (the receiver reads, from that
sender only, zeros / the per-position mean over clean inputs of that length / the sender's output
on the corrupted input), and the edge matters under that ablation when the decoded output changes
on some input. So position edges and BOS edges matter under zero ablation but not under resample
or mean ablation when clean and corrupted inputs share positions, and an edge whose variable is
the same on clean and corrupted inputs (e.g. ``length``) does not matter under resample ablation.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from interplab.compile.assemble import BOS_ID, Weights
from interplab.compile.bases import BOS, ONE
from interplab.compile.blocks import Block, HeadBlock
from interplab.compile.graph import Allocation, ProgramGraph
from interplab.core.circuit import ABLATIONS, Circuit, Edge, Node

Tensor = torch.Tensor
EdgeKey = tuple[Node, Node, str]


def producer(label: str, allocation: Allocation) -> Node:
    """The component whose output holds ``label`` (``one``/``bos``: the token embedding)."""
    if label in (ONE, BOS):
        return Node.tok_embed()
    p = allocation.placements[label.split(":")[0]]
    if p.kind in ("tok_embed", "pos_embed"):
        return Node(p.kind)
    if label.endswith(":bos_weight") or p.kind == "head":
        return Node.attn_head(p.layer, p.head)  # type: ignore[arg-type]
    return Node.mlp(p.layer)  # type: ignore[arg-type]


def structural_edges(graph: ProgramGraph, allocation: Allocation, blocks: Sequence[Block]) -> list[Edge]:
    """Every edge whose receiver's weights read something its sender writes."""
    keys: set[EdgeKey] = set()
    for b in blocks:
        if isinstance(b, HeadBlock):
            node = Node.attn_head(b.layer, b.head)
            for ch, labels in (("q", b.q_reads), ("k", b.k_reads), ("v", b.v_reads)):
                keys.update((producer(lab, allocation), node, ch) for lab in labels)
        else:
            keys.update((producer(lab, allocation), Node.mlp(b.layer), "in") for lab in b.reads)
    keys.add((producer(graph.output.label, allocation), Node.logits(), "in"))
    return sorted(Edge(s, r, ch) for s, r, ch in keys)


def blocks_to_circuit(graph: ProgramGraph, allocation: Allocation, blocks: Sequence[Block],
                      weights: Weights, vocab: Sequence[Any],
                      pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> Circuit:
    """The true circuit: structural edges, each flagged with the ablations under which it matters."""
    edges = structural_edges(graph, allocation, blocks)
    flags = measure_edge_ablations(weights, vocab, pairs, edges)
    kept = [e for e in edges if flags[e]]
    return Circuit.from_edges(kept, name=f"{graph.output.label} (compiled ground truth)",
                              edge_ablations={e: flags[e] for e in kept})


def measure_edge_ablations(weights: Weights, vocab: Sequence[Any],
                           pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]],
                           edges: Sequence[Edge]) -> dict[Edge, frozenset[str]]:
    """For each edge, the ablation types under which ablating it alone changes some output."""
    ids = {repr(v): i + 1 for i, v in enumerate(vocab)}
    by_length: dict[int, list[tuple[list[int], list[int]]]] = {}
    for clean, corrupt in pairs:
        if len(clean) != len(corrupt) or not clean:
            continue
        by_length.setdefault(len(clean), []).append(
            ([BOS_ID] + [ids[repr(v)] for v in clean], [BOS_ID] + [ids[repr(v)] for v in corrupt]))
    found: dict[Edge, set[str]] = {e: set() for e in edges}
    with torch.no_grad():
        for rows in by_length.values():
            clean = torch.tensor([r[0] for r in rows])
            corrupt = torch.tensor([r[1] for r in rows])
            for ablation in ABLATIONS:
                todo = [e for e in edges if ablation not in found[e]]
                if todo:
                    for e in _changed(weights, clean, corrupt, ablation, todo):
                        found[e].add(ablation)
    return {e: frozenset(v) for e, v in found.items()}


def _changed(weights: Weights, clean: Tensor, corrupt: Tensor, ablation: str,
             edges: Sequence[Edge]) -> list[Edge]:
    """Edges whose single ablation changes the decoded output of some clean input."""
    n, E = clean.shape[0], len(edges)
    base, _ = edge_forward(weights, clean)
    if ablation == "resample":
        _, source = edge_forward(weights, corrupt)
    else:
        source = {k: (torch.zeros_like(v) if ablation == "zero" else v.mean(0, keepdim=True).expand_as(v))
                  for k, v in _outputs_cache(weights, clean).items()}
    tiled = clean.repeat(E, 1)
    source = {k: v.repeat(E, 1, 1) for k, v in source.items()}
    masks = {}
    for i, e in enumerate(edges):
        m = torch.zeros(E * n, dtype=torch.bool)
        m[i * n:(i + 1) * n] = True
        masks[(e.sender, e.receiver, e.channel)] = m
    logits, _ = edge_forward(weights, tiled, masks, source)
    diff = _output_differs(weights, base.repeat(E, 1, 1), logits).view(E, n)
    return [e for i, e in enumerate(edges) if bool(diff[i].any())]


def _outputs_cache(weights: Weights, tokens: Tensor) -> dict[Node, Tensor]:
    return edge_forward(weights, tokens)[1]


def _output_differs(weights: Weights, a: Tensor, b: Tensor) -> Tensor:
    """[batch] True where decoded outputs differ at some input position."""
    a, b = a[:, 1:], b[:, 1:]
    if weights.output_values is None:
        return ((a - b).abs() > 1e-3).flatten(1).any(1)
    da = torch.where(a.max(-1).values > 0.5, a.argmax(-1), -1)
    db = torch.where(b.max(-1).values > 0.5, b.argmax(-1), -1)
    return (da != db).any(1)


def edge_forward(weights: Weights, tokens: Tensor, masks: dict[EdgeKey, Tensor] | None = None,
                 source: dict[Node, Tensor] | None = None) -> tuple[Tensor, dict[Node, Tensor]]:
    """Forward pass over the edge graph of a compiled (no-LayerNorm) model.

    Each receiver's input on each channel is the sum of every earlier sender's output; where
    ``masks[(sender, receiver, channel)]`` [batch] is True, ``source[sender]`` [batch, pos, d]
    replaces that sender's output in that input only. Returns (logits [batch, pos, vocab_out],
    outputs {node: [batch, pos, d]})."""
    sd, cfg = weights.state_dict, weights.cfg
    masks = masks or {}
    P = tokens.shape[1]
    out: dict[Node, Tensor] = {Node.tok_embed(): sd["embed.W_E"][tokens],
                               Node.pos_embed(): sd["pos_embed.W_pos"][:P].expand(tokens.shape[0], P, -1)}

    def read(receiver: Node, channel: str) -> Tensor:
        total = None
        for sender, value in out.items():
            m = masks.get((sender, receiver, channel))
            if m is not None:
                value = torch.where(m[:, None, None], source[sender], value)  # type: ignore[index]
            total = value if total is None else total + value
        return total  # type: ignore[return-value]

    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        new = {}
        for h in range(cfg.n_heads):
            node = Node.attn_head(layer, h)
            q = read(node, "q") @ sd[p + "attn.W_Q"][h] + sd[p + "attn.b_Q"][h]
            k = read(node, "k") @ sd[p + "attn.W_K"][h] + sd[p + "attn.b_K"][h]
            v = read(node, "v") @ sd[p + "attn.W_V"][h] + sd[p + "attn.b_V"][h]
            pattern = (q @ k.transpose(1, 2) / cfg.scale).softmax(-1)
            new[node] = (pattern @ v) @ sd[p + "attn.W_O"][h]
        out.update(new)
        node = Node.mlp(layer)
        hidden = torch.relu(read(node, "in") @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
        out[node] = hidden @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
    logits = read(Node.logits(), "in") @ sd["unembed.W_U"] + sd["unembed.b_U"]
    return logits, out
