"""One circuit engine, two backends: EAP and EAP-IG give the same scores whether every sender
is stacked at every receiver (small graphs) or the full graph is run with running sums over
batch chunks (large graphs), on the same Task, for a tiny random Llama and compiled organisms."""

from __future__ import annotations

import importlib

import pytest
import torch

from interplab.methods.circuits import eap, eap_ig
from interplab.models.pretrained.llama import LlamaConfig
from interplab.tasks import Task, make_task, pair_task
from tests.llama_helpers import random_llama

CFG = LlamaConfig(d_vocab=50, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64)
TOL = {"rtol": 1e-4, "atol": 1e-6}
ENGINE = importlib.import_module("interplab.methods.circuits.eap")  # the module, not the function


def _same(a, b) -> None:
    assert a.scores.keys() == b.scores.keys()
    edges = list(a.scores)
    x = torch.tensor([a.scores[e] for e in edges])
    y = torch.tensor([b.scores[e] for e in edges])
    assert x.abs().max() > 1e-3  # not trivially equal: the scores are not all zero
    torch.testing.assert_close(x, y, **TOL)
    assert a.extra["signed_sum"] == pytest.approx(b.extra["signed_sum"], rel=1e-4, abs=1e-6)


@pytest.fixture(scope="module")
def llama():
    return random_llama(CFG, seed=3)


@pytest.fixture(scope="module")
def tasks():
    induction = make_task("induction", None, n=6, seed=0, half=4, vocab=(1, 50), bos=0)
    g = torch.Generator().manual_seed(5)
    clean = torch.randint(1, 50, (5, 7), generator=g)
    # per-row positions, right and wrong answers, and a kl default metric
    pairs = Task(
        clean,
        torch.randint(1, 50, (5, 7), generator=g),
        torch.randint(1, 7, (5, 2), generator=g),
        torch.randint(1, 50, (5, 2), generator=g),
        torch.randint(1, 50, (5, 2), generator=g),
        metric="kl",
        name="random pairs",
    )
    return {"induction": induction, "pairs": pairs}


@pytest.mark.parametrize("name", ["induction", "pairs"])
@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
def test_eap_is_the_same_on_both_backends(llama, tasks, name, ablation):
    task = tasks[name]
    stacked = eap(llama, task, ablation=ablation, signed=True, backend="stacked")
    for batch_size in (2, 8):  # chunked and in one chunk
        running = eap(
            llama, task, ablation=ablation, signed=True, backend="running", batch_size=batch_size
        )
        assert (stacked.extra["backend"], running.extra["backend"]) == ("stacked", "running")
        _same(stacked, running)


@pytest.mark.parametrize("name", ["induction", "pairs"])
@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_eap_ig_defaults_are_the_same_on_both_backends(llama, tasks, name, ablation):
    task = tasks[name]
    stacked = eap_ig(llama, task, ablation=ablation, backend="stacked")
    running = eap_ig(llama, task, ablation=ablation, backend="running", batch_size=2)
    assert stacked.extra["steps"] == running.extra["steps"] == 5
    assert stacked.extra["rule"] == running.extra["rule"] == "midpoint"
    _same(stacked, running)


@pytest.mark.parametrize(
    "options", [{"rule": "gauss_legendre", "steps": 4}, {"metric": "kl"}, {"metric": "l2"}]
)
def test_eap_ig_options_are_the_same_on_both_backends(llama, tasks, options):
    task = tasks["pairs"]
    stacked = eap_ig(llama, task, signed=True, backend="stacked", **options)
    running = eap_ig(llama, task, signed=True, backend="running", batch_size=3, **options)
    assert stacked.metric == running.metric
    _same(stacked, running)


def test_auto_picks_the_backend_by_graph_size(llama, tasks, monkeypatch):
    task = tasks["induction"]
    small = eap(llama, task)
    assert small.extra["backend"] == "stacked"
    monkeypatch.setattr(ENGINE, "STACKED_MAX_EDGES", len(small.scores) - 1)
    big = eap(llama, task)
    assert big.extra["backend"] == "running"
    _same(small, big)
    sub = eap(llama, task, graph=small.to_circuit(top_k=20))  # a sub-graph: always stacked
    assert sub.extra["backend"] == "stacked" and len(sub.scores) == 20


@pytest.mark.parametrize("program", ["reverse", "frac_prevs"])
def test_both_backends_agree_on_a_compiled_organism(program):
    """A compiled RASP organism (categorical outputs for reverse, one numerical output for
    frac_prevs) scored on its own clean/corrupted pairs."""
    from interplab.compile.programs import get_program

    spec = get_program(program)
    model = spec.compile()
    pairs = spec.task_pairs(12, seed=0, length=spec.max_len)
    task = pair_task(model, model.encode, pairs, "l2", f"compiled-{program}")
    for ablation in ("zero", "resample"):
        _same(
            eap(model, task, ablation=ablation, signed=True, backend="stacked"),
            eap(model, task, ablation=ablation, signed=True, backend="running", batch_size=5),
        )
    _same(
        eap_ig(model, task, ablation="mean", signed=True, backend="stacked"),
        eap_ig(model, task, ablation="mean", signed=True, backend="running", batch_size=5),
    )
