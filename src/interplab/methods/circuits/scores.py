"""Results of circuit-discovery methods: scores over edges or nodes, and the passes they used
(``result.cost.forward`` / ``.backward``, each pass over the whole task batch or one chunk of it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interplab.core.circuit import Circuit, Edge, Node
from interplab.errors import ConfigError
from interplab.methods.base import Result


def _top(scores: Mapping, threshold: float | None, top_k: int | None) -> list:
    if (threshold is None) == (top_k is None):
        raise ConfigError(
            "give exactly one of threshold= (keep scores >= it) or top_k= (keep the k highest)"
        )
    if threshold is not None:
        return [k for k, v in scores.items() if v >= threshold]
    if top_k < 0:  # type: ignore[operator]
        raise ConfigError(f"top_k must be >= 0, got {top_k}")
    ranked = sorted(scores, key=lambda k: (-scores[k], k))
    return ranked[:top_k]


@dataclass(frozen=True)
class EdgeScores(Result):
    """Per-edge importance (higher = more important; units depend on the method and metric).

    Attributes:
        scores: {edge: score} over every edge of the searched graph.
        method, ablation, metric: how they were computed.
        cost, seconds, extra (from :class:`~interplab.methods.base.Result`): the forward and
            backward passes used, wall time, method-specific details (e.g. ACDC's thresholds).
    """

    scores: Mapping[Edge, float]
    method: str
    ablation: str
    metric: str

    def to_circuit(self, threshold: float | None = None, top_k: int | None = None) -> Circuit:
        """The circuit of edges scoring >= ``threshold``, or of the ``top_k`` best edges."""
        return Circuit.from_edges(
            _top(self.scores, threshold, top_k), name=f"{self.method}[{self.ablation}]"
        )

    def ranked(self) -> list[Edge]:
        """Edges from most to least important (ties broken by edge order)."""
        return sorted(self.scores, key=lambda e: (-self.scores[e], e))

    def to_nodes(self) -> NodeScores:
        """Node score = the largest score of an edge the node sends or receives (heads and MLPs)."""
        out: dict[Node, float] = {}
        for e, v in self.scores.items():
            for n in (e.sender, e.receiver):
                if n.kind in ("head", "mlp"):
                    out[n] = max(out.get(n, float("-inf")), v)
        return NodeScores(
            out, self.method, self.ablation, self.metric, cost=self.cost, seconds=self.seconds
        )


@dataclass(frozen=True)
class NodeScores(Result):
    """Per-node importance over heads and MLPs; fields as in :class:`EdgeScores`."""

    scores: Mapping[Node, float]
    method: str
    ablation: str
    metric: str

    def top(self, threshold: float | None = None, top_k: int | None = None) -> frozenset[Node]:
        return frozenset(_top(self.scores, threshold, top_k))
