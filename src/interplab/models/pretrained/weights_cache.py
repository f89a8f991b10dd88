"""Converted weights cached as safetensors, keyed by the source file's content hash.

Dequantising a GGUF file takes 10-60 s on a small machine; the result is saved once under
``<cache>/pretrained/<name>-<sha256 of the source, 16 hex>.safetensors`` with a sidecar holding
the sha256 of the saved bytes. A later load reads the safetensors file (no unpickling) and checks
that hash; a missing, truncated or altered file is rebuilt from the source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from interplab import _config
from interplab.errors import WeightsError
from interplab.models.io import atomic_write_text, load_tensors, save_tensors


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_path(name: str, source: str | Path) -> Path:
    return _config.cache_dir() / "pretrained" / f"{name}-{file_sha256(source)[:16]}.safetensors"


def cached_state_dict(
    name: str, source: str | Path, build: Callable[[], dict[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, whether it came from the cache). ``build()`` converts the source."""
    path = cache_path(name, source)
    sidecar = path.with_suffix(".sha256")
    if path.is_file() and sidecar.is_file():
        if file_sha256(path) == sidecar.read_text().strip():
            try:
                return load_tensors(path), True
            except WeightsError:
                pass
    tensors = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, tensors, metadata={"source_sha256": file_sha256(source), "name": name})
    atomic_write_text(sidecar, file_sha256(path))
    return tensors, False
