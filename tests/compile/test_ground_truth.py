from __future__ import annotations

import json

import pytest
import torch

from interplab.compile import GroundTruth, load_compiled, save_compiled
from interplab.core.circuit import Circuit, Edge, Node
from interplab.errors import ShapeError, UnknownNameError, WeightsError
from tests.compile.cases import compiled


def test_json_round_trip_and_save_load(tmp_path):
    model = compiled("sort")
    data = json.loads(json.dumps(model.ground_truth.to_json()))
    again = GroundTruth.from_json(data)
    assert again.variables == model.ground_truth.variables
    assert again.directions == model.ground_truth.directions
    assert again.circuit.edges == model.ground_truth.circuit.edges
    assert again.structure.edges == model.ground_truth.structure.edges
    save_compiled(tmp_path / "m", model)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_compiled(tmp_path / "m")
    xs = [[3, 1, 2, 1], [4, 4, 1, 2]]
    assert loaded(xs) == model(xs) == [[1, 1, 2, 3], [1, 2, 4, 4]]
    assert loaded.ground_truth.circuit.edge_ablations == model.ground_truth.circuit.edge_ablations


def test_tuple_values_survive_json():
    model = compiled("nary_arith")
    again = GroundTruth.from_json(json.loads(json.dumps(model.ground_truth.to_json())))
    assert any(isinstance(d.value, tuple) for d in again.directions)
    assert again.directions == model.ground_truth.directions


def test_load_missing_dir_or_plain_model_teaches(tmp_path, tiny_model):
    with pytest.raises(WeightsError, match="model.json"):
        load_compiled(tmp_path)
    from interplab.models.io import load_model, save_model

    save_model(tmp_path / "plain", tiny_model)
    with pytest.raises(WeightsError, match="not a compiled RASP program"):
        load_compiled(tmp_path / "plain")
    # a compiled model directory is also a plain model directory
    save_compiled(tmp_path / "c", compiled("hist"))
    plain, extra = load_model(tmp_path / "c")
    assert "compiled" in extra and plain.cfg == compiled("hist").cfg


def test_reverse_circuit_flags_position_edges_zero_only():
    circuit: Circuit = compiled("reverse").ground_truth.circuit
    flags = circuit.edge_ablations
    pos_edges = [e for e in circuit.edges if e.sender == Node.pos_embed()]
    assert pos_edges and all(flags[e] == {"zero"} for e in pos_edges)
    head = Node.attn_head(2, 0)
    assert flags[Edge(head, Node.logits())] == {"zero", "mean", "resample"}
    assert flags[Edge(Node.tok_embed(), head, "v")] == {"zero", "mean", "resample"}
    # length is the same for clean and corrupted inputs, so nothing upstream of it matters
    # under resample ablation
    resample = circuit.for_ablation("resample")
    assert resample.edges == {Edge(head, Node.logits()), Edge(Node.tok_embed(), head, "v")}
    assert len(circuit.for_ablation("zero")) > len(resample)


def test_frac_prevs_circuit():
    circuit = compiled("frac_prevs").ground_truth.circuit
    resample = circuit.for_ablation("resample")
    assert {str(e) for e in resample.edges} == {
        "tokens->L0.MLP",
        "L0.MLP->L1.H0[v]",
        "L1.H0->logits",
    }


def test_decode_residual_checks_shape_and_name():
    model = compiled("hist")
    with pytest.raises(Exception, match="decode_residual expects"):
        model.ground_truth.decode_residual(torch.zeros(1, 2, 3), "hist")
    with pytest.raises(UnknownNameError, match="Valid variables"):
        model.ground_truth.decode_residual(torch.zeros(1, 2, model.cfg.d_model), "hst")


def test_encode_rejects_mixed_lengths_and_unknown_tokens():
    model = compiled("hist")
    with pytest.raises(ShapeError, match="one length"):
        model.encode([["a"], ["a", "b"]])
    with pytest.raises(ShapeError, match="not in the vocabulary"):
        model.encode([["z"]])
    tokens = model.encode([["a", "b"]])
    assert tokens.tolist() == [[0, 1, 2]] and tokens.dtype == torch.long


def test_basis_selects_the_variable_dims():
    truth = compiled("reverse").ground_truth
    basis = truth.basis("opp_index")
    assert basis.shape == (truth.d_model, len(truth.variables["opp_index"].dims))
    assert torch.equal(basis.T @ basis, torch.eye(basis.shape[1]))
