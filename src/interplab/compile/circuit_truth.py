"""The designed circuit of a compiled model: which component reads what from which.

Pass:
    blocks_to_circuit(graph, allocation, blocks) -> (designed Circuit, {Edge: reads})

An edge (sender -> receiver, channel) exists where the receiver's weights read a direction the
sender writes: a head reads its queries on ``q``, its keys on ``k``, what it aggregates on ``v``
(plus ``one``/``bos`` from the token embedding for the BOS fallback); an MLP reads its inputs on
``in``; the logits read the output variable. This is the program's dataflow as the compiler laid
it out; it uses no data. Which of these edges matter under each ablation is derived from the RASP
program in :mod:`interplab.compile.dataflow_truth`.
"""

from __future__ import annotations

from collections.abc import Sequence

from interplab.compile.blocks import Block, HeadBlock
from interplab.compile.dataflow_truth import LOGITS, Read
from interplab.compile.graph import Allocation, ProgramGraph
from interplab.compile.residual_basis import BOS, ONE
from interplab.core.circuit import Edge, Node


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


def structural_edges(
    graph: ProgramGraph, allocation: Allocation, blocks: Sequence[Block]
) -> list[Edge]:
    """Every edge whose receiver's weights read something its sender writes (the designed circuit)."""
    return sorted(edge_reads(graph, allocation, blocks))


def edge_reads(
    graph: ProgramGraph, allocation: Allocation, blocks: Sequence[Block]
) -> dict[Edge, tuple[Read, ...]]:
    """Each designed edge with the reads it carries: which label the receiving block computes,
    which variable it reads from that sender and in which role (q/k/v of a head, in of an MLP)."""
    out: dict[Edge, set[Read]] = {}

    def add(sender: Node, receiver: Node, channel: str, read: Read) -> None:
        out.setdefault(Edge(sender, receiver, channel), set()).add(read)

    for b in blocks:
        if isinstance(b, HeadBlock):
            node = Node.attn_head(b.layer, b.head)
            for ch, labels in (("q", b.q_reads), ("k", b.k_reads), ("v", b.v_reads)):
                for lab in labels:
                    add(producer(lab, allocation), node, ch, Read(b.label, lab, ch))
        else:
            for lab in b.reads:
                add(producer(lab, allocation), Node.mlp(b.layer), "in", Read(b.label, lab, "in"))
    out_label = graph.output.label
    add(producer(out_label, allocation), Node.logits(), "in", Read(LOGITS, out_label, "in"))
    return {e: tuple(sorted(v)) for e, v in sorted(out.items())}


def blocks_to_circuit(
    graph: ProgramGraph, allocation: Allocation, blocks: Sequence[Block]
) -> tuple[list[Edge], dict[Edge, tuple[Read, ...]]]:
    """The designed edges and the reads each carries."""
    reads = edge_reads(graph, allocation, blocks)
    return sorted(reads), reads
