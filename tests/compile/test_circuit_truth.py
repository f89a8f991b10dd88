"""The ground-truth circuit is measured: check it against single-edge ablations of the full graph."""

from __future__ import annotations

import pytest

from interplab.compile.assemble import Weights
from interplab.compile.circuit_truth import edge_forward, measure_edge_ablations
from interplab.compile.programs import LIBRARY
from interplab.core.circuit import full_graph

from tests.compile.cases import compiled


def _weights(model) -> Weights:
    return Weights(model.cfg, model.model.state_dict(), {}, model.output_values)


QUICK = ["reverse", "frac_prevs", "induction", "hist"]


@pytest.mark.parametrize("name", [
    *QUICK, *(pytest.param(n, marks=pytest.mark.slow) for n in LIBRARY if n not in QUICK)])
def test_no_edge_outside_the_circuit_matters(name):
    model = compiled(name)
    cfg = model.cfg
    full = full_graph(cfg.n_layers, cfg.n_heads)
    pairs = LIBRARY[name].task_pairs(64, seed=0)
    flags = measure_edge_ablations(_weights(model), model.vocab, pairs, sorted(full.edges))
    truth = model.ground_truth.circuit
    for edge, matters in flags.items():
        assert matters == truth.edge_ablations.get(edge, frozenset()), edge


def test_edge_forward_matches_the_model():
    model = compiled("sort")
    tokens = model.encode([[3, 1, 2, 1]])
    logits, _ = edge_forward(_weights(model), tokens)
    assert (logits - model.run(tokens)).abs().max() < 1e-4


def test_measure_circuit_on_the_same_pairs_reproduces_the_ground_truth():
    from interplab.compile import measure_circuit

    model = compiled("sort")
    again = measure_circuit(model, LIBRARY["sort"].task_pairs(64, seed=0))
    truth = model.ground_truth.circuit
    assert again.edges == truth.edges and again.edge_ablations == truth.edge_ablations
    assert truth.edges <= model.ground_truth.structure.edges
    # on inputs of length 1 only, fewer edges can matter
    short = measure_circuit(model, LIBRARY["sort"].task_pairs(16, seed=0, length=1))
    assert short.edges <= truth.edges
