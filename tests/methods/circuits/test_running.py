"""The running-sums backend on a tiny random Llama: its layout, circuit runs and node patching
agree with the stacked engine (which holds every sender at every receiver), chunked or not.
EAP / EAP-IG across the two backends: test_one_engine.py."""

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods.circuits import EdgePatcher, eap, eap_ig, ig_points, patch_nodes
from interplab.methods.circuits.running import CircuitRunner, GraphLayout, patch_nodes_full
from interplab.models.pretrained.llama import LlamaConfig
from interplab.tasks import make_task
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


def test_eap_ig_sum_approaches_the_total_effect(model, task):
    """Completeness: the signed scores integrate dm/da along the path, so their sum tends to
    m(all ablated) - m(clean) (this random model is wiggly: 32 Gauss-Legendre points)."""
    runner = CircuitRunner(model, task, "mean", batch_size=6)
    total = float(runner.values(torch.ones(len(runner.layout))).mean() - runner.values(None).mean())
    gl = eap_ig(
        model,
        task,
        ablation="mean",
        steps=32,
        rule="gauss_legendre",
        signed=True,
        backend="running",
    )
    assert gl.extra["signed_sum"] == pytest.approx(total, rel=1e-3, abs=1e-4)


def test_circuit_runs_match_the_engine(model, task):
    eng = EdgePatcher(model, task, "resample", metric="logit_diff")
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
    ref = patch_nodes(model, task, ablation="mean", metric="logit_diff")
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
        eap_ig(model, task, batch_size=0, backend="running")
    with pytest.raises(UnknownNameError, match="ablation"):
        eap(model, task, ablation="median", backend="running")
    with pytest.raises(UnknownNameError, match="backend"):
        eap(model, task, backend="stack")
    with pytest.raises(ConfigError, match="full graph"):
        eap(model, task, graph=GraphLayout(model).index.graph, backend="running")
    with pytest.raises(ConfigError, match="gradient is zero"):
        eap(model, task, metric="kl", backend="running")
    with pytest.raises(ConfigError, match="differentiable"):
        eap_ig(model, task, metric="accuracy", backend="running")


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_dense_and_stacked_mixing_agree_for_every_circuit_size(model, task, monkeypatch, ablation):
    """A circuit run mixes many senders with one matrix product over a buffer of A_s - S_s and
    few senders by stacking them: both paths give the same logits, for sparse and dense kept
    sets and fractional strengths alike."""
    from interplab.methods.circuits import running

    runner = CircuitRunner(model, task, ablation, batch_size=3)
    n = len(runner.layout)
    gen = torch.Generator().manual_seed(0)
    strengths = [torch.ones(n), (torch.rand(n, generator=gen) < 0.5).float()]
    strengths += [(torch.rand(n, generator=gen) < 0.05).float(), torch.rand(n, generator=gen)]
    for strength in strengths:
        monkeypatch.setattr(running, "DENSE_MIN_SENDERS", 10**9)  # always stack
        stacked = runner.values(strength)
        monkeypatch.setattr(running, "DENSE_MIN_SENDERS", 0)  # always one matrix product
        dense = runner.values(strength)
        torch.testing.assert_close(dense, stacked, atol=1e-5, rtol=1e-5)
