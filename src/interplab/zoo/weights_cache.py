"""One on-disk cache for trained organisms: ``model.safetensors`` + ``truth.json`` in a directory
named by a fingerprint of the spec that built them. The truth records the weights' SHA-256; a
file that does not match (or an unreadable truth) is rebuilt with a warning, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from interplab.errors import WeightsError
from interplab.models.io import atomic_write_text, load_tensors, save_tensors

_log = logging.getLogger("interplab.zoo")
Trainer = Callable[[], "tuple[dict[str, torch.Tensor], dict]"]


def digest(data: Any) -> str:
    """16 hex digits of the SHA-256 of ``data`` as sorted-key JSON: a cache key for what was built."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(obj: Any, version: int) -> str:
    """16 hex digits identifying ``repr(obj)`` under a cache format ``version``."""
    return digest({"spec": repr(obj), "version": version})


def cached(directory: Path, train: Trainer, kind: str = "organism") -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and truth from ``directory``, or ``train()``-ed and saved there (hash checked)."""
    weights, truth_path = directory / "model.safetensors", directory / "truth.json"
    if weights.is_file() and truth_path.is_file():
        try:
            truth = json.loads(truth_path.read_text("utf-8"))
            if hashlib.sha256(weights.read_bytes()).hexdigest() != truth.get("weights_sha256"):
                raise WeightsError(f"{weights} does not match the SHA-256 in truth.json")
            return load_tensors(weights), truth
        except (WeightsError, json.JSONDecodeError) as exc:
            _log.warning("rebuilding %s in %s: %s", kind, directory, str(exc).splitlines()[0])
    state, truth = train()
    save_tensors(weights, state)
    truth["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    atomic_write_text(truth_path, json.dumps(truth, indent=2, sort_keys=True))
    return state, truth
