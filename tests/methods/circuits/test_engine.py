from __future__ import annotations

import pytest
import torch

from interplab.core.hooks import count_hooks
from interplab.errors import ConfigError, ShapeError, UnknownNameError
from interplab.methods import registry
from interplab.methods.circuits import EdgePatcher, eap, eap_ig, find_circuit, patch_nodes
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer
from interplab.tasks import Task


@pytest.fixture
def model() -> HookedTransformer:
    cfg = TransformerConfig(
        n_layers=2,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        d_vocab=10,
        n_ctx=8,
        init_std=0.3,
        seed=1,
    )
    return HookedTransformer(cfg)


@pytest.fixture
def task() -> Task:
    g = torch.Generator().manual_seed(0)
    return Task(
        torch.randint(0, 10, (6, 8), generator=g), torch.randint(0, 10, (6, 8), generator=g)
    )


def test_no_edges_ablated_is_the_clean_run(model, task):
    for ablation in ("zero", "mean", "resample"):
        eng = EdgePatcher(model, task, ablation)
        torch.testing.assert_close(eng.run(torch.zeros(eng.n_edges)), model.run(task.clean))


def test_all_edges_resampled_is_the_corrupted_run(model, task):
    eng = EdgePatcher(model, task, "resample")
    torch.testing.assert_close(
        eng.run(torch.ones(eng.n_edges)), model.run(task.corrupted), atol=1e-5, rtol=1e-5
    )


def test_all_edges_zeroed_leaves_only_biases(model, task):
    eng = EdgePatcher(model, task, "zero")
    out = eng.run(torch.ones(eng.n_edges))
    # logits see zero from every sender: only biases (attention b_O, MLP b_out are senders' own
    # biases; with zero-init biases the unembedding input is the attention b_O sum = 0)
    expected = model.model.unembed(model.model.ln_final(torch.zeros(1, 8, 16)))
    torch.testing.assert_close(out, expected.expand_as(out), atol=1e-5, rtol=1e-5)


def test_single_edge_patch_matches_manual_hook(model, task):
    """Ablating tokens->logits by resampling equals swapping the embedding's contribution at
    the unembedding input by hand."""
    from interplab.core.circuit import Edge, Node
    from interplab.core.sites import Component, Site

    eng = EdgePatcher(model, task, "resample")
    strength = torch.zeros(eng.n_edges)
    strength[eng.index.edge_id[Edge(Node.tok_embed(), Node.logits())]] = 1.0
    got = eng.run(strength)
    emb = model.model.embed
    delta = emb(task.corrupted) - emb(task.clean)
    with torch.no_grad(), model.hooks({Site(Component.UNEMBED_IN): lambda x: x + delta}):
        want = model.run(task.clean)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_eap_uses_at_most_three_passes(model, task):
    for ablation in ("zero", "mean", "resample"):
        scores = eap(model, task, ablation=ablation, metric="logit_diff")
        assert scores.cost.forward + scores.cost.backward <= 3
        assert scores.cost.backward == 1


def test_eap_ig_scores_sum_to_the_total_effect(model, task):
    res = eap_ig(model, task, ablation="resample", metric="kl", steps=16, signed=True)
    eng = EdgePatcher(model, task, "resample", metric="kl")
    total = float(eng.score(torch.ones(eng.n_edges))) - float(eng.score(None))
    assert res.extra["signed_sum"] == pytest.approx(total, rel=0.05)


def test_eap_matches_finite_difference(model, task):
    res = eap(model, task, ablation="zero", metric="logit_diff", signed=True)
    eng = EdgePatcher(model, task, "zero", metric="logit_diff")
    base = float(eng.score(None))
    for i in (0, eng.n_edges // 2, eng.n_edges - 1):
        s = torch.zeros(eng.n_edges)
        s[i] = 1e-3
        fd = (float(eng.score(s)) - base) / 1e-3
        assert res.scores[eng.index.edges[i]] == pytest.approx(fd, rel=0.05, abs=1e-3)


def test_eap_rejects_distance_metrics(model, task):
    with pytest.raises(ConfigError, match="gradient is zero"):
        eap(model, task, metric="kl")


def test_bad_names_list_valid_ones(model, task):
    with pytest.raises(UnknownNameError, match="Valid circuits methods: acdc, activation_norm"):
        find_circuit("acdcc", model, task)
    with pytest.raises(UnknownNameError, match="Valid metrics"):
        find_circuit("patch_edges", model, task, metric="kll")
    with pytest.raises(UnknownNameError, match="Valid ablations"):
        find_circuit("patch_edges", model, task, ablation="ZERO")


def test_bad_task_shapes_are_reported():
    with pytest.raises(ShapeError, match="same shape"):
        Task(torch.zeros(2, 4, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))


def test_numeric_output_metrics(task):
    cfg = TransformerConfig(
        n_layers=1,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=16,
        d_vocab=10,
        n_ctx=8,
        d_vocab_out=1,
        init_std=0.3,
    )
    m = HookedTransformer(cfg)
    res = find_circuit("patch_edges", m, task, metric="l2")
    assert max(res.scores.values()) > 0
    with pytest.raises(ConfigError, match="use metric='l2'"):
        find_circuit("patch_edges", m, task, metric="kl")


class _Boom(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("layer failed")


def test_the_circuits_family_is_registered():
    assert registry.names("circuits") == sorted(
        [
            "patch_edges",
            "acdc",
            "eap",
            "eap_ig",
            "edge_pruning",
            "random",
            "weight_norm",
            "activation_norm",
        ]
    )
    assert registry.names("circuits", kind="baseline") == [
        "activation_norm",
        "random",
        "weight_norm",
    ]
    assert {s.name for s in registry.specs("circuits") if s.needs_gradients} == {
        "eap",
        "eap_ig",
        "edge_pruning",
    }
    assert {s.name for s in registry.specs("circuits") if s.cost_unit == "none"} == {
        "random",
        "weight_norm",
    }
    assert registry.get("circuits", "eap").fn is eap


@pytest.mark.parametrize("method", registry.names("circuits") + ["patch_nodes"])
def test_hooks_removed_after_errors(model, task, method):
    fn = patch_nodes if method == "patch_nodes" else registry.get("circuits", method).fn
    options = {"thresholds": (0.1,)} if method == "acdc" else {}
    metric = "logit_diff" if method in ("eap", "eap_ig") else "kl"
    fn(model, task, ablation="resample", metric=metric, **options)  # succeeds, leaves no hooks
    assert count_hooks(model.module) == 0
    model.model.blocks[1].mlp.act = _Boom()
    if method in ("random", "weight_norm"):  # no forward pass
        fn(model, task, ablation="resample")
    else:
        with pytest.raises(RuntimeError, match="layer failed"):
            fn(model, task, ablation="resample", metric=metric, **options)
    assert count_hooks(model.module) == 0
