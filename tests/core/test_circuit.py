import pytest

from interplab.core.circuit import Circuit, Edge, Node, full_graph
from interplab.errors import ConfigError


def test_full_graph_edge_count():
    # 2 layers x 2 heads, MLPs, token + position embeddings.
    g = full_graph(2, 2)
    senders_before = {0: 2, 1: 2 + 2 + 1}  # embeds; embeds + L0 heads + L0 mlp
    expected = sum(2 * 3 * senders_before[l] + (senders_before[l] + 2) for l in (0, 1))
    expected += 2 + 2 * 2 + 2  # logits read every sender
    assert len(g) == expected


def test_backward_edge_rejected():
    with pytest.raises(ConfigError, match="backwards"):
        Edge(Node.mlp(1), Node.attn_head(0, 0), "q")
    with pytest.raises(ConfigError, match="channels"):
        Edge(Node.tok_embed(), Node.mlp(0), "q")


def test_json_round_trip_and_ablation_view():
    e1 = Edge(Node.pos_embed(), Node.attn_head(0, 1), "k")
    e2 = Edge(Node.attn_head(0, 1), Node.logits())
    c = Circuit.from_edges([e1, e2], name="gt", edge_ablations={e1: {"zero", "mean"}})
    back = Circuit.from_json(c.to_json())
    assert back.edges == c.edges and back.edge_ablations == c.edge_ablations
    assert c.for_ablation("resample").edges == {e2}
    assert c.for_ablation("zero").edges == {e1, e2}
