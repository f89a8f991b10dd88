"""Converted weights are cached as safetensors keyed by the source's hash; a damaged cache file
is rebuilt, never trusted."""

import torch

from interplab.models.weights_cache import cache_path, cached_state_dict


def test_cache_is_used_then_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "model.gguf"
    source.write_bytes(b"pretend weights v1")
    calls = []

    def build():
        calls.append(1)
        return {"w": torch.arange(6.0).view(2, 3)}

    first, hit = cached_state_dict("m", source, build)
    assert not hit and len(calls) == 1
    second, hit = cached_state_dict("m", source, build)
    assert hit and len(calls) == 1 and torch.equal(second["w"], first["w"])
    path = cache_path("m", source)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    third, hit = cached_state_dict("m", source, build)
    assert not hit and len(calls) == 2 and torch.equal(third["w"], first["w"])
    source.write_bytes(b"pretend weights v2")  # a new source gets its own entry
    assert cache_path("m", source) != path
