import dataclasses
import json

import pytest
import torch

from interplab.errors import WeightsError
from interplab.models.io import load_model, save_model
from interplab.models.transformer import HookedTransformer


def test_round_trip(tmp_path, tiny_model, tokens):
    save_model(tmp_path / "m", tiny_model, extra={"note": "hello"})
    loaded, extra = load_model(tmp_path / "m")
    assert extra == {"note": "hello"}
    assert loaded.cfg == tiny_model.cfg
    assert torch.equal(loaded.run(tokens), tiny_model.run(tokens))
    assert not list((tmp_path / "m").glob("*.tmp")), "no temporary files left behind"


def test_truncated_weights(tmp_path, tiny_model):
    d = save_model(tmp_path / "m", tiny_model)
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_model(d)


def test_weights_from_another_config(tmp_path, tiny_model, tiny_cfg):
    d = save_model(tmp_path / "m", tiny_model)
    other = HookedTransformer(dataclasses.replace(tiny_cfg, d_mlp=32))
    save_model(tmp_path / "o", other)
    (d / "model.safetensors").write_bytes((tmp_path / "o" / "model.safetensors").read_bytes())
    with pytest.raises(WeightsError, match="shape mismatches.*W_in"):
        load_model(d)


def test_bad_sidecar(tmp_path, tiny_model):
    d = save_model(tmp_path / "m", tiny_model)
    (d / "model.json").write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_model(d)
    (d / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(WeightsError, match="not an interplab model sidecar"):
        load_model(d)


def test_missing_directory(tmp_path):
    with pytest.raises(WeightsError, match="no model.json"):
        load_model(tmp_path / "nowhere")
