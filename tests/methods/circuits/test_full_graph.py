"""Full-graph EAP / EAP-IG / circuit runs on a tiny random Llama agree exactly with the
edge-patching engine (which stacks every sender at every receiver), chunked or not."""

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.circuits import EdgePatcher, eap, eap_ig, patch_nodes
from interplab.methods.circuits.full_graph import (
    CircuitRunner,
    GraphLayout,
    attribute_edges,
    ig_points,
    patch_nodes_full,
)
from interplab.methods.tasks import make_task
from interplab.models.pretrained.llama import LlamaConfig
from tests.llama_helpers import random_llama

CFG = LlamaConfig(d_vocab=50, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64)


@pytest.fixture(scope="module")
def model():
    return random_llama(CFG, seed=1)


@pytest.fixture(scope="module")
def task():
    return make_task("induction", None, n=6, seed=0, half=4, vocab=(1, 50), bos=0)


def test_split_inputs_leave_the_forward_unchanged(model, task):
    from interplab.core.sites import Component, Site

    plain = model.run(task.clean)
    with model.hooks({Site(Component.ATTN_K_IN, 1): lambda x: None}):
        split = model.run(task.clean)
    torch.testing.assert_close(split, plain, atol=1e-5, rtol=1e-5)


def test_layout_covers_the_full_graph(model):
    layout = GraphLayout(model)
    # L0 heads read embed; mlp0 reads embed + 4 heads; L1 heads read those + mlp0; mlp1 adds
    # L1's heads; logits read all 11 senders
    assert len(layout) == 4 * 3 * 1 + 5 + 4 * 3 * 6 + 10 + 11
    assert len(layout.receivers) == 2 * (4 * 3 + 1) + 1


@pytest.mark.parametrize("ablation", ["mean", "resample", "zero"])
def test_eap_matches_the_engine_gradient(model, task, ablation):
    ref = eap(model, task.to_circuit_task(), ablation=ablation, metric="logit_diff", signed=True)
    mine = attribute_edges(model, task, method="eap", ablation=ablation, batch_size=4, signed=True)
    assert mine.forward_passes >= 2 and mine.backward_passes == 2  # two chunks
    for e, v in ref.scores.items():
        assert mine.scores[e] == pytest.approx(v, abs=1e-5)


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_eap_ig_matches_the_engine(model, task, ablation):
    ref = eap_ig(
        model, task.to_circuit_task(), ablation=ablation, metric="logit_diff", steps=3, signed=True
    )
    mine = attribute_edges(
        model, task, method="eap_ig", ablation=ablation, steps=3, batch_size=5, signed=True
    )
    for e, v in ref.scores.items():
        assert mine.scores[e] == pytest.approx(v, abs=1e-5)


def test_eap_ig_sum_approaches_the_total_effect(model, task):
    """Completeness: the signed scores integrate dm/da along the path, so their sum tends to
    m(all ablated) - m(clean) (this random model is wiggly: 32 Gauss-Legendre points)."""
    runner = CircuitRunner(model, task, "mean", batch_size=6)
    total = float(runner.values(torch.ones(len(runner.layout))).mean() - runner.values(None).mean())
    gl = attribute_edges(
        model, task, method="eap_ig", ablation="mean", steps=32, rule="gauss_legendre", signed=True
    )
    assert gl.extra["signed_sum"] == pytest.approx(total, rel=1e-3, abs=1e-4)


def test_circuit_runs_match_the_engine(model, task):
    eng = EdgePatcher(model, task.to_circuit_task(), "resample", metric="logit_diff")
    runner = CircuitRunner(model, task, "resample", batch_size=4)
    gen = torch.Generator().manual_seed(0)
    for density in (0.0, 0.03, 0.5, 0.97, 1.0):
        strength = (torch.rand(eng.n_edges, generator=gen) < density).float()
        assert float(runner.values(strength).mean()) == pytest.approx(
            float(eng.score(strength)), abs=1e-5
        )
    half = torch.full((eng.n_edges,), 0.5)
    assert float(runner.values(half).mean()) == pytest.approx(float(eng.score(half)), abs=1e-5)


def test_node_patching_matches_the_engine(model, task):
    ref = patch_nodes(model, task.to_circuit_task(), ablation="mean", metric="logit_diff")
    mine = patch_nodes_full(model, task, ablation="mean", batch_size=4)
    assert set(ref.scores) == set(mine.scores)
    for n, v in ref.scores.items():
        assert mine.scores[n] == pytest.approx(v, abs=1e-5)


def test_gauss_legendre_points_integrate_polynomials_exactly():
    t, w = ig_points(4, "gauss_legendre")
    assert sum(w) == pytest.approx(1.0)
    assert sum(wi * ti**7 for ti, wi in zip(t, w)) == pytest.approx(1 / 8)
    t, w = ig_points(4, "midpoint")
    assert t == [0.125, 0.375, 0.625, 0.875] and sum(w) == pytest.approx(1.0)


def test_bad_options_are_clear(model, task):
    with pytest.raises(UnknownNameError, match="integration rule"):
        ig_points(3, "simpson")
    with pytest.raises(ConfigError, match="steps"):
        ig_points(0)
    with pytest.raises(ConfigError, match="batch size"):
        attribute_edges(model, task, batch_size=0)
    with pytest.raises(UnknownNameError, match="ablation"):
        attribute_edges(model, task, ablation="median")
    with pytest.raises(UnknownNameError, match="edge attribution method"):
        attribute_edges(model, task, method="acdc")
