"""Where each node of the circuit graph lives in a native transformer, and edge indexing.

Senders write to the residual stream (sites with shapes [b, p, d] after selecting a head):

    tok_embed  -> Site(EMBED)            pos_embed -> Site(POS_EMBED)
    head L.H   -> Site(ATTN_RESULT, L) [:, :, H]       mlp L -> Site(MLP_OUT, L)

Receivers read it: head L.H on channel q/k/v -> Site(ATTN_{Q,K,V}_IN, L) [:, :, H];
mlp L -> Site(MLP_IN, L); logits -> Site(UNEMBED_IN).

:class:`EdgeIndex` numbers the senders (in forward order) and the edges of a graph, and groups
the edges by receiver site so a patched run can add every edge's correction in one einsum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.core.circuit import Circuit, Edge, Node, full_graph
from interplab.core.sites import Component, Site
from interplab.errors import ConfigError, ShapeError

C = Component
_CHANNEL_SITE = {"q": C.ATTN_Q_IN, "k": C.ATTN_K_IN, "v": C.ATTN_V_IN}


def sender_site(node: Node) -> Site:
    """The whole-layer site holding ``node``'s output (heads share their layer's site)."""
    if node.kind == "tok_embed":
        return Site(C.EMBED)
    if node.kind == "pos_embed":
        return Site(C.POS_EMBED)
    if node.kind == "head":
        return Site(C.ATTN_RESULT, node.layer)
    if node.kind == "mlp":
        return Site(C.MLP_OUT, node.layer)
    raise ConfigError(f"{node} sends nothing (only embeddings, heads and MLPs write)")


def receiver_site(node: Node, channel: str) -> Site:
    """The whole-layer site holding ``node``'s input on ``channel``."""
    if node.kind == "head":
        return Site(_CHANNEL_SITE[channel], node.layer)
    if node.kind == "mlp":
        return Site(C.MLP_IN, node.layer)
    if node.kind == "logits":
        return Site(C.UNEMBED_IN)
    raise ConfigError(f"{node} receives nothing (embeddings are inputs)")


def model_graph(model) -> Circuit:
    """The full edge graph of a native transformer (``model.cfg`` is its TransformerConfig)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise ConfigError(
            f"circuit discovery needs a native transformer with a .cfg, got "
            f"{type(model).__name__}; wrap compiled models with their HookedTransformer"
        )
    # native transformers say attn_only / positional; Llamas have MLPs and rotary positions
    return full_graph(
        cfg.n_layers,
        cfg.n_heads,
        has_mlp=not getattr(cfg, "attn_only", False),
        has_pos_embed=getattr(cfg, "positional", None) == "learned",
    )


@dataclass(frozen=True)
class ReceiverGroup:
    """The edges read at one receiver site. ``rows`` index senders, ``cols`` heads (0 for
    sites without a head axis); ``n_prev`` senders precede the site in the forward."""

    site: Site
    edge_ids: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    n_prev: int
    n_cols: int
    per_head: bool


def _head(node: Node) -> int:
    """The head of a per-head receiver (every per-head node has one)."""
    if node.head is None:
        raise ShapeError(f"{node} reads a per-head input but names no head")
    return node.head


class EdgeIndex:
    """Numbering of senders and edges of ``graph`` (a subgraph of the model's full graph)."""

    def __init__(self, graph: Circuit):
        self.graph = graph
        self.edges: tuple[Edge, ...] = tuple(sorted(graph.edges, key=_edge_order))
        self.edge_id = {e: i for i, e in enumerate(self.edges)}
        senders = {e.sender for e in self.edges}
        self.senders: tuple[Node, ...] = tuple(sorted(senders, key=lambda n: n.order))
        self.sender_id = {n: i for i, n in enumerate(self.senders)}
        self.receivers: tuple[Node, ...] = tuple(
            sorted({e.receiver for e in self.edges}, key=lambda n: n.order)
        )
        by_site: dict[Site, list[Edge]] = {}
        for e in self.edges:
            by_site.setdefault(receiver_site(e.receiver, e.channel), []).append(e)
        groups = []
        for site, edges in by_site.items():
            per_head = site.component in _CHANNEL_SITE.values()
            rows = [self.sender_id[e.sender] for e in edges]
            cols = [_head(e.receiver) if per_head else 0 for e in edges]
            groups.append(
                ReceiverGroup(
                    site,
                    torch.tensor([self.edge_id[e] for e in edges]),
                    torch.tensor(rows),
                    torch.tensor(cols),
                    max(rows) + 1,
                    max(cols) + 1,
                    per_head,
                )
            )
        self.groups: tuple[ReceiverGroup, ...] = tuple(groups)
        self.sender_sites: dict[Site, list[tuple[int, int | None]]] = {}
        for i, n in enumerate(self.senders):
            self.sender_sites.setdefault(sender_site(n), []).append((i, n.head))

    def __len__(self) -> int:
        return len(self.edges)

    def mask(self, edges, value: float = 1.0) -> torch.Tensor:
        """[n_edges] tensor with ``value`` at ``edges`` and ``1 - value`` elsewhere."""
        out = torch.full((len(self.edges),), 1.0 - value)
        for e in edges:
            out[self.edge_id[e]] = value
        return out

    def outgoing(self, node: Node) -> list[int]:
        return [i for i, e in enumerate(self.edges) if e.sender == node]


def _edge_order(e: Edge) -> tuple:
    return (e.receiver.order, e.channel, e.sender.order)
