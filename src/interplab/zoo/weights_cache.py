"""One on-disk cache for trained organisms: ``model.safetensors`` + ``truth.json`` in a directory
named by a fingerprint of the spec that built them. The truth records the weights' SHA-256; a
file that does not match (or an unreadable truth) is rebuilt with a warning, never trusted.

One lock per entry: a build holds an exclusive file lock (:func:`entry_lock`, a ``.lock`` file
beside the entry's directory) and looks in the cache again once it holds it, so two processes
asking for the same entry at once (parallel bench jobs) build it once: the second waits for the
first and then reads what it wrote. A cache hit takes no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from interplab.errors import WeightsError
from interplab.models.io import atomic_write_text, file_lock, load_tensors, save_tensors

_log = logging.getLogger("interplab.zoo")
Trainer = Callable[[], "tuple[dict[str, torch.Tensor], dict]"]


def digest(data: Any) -> str:
    """16 hex digits of the SHA-256 of ``data`` as sorted-key JSON: a cache key for what was built."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(obj: Any, version: int) -> str:
    """16 hex digits identifying ``repr(obj)`` under a cache format ``version``."""
    return digest({"spec": repr(obj), "version": version})


def lock_path(entry: Path, name: str = "") -> Path:
    """The lock file of cache entry ``entry`` (a directory): ``<entry>.lock`` beside it, or
    ``<entry>.<name>.lock`` for a second thing built in the same entry (e.g. a truth)."""
    entry = Path(entry)
    return entry.with_name(f"{entry.name}.{name}.lock" if name else f"{entry.name}.lock")


@contextlib.contextmanager
def entry_lock(entry: Path, name: str = "") -> Iterator[None]:
    """Hold the exclusive lock of cache entry ``entry`` (see :func:`lock_path`) for the block:
    every builder of one entry takes it, then checks the cache again before building."""
    with file_lock(lock_path(entry, name)):
        yield


def _load(directory: Path, kind: str, warn: bool) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The entry's weights and truth if both are there and the hash matches, else None."""
    weights, truth_path = directory / "model.safetensors", directory / "truth.json"
    if not (weights.is_file() and truth_path.is_file()):
        return None
    try:
        truth = json.loads(truth_path.read_text("utf-8"))
        if hashlib.sha256(weights.read_bytes()).hexdigest() != truth.get("weights_sha256"):
            raise WeightsError(f"{weights} does not match the SHA-256 in truth.json")
        return load_tensors(weights), truth
    except (WeightsError, json.JSONDecodeError) as exc:
        if warn:
            _log.warning("rebuilding %s in %s: %s", kind, directory, str(exc).splitlines()[0])
        return None


def cached(
    directory: Path, train: Trainer, kind: str = "organism"
) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and truth from ``directory``, or ``train()``-ed and saved there (hash checked),
    under the entry's lock so that concurrent callers train it once."""
    directory = Path(directory)
    hit = _load(directory, kind, warn=False)
    if hit is not None:
        return hit
    with entry_lock(directory):
        hit = _load(directory, kind, warn=True)  # another process may have built it meanwhile
        if hit is not None:
            return hit
        state, truth = train()
        weights = directory / "model.safetensors"
        save_tensors(weights, state)
        truth["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        atomic_write_text(directory / "truth.json", json.dumps(truth, indent=2, sort_keys=True))
    return state, truth
