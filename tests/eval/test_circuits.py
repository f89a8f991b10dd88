from __future__ import annotations

import pytest
import torch

from interplab.core.circuit import Circuit, Edge, Node
from interplab.errors import ConfigError
from interplab.eval.circuits import auroc, edge_auroc, node_auroc, pessimistic_auroc, roc_points
from interplab.eval.faithfulness import faithfulness
from interplab.methods.circuits import EdgeScores, random_scores
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer
from interplab.tasks import Task


def test_perfect_and_inverted_rankings():
    scores = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    assert auroc(scores, {"a", "b"}) == 1.0
    assert auroc(scores, {"c", "d"}) == 0.0
    assert pessimistic_auroc(scores, {"a", "b"}) == 1.0


def test_hand_computed_auc_with_ties():
    # positives a (3), c (1); negatives b (2), d (1): pairs a>b, a>d, c<b, c=d -> (2 + 0.5) / 4
    scores = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 1.0}
    assert auroc(scores, {"a", "c"}) == pytest.approx(0.625)
    assert roc_points(scores, {"a", "c"}) == [(0, 0), (0, 0.5), (0.5, 0.5), (1, 1)]
    # step function: the tied segment from (0.5, 0.5) to (1, 1) counts at tpr 0.5
    assert pessimistic_auroc(scores, {"a", "c"}) == pytest.approx(0.5)


def test_all_tied_scores_give_one_half():
    scores = {i: 0.0 for i in range(10)}
    assert auroc(scores, {0, 1, 2}) == 0.5
    assert pessimistic_auroc(scores, {0, 1, 2}) == 0.0


def test_roc_needs_both_classes():
    with pytest.raises(ConfigError, match="both true and false"):
        auroc({"a": 1.0}, {"a"})


def test_matches_sklearn_on_random_scores():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 5, (200,), generator=g).tolist()
    labels = torch.randint(0, 2, (200,), generator=g).tolist()
    scores = dict(enumerate(values))
    truth = {i for i, y in enumerate(labels) if y}
    assert auroc(scores, truth) == pytest.approx(roc_auc_score(labels, values))


def test_edge_and_node_auroc_on_a_circuit():
    tok, h, out = Node.tok_embed(), Node.attn_head(0, 0), Node.logits()
    h1 = Node.attn_head(0, 1)
    truth = Circuit.from_edges([Edge(tok, h, "v"), Edge(h, out)])
    scores = EdgeScores(
        {
            Edge(tok, h, "v"): 1.0,
            Edge(h, out): 0.9,
            Edge(tok, h1, "v"): 0.1,
            Edge(h1, out): 0.2,
            Edge(tok, out): 0.5,
        },
        "hand",
        "zero",
        "none",
    )
    assert edge_auroc(scores, truth) == 1.0
    assert node_auroc(scores, truth) == 1.0


@pytest.fixture
def model_and_task():
    cfg = TransformerConfig(
        n_layers=1,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=16,
        d_vocab=10,
        n_ctx=6,
        init_std=0.4,
        seed=2,
    )
    g = torch.Generator().manual_seed(0)
    task = Task(
        torch.randint(0, 10, (8, 6), generator=g),
        torch.randint(0, 10, (8, 6), generator=g),
        metric="kl",
    )
    return HookedTransformer(cfg), task


def test_faithfulness_is_one_for_the_full_graph_and_zero_for_none(model_and_task):
    model, task = model_and_task
    scores = random_scores(model, task, ablation="resample")
    res = faithfulness(model, task, scores, metric="kl", sizes=(0.0, 0.5, 1.0))
    assert res.n_edges[0] == 0 and res.n_edges[-1] == len(scores.scores)
    assert res.f[0] == pytest.approx(0.0, abs=1e-6)
    assert res.f[-1] == pytest.approx(1.0, abs=1e-6)
    assert res.cmd == pytest.approx(
        sum(abs(1 - v) for v in (0.5 * (res.f[0] + res.f[1]), 0.5 * (res.f[1] + res.f[2]))) * 0.5
    )
