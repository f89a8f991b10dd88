"""Saving and loading dictionaries and training checkpoints (safetensors + JSON).

A dictionary file is one ``.safetensors`` whose metadata holds the config as JSON. A training
checkpoint is a directory ``step-XXXXXXXX/`` holding ``state.safetensors`` (weights, optimizer
moments, per-latent counters) and ``state.json`` (step, history, config). Both are written to a
temporary name and renamed into place, so a crash never leaves a half-written checkpoint under
a final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from interplab.errors import WeightsError
from interplab.methods.dictionaries.config import DictionaryConfig
from interplab.methods.dictionaries.modules import SparseDictionary
from interplab.models.io import atomic_output, current_umask

FORMAT = "interplab.dictionary/1"
CHECKPOINT_FORMAT = "interplab.dictionary-checkpoint/1"


def _safetensors():
    from safetensors.torch import load_file, save_file

    return load_file, save_file


def save_dictionary(dictionary: SparseDictionary, path: str | os.PathLike) -> Path:
    """Write ``dictionary`` to ``path`` (a ``.safetensors`` file, replaced atomically)."""
    _, save_file = _safetensors()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in dictionary.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(dictionary.config.to_json())}
    with atomic_output(path) as tmp:  # replaced atomically, mode per the umask
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_dictionary(path: str | os.PathLike) -> SparseDictionary:
    """Read a dictionary written by :func:`save_dictionary`. Raises WeightsError if the file is
    missing, corrupt, or its tensors do not match its config."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no dictionary file at {path}; save one with save_dictionary(d, path)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        config = DictionaryConfig.from_json(json.loads(meta["config"]))
    except Exception as exc:  # safetensors raises its own error types, json and KeyError too
        raise WeightsError(
            f"cannot read dictionary {path}: the file is corrupt or not an interplab "
            f"dictionary ({type(exc).__name__}: {exc}). Re-save it with save_dictionary."
        ) from None
    return _build(config, tensors, str(path), "dictionary")


def _build(
    config: DictionaryConfig, tensors: dict[str, torch.Tensor], where: str, what: str
) -> SparseDictionary:
    module = SparseDictionary(config)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [
        f"{k}: expected {s}, found {found.get(k, 'missing')}"
        for k, s in expected.items()
        if found.get(k) != s
    ]
    if problems:
        raise WeightsError(f"{what} {where} does not match its config: " + "; ".join(problems))
    module.load_state_dict(tensors)
    return module


# ---- training checkpoints -------------------------------------------------------------
def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def write_checkpoint(
    root: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any], keep: int
) -> Path:
    """Write checkpoint ``step`` atomically; keep only the ``keep`` newest."""
    _, save_file = _safetensors()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-step-"))
    try:
        save_file(
            {k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors")
        )
        (tmp / "state.json").write_text(json.dumps({"format": CHECKPOINT_FORMAT, **state}))
        mode = 0o777 & ~current_umask()  # mkdtemp makes 0700; checkpoints are shared like results
        os.chmod(tmp, mode)
        for f in tmp.iterdir():
            os.chmod(f, mode & 0o666)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    for old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON state of one checkpoint; WeightsError if it is unreadable."""
    load_file, _ = _safetensors()
    try:
        state = json.loads((path / "state.json").read_text())
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        tensors = load_file(str(path / "state.safetensors"))
    except Exception as exc:
        raise WeightsError(
            f"checkpoint {path} is corrupt ({type(exc).__name__}: {exc}). Delete that directory to "
            f"resume from the one before it, or pass resume=False to start over."
        ) from None
    return tensors, state
