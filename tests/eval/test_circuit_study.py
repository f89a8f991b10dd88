"""MIB curves on a tiny random Llama: a curve over several orders (the random baseline over
seeds) is the per-prompt mean of the single-order curves, ``circuit_study`` reports exactly
that curve, and the layout's per-node edge lists match the edges themselves."""

from __future__ import annotations

import pytest
import torch

from interplab.eval.circuit_curves import PointCache, mib_curve, random_order
from interplab.eval.circuit_study import circuit_study
from interplab.methods.circuits.running import CircuitRunner, GraphLayout
from interplab.models.pretrained.llama import LlamaConfig
from interplab.tasks.induction import induction_task
from tests.llama_helpers import random_llama

SIZES = (0.05, 0.2, 0.5)


@pytest.fixture(scope="module")
def model_and_task():
    cfg = LlamaConfig(
        d_vocab=64, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=24, n_ctx=64
    )
    model = random_llama(cfg, seed=3)
    return model, induction_task(None, n=6, half=5, seed=0, vocab=(1, 64))


def test_a_curve_over_several_orders_is_the_mean_of_their_curves(model_and_task):
    model, task = model_and_task
    layout = GraphLayout(model)
    runner = CircuitRunner(model, task, "mean", 6, layout=layout)
    full, empty = runner.values(None), runner.values(torch.ones(len(layout)))
    cache = PointCache(runner, full, empty)
    orders = [random_order(len(layout), s) for s in range(3)]
    singles = [mib_curve("r", "random", cache, o, SIZES) for o in orders]
    many = mib_curve("r", "random", cache, orders, SIZES)
    for k in range(len(SIZES)):
        assert many.f[k] == pytest.approx(sum(c.f[k] for c in singles) / 3, abs=1e-6)
        assert many.n_kept[k] == round(sum(c.n_kept[k] for c in singles) / 3)
    assert len({c.f for c in singles}) > 1, "three random orders gave one curve: test is void"
    study = circuit_study(
        model,
        task,
        methods=("eap",),
        ablations=("mean",),
        n_random=3,
        sizes=SIZES,
        eval_batch_size=6,
    )
    (rand,) = [c for c in study["ablations"]["mean"]["curves"] if c["ranking"] == "random"]
    assert rand["f"] == pytest.approx(list(many.f), abs=1e-6)


def test_layout_edge_lists_match_the_edges(model_and_task):
    layout = GraphLayout(model_and_task[0])
    sid = layout.index.sender_id
    for i, node in enumerate(layout.senders):
        out = {e for e, edge in enumerate(layout.edges) if sid[edge.sender] == i}
        into = {e for e, edge in enumerate(layout.edges) if sid.get(edge.receiver) == i}
        assert set(layout.edges_out_of[i].tolist()) == out
        assert set(layout.edges_into[i].tolist()) == into
