"""The circuit graph: nodes are model components, edges say which component reads which output.

A transformer's residual stream is a sum of component outputs, so every later component reads
every earlier one. An *edge* (sender -> receiver, channel) is one such read: the receiver's
input on ``channel`` ("q", "k", "v" for attention heads, "in" for MLPs and the unembedding).
A *circuit* is a subset of nodes and edges of that full graph.

The compiler's ground truth, the trained organisms' ground truth and every circuit-discovery
method produce a :class:`Circuit`; ``interplab.eval`` compares them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from interplab.errors import ConfigError

NODE_KINDS = ("tok_embed", "pos_embed", "head", "mlp", "logits")
CHANNELS = ("q", "k", "v", "in")
ABLATIONS = ("zero", "mean", "resample")


@dataclass(frozen=True, order=True)
class Node:
    """One component. ``layer``/``head`` are set only where they apply (head: both; mlp: layer)."""

    kind: str
    layer: int | None = None
    head: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in NODE_KINDS:
            raise ConfigError(f"node kind must be one of {NODE_KINDS}, got {self.kind!r}")
        needs_layer = self.kind in ("head", "mlp")
        if needs_layer and self.layer is None:
            raise ConfigError(f"a {self.kind} node needs a layer")
        if self.kind == "head" and self.head is None:
            raise ConfigError("a head node needs a head index")
        if self.kind != "head" and self.head is not None:
            raise ConfigError(f"a {self.kind} node has no head index (got head={self.head})")
        if not needs_layer and self.layer is not None:
            raise ConfigError(f"a {self.kind} node has no layer (got layer={self.layer})")

    @staticmethod
    def tok_embed() -> Node:
        return Node("tok_embed")

    @staticmethod
    def pos_embed() -> Node:
        return Node("pos_embed")

    @staticmethod
    def attn_head(layer: int, head: int) -> Node:
        return Node("head", layer, head)

    @staticmethod
    def mlp(layer: int) -> Node:
        return Node("mlp", layer)

    @staticmethod
    def logits() -> Node:
        return Node("logits")

    @property
    def order(self) -> tuple[float, int]:
        """Topological position: (layer + sublayer, head). Embeddings first, logits last."""
        if self.kind in ("tok_embed", "pos_embed"):
            return (-1.0, 0 if self.kind == "tok_embed" else 1)
        if self.kind == "head":
            assert self.layer is not None and self.head is not None  # checked in __post_init__
            return (float(self.layer), self.head)
        if self.kind == "mlp":
            assert self.layer is not None  # checked in __post_init__
            return (float(self.layer) + 0.5, 0)
        return (float("inf"), 0)

    @property
    def channels(self) -> tuple[str, ...]:
        """Input channels of this node as a receiver (empty for embeddings)."""
        if self.kind == "head":
            return ("q", "k", "v")
        if self.kind in ("mlp", "logits"):
            return ("in",)
        return ()

    def __str__(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}.H{self.head}"
        if self.kind == "mlp":
            return f"L{self.layer}.MLP"
        return {"tok_embed": "tokens", "pos_embed": "positions", "logits": "logits"}[self.kind]


@dataclass(frozen=True, order=True)
class Edge:
    """``sender``'s output is read by ``receiver`` on ``channel``."""

    sender: Node
    receiver: Node
    channel: str = "in"

    def __post_init__(self) -> None:
        if self.channel not in self.receiver.channels:
            raise ConfigError(
                f"{self.receiver} reads on channels {self.receiver.channels}, not {self.channel!r}"
            )
        if not self.sender.order < self.receiver.order or self.sender.kind == "logits":
            raise ConfigError(f"edge {self.sender} -> {self.receiver} goes backwards in the model")

    def __str__(self) -> str:
        suffix = f"[{self.channel}]" if self.channel != "in" else ""
        return f"{self.sender}->{self.receiver}{suffix}"


