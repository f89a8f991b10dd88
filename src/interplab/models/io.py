"""Saving and loading native models: safetensors weights plus a JSON sidecar. No pickles.

Layout of a model directory::

    DIR/model.safetensors   the state_dict
    DIR/model.json          {"format": "interplab-model", "version": 1, "config": {...},
                             "extra": {...}}   (extra: e.g. a compiled model's ground truth)

Files are written atomically (temporary file, then rename), so an interrupted save never
leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from interplab.errors import ConfigError, WeightsError
from interplab.models.config import TransformerConfig
from interplab.models.transformer import HookedTransformer

FORMAT = "interplab-model"
VERSION = 1
WEIGHTS_NAME = "model.safetensors"
SIDECAR_NAME = "model.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Atomically save a flat dict of tensors with safetensors."""
    from safetensors.torch import save

    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, save(clean, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing, truncated or corrupt file raises WeightsError."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; save one first or check the path")
    try:
        return load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own SafetensorError / ValueError
        raise WeightsError(f"{path} is not a readable safetensors file ({exc}); it may be truncated "
                           "or corrupt: save or download it again") from None


def save_model(directory: str | os.PathLike, model: HookedTransformer,
               extra: dict[str, Any] | None = None) -> Path:
    """Save weights and sidecar into ``directory`` (created if needed). Returns the directory."""
    directory = Path(directory)
    save_tensors(directory / WEIGHTS_NAME, model.model.state_dict())
    sidecar = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_json(),
               "extra": extra or {}}
    atomic_write_text(directory / SIDECAR_NAME, json.dumps(sidecar, indent=2, sort_keys=True))
    return directory


def read_sidecar(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / SIDECAR_NAME
    if not path.is_file():
        raise WeightsError(f"no {SIDECAR_NAME} in {directory}; a model directory holds "
                           f"{WEIGHTS_NAME} and {SIDECAR_NAME} (write them with save_model)")
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); the sidecar is corrupt") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise WeightsError(f"{path} is not an interplab model sidecar (format={data.get('format')!r}, "
                           f"version={data.get('version')!r}; expected {FORMAT!r} version {VERSION})")
    return data


def load_model(directory: str | os.PathLike, name: str | None = None) -> tuple[HookedTransformer, dict[str, Any]]:
    """Load a model saved by :func:`save_model`. Returns (model, extra)."""
    data = read_sidecar(directory)
    try:
        cfg = TransformerConfig.from_json(data["config"])
    except (ConfigError, TypeError, KeyError) as exc:
        raise WeightsError(f"the config in {directory}/{SIDECAR_NAME} is invalid: {exc}") from None
    model = HookedTransformer(cfg, name=name or Path(directory).name)
    state = load_tensors(Path(directory) / WEIGHTS_NAME)
    expected = model.model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}")
        if wrong:
            parts.append(f"shape mismatches {wrong[:5]}")
        raise WeightsError(f"weights in {directory} do not match its config: {'; '.join(parts)}. "
                           "The sidecar and weights come from different models; save them together.")
    model.model.load_state_dict(state)
    return model, data.get("extra", {})
