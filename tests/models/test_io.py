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


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    import os

    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, tiny_model, umask, mask, mode):
    """Temporary files are created 0600; the written file gets 0o666 minus the umask, as a
    plain open() would, so results and reports can be shared."""
    from interplab.models.io import atomic_write_text, current_umask

    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "a.json", "{}")
    d = save_model(tmp_path / "m", tiny_model)
    for path in (tmp_path / "a.json", d / "model.safetensors", d / "model.json"):
        assert path.stat().st_mode & 0o777 == mode, path


def test_failed_atomic_write_leaves_the_old_file(tmp_path):
    from interplab.models.io import atomic_output

    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor's data: still a readable safetensors file
    path.write_bytes(bytes(data))


def test_sidecar_records_the_weights_hash(tmp_path, tiny_model):
    import hashlib

    d = save_model(tmp_path / "m", tiny_model)
    sidecar = json.loads((d / "model.json").read_text())
    assert (
        sidecar["weights_sha256"]
        == hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    )


def test_flipped_bytes_are_reported_as_corrupt(tmp_path, tiny_model):
    d = save_model(tmp_path / "m", tiny_model)
    _flip_last_byte(d / "model.safetensors")
    with pytest.raises(WeightsError) as info:
        load_model(d)
    msg = str(info.value)
    assert "model.safetensors is corrupt" in msg and "SHA-256" in msg
    assert f"Delete {d}" in msg and "rebuild" in msg


def test_sidecar_without_a_hash_still_loads(tmp_path, tiny_model, tokens):
    d = save_model(tmp_path / "m", tiny_model)
    sidecar = json.loads((d / "model.json").read_text())
    del sidecar["weights_sha256"]  # as written before the hash existed
    (d / "model.json").write_text(json.dumps(sidecar))
    loaded, _ = load_model(d)
    assert torch.equal(loaded.run(tokens), tiny_model.run(tokens))


def test_malformed_hash_in_sidecar(tmp_path, tiny_model):
    d = save_model(tmp_path / "m", tiny_model)
    sidecar = json.loads((d / "model.json").read_text())
    sidecar["weights_sha256"] = "not-a-hash"
    (d / "model.json").write_text(json.dumps(sidecar))
    with pytest.raises(WeightsError, match="invalid weights_sha256 'not-a-hash'"):
        load_model(d)