@dataclass(frozen=True)
class Circuit:
    """A set of nodes and edges. ``edge_ablations`` optionally records, for each edge, under
    which ablation types (``"zero"``, ``"mean"``, ``"resample"``) removing it changes the output;
    an edge absent from that mapping matters under every ablation type."""

    nodes: frozenset[Node]
    edges: frozenset[Edge]
    edge_ablations: Mapping[Edge, frozenset[str]] = field(default_factory=dict)
    name: str = ""

    @staticmethod
    def from_edges(
        edges: Iterable[Edge],
        name: str = "",
        edge_ablations: Mapping[Edge, Iterable[str]] | None = None,
    ) -> Circuit:
        edges = frozenset(edges)
        nodes = frozenset(n for e in edges for n in (e.sender, e.receiver))
        abl = {e: frozenset(v) for e, v in (edge_ablations or {}).items()}
        return Circuit(nodes, edges, abl, name)

    def for_ablation(self, ablation: str) -> Circuit:
        """The circuit whose edges matter under ``ablation`` (nodes follow the kept edges)."""
        if ablation not in ABLATIONS:
            raise ConfigError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
        kept = [e for e in self.edges if ablation in self.edge_ablations.get(e, ABLATIONS)]
        return Circuit.from_edges(
            kept,
            name=f"{self.name}[{ablation}]" if self.name else "",
            edge_ablations={e: self.edge_ablations[e] for e in kept if e in self.edge_ablations},
        )

    def __contains__(self, item: object) -> bool:
        return item in self.edges or item in self.nodes

    def __iter__(self) -> Iterator[Edge]:
        return iter(sorted(self.edges))

    def __len__(self) -> int:
        return len(self.edges)

    def to_json(self) -> dict:
        def node(n: Node) -> dict:
            return {k: v for k, v in dataclasses.asdict(n).items() if v is not None}

        return {
            "name": self.name,
            "nodes": [node(n) for n in sorted(self.nodes)],
            "edges": [
                {
                    "sender": node(e.sender),
                    "receiver": node(e.receiver),
                    "channel": e.channel,
                    **(
                        {"ablations": sorted(self.edge_ablations[e])}
                        if e in self.edge_ablations
                        else {}
                    ),
                }
                for e in sorted(self.edges)
            ],
        }

    @staticmethod
    def from_json(data: Mapping) -> Circuit:
        edges, abl = [], {}
        for row in data["edges"]:
            e = Edge(Node(**row["sender"]), Node(**row["receiver"]), row.get("channel", "in"))
            edges.append(e)
            if "ablations" in row:
                abl[e] = frozenset(row["ablations"])
        circuit = Circuit.from_edges(edges, data.get("name", ""), abl)
        extra = frozenset(Node(**n) for n in data.get("nodes", []))
        return dataclasses.replace(circuit, nodes=circuit.nodes | extra)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def full_graph(
    n_layers: int,
    n_heads: int,
    *,
    has_mlp: bool = True,
    has_pos_embed: bool = True,
    split_qkv: bool = True,
) -> Circuit:
    """Every edge a standard transformer has: each sender before each receiver.

    With ``split_qkv`` (the default) an attention head receives on three channels (q, k, v);
    ``split_qkv=False`` keeps only the ``v`` channel, a coarser graph for quick sweeps."""
    senders = [Node.tok_embed()] + ([Node.pos_embed()] if has_pos_embed else [])
    edges: list[Edge] = []
    for layer in range(n_layers):
        heads = [Node.attn_head(layer, h) for h in range(n_heads)]
        for receiver in heads:
            for ch in ("q", "k", "v") if split_qkv else ("v",):
                edges += [Edge(s, receiver, ch) for s in senders]
        senders = senders + heads
        if has_mlp:
            mlp = Node.mlp(layer)
            edges += [Edge(s, mlp, "in") for s in senders]
            senders = senders + [mlp]
    edges += [Edge(s, Node.logits(), "in") for s in senders]
    return Circuit.from_edges(edges, name="full")
