"""Saving and loading native models: safetensors weights plus a JSON sidecar. No pickles.

Layout of a model directory::

    DIR/model.safetensors   the state_dict
    DIR/model.json          {"format": "interplab-model", "version": 1, "config": {...},
                             "weights_sha256": "<hex>", "extra": {...}}
                            (extra: e.g. a compiled model's ground truth)

``weights_sha256`` is the SHA-256 of the safetensors file's bytes; :func:`load_model` checks it
and raises WeightsError on a mismatch (flipped bits, a partial copy). Sidecars written before
the hash existed have no such key and load without the check (back-compatible); saving the
model again adds it.

Files are written atomically (temporary file, then rename), so an interrupted save never
leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
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
HASH_KEY = "weights_sha256"


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without a window where it is changed when Linux reports it
    (/proc/self/status); elsewhere set to 0 and restored at once, under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, give it the mode a
    plain ``open(path, "w")`` would have (0o666 minus the umask: tempfiles are 0600, but
    results and reports are meant to be shared) and rename it over ``path``. On error the
    temporary file is removed and ``path`` is untouched. Every atomic writer goes through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block, so that
    processes building the same cache entry take turns instead of duplicating the work
    (POSIX ``flock``; a no-op where it is unavailable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> bytes:
    from safetensors.torch import save

    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return save(clean, metadata=metadata)


def save_tensors(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically save a flat dict of tensors with safetensors."""
    atomic_write_bytes(path, _serialize(tensors, metadata))


def _read_weights(path: Path) -> bytes:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; save one first or check the path")
    return path.read_bytes()


def _parse(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError / ValueError
        raise WeightsError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated "
            "or corrupt: save or download it again"
        ) from None


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing, truncated or corrupt file raises WeightsError."""
    path = Path(path)
    return _parse(path, _read_weights(path))


def save_model(
    directory: str | os.PathLike, model: HookedTransformer, extra: dict[str, Any] | None = None
) -> Path:
    """Save weights and sidecar (with the weights' SHA-256) into ``directory`` (created if
    needed). Returns the directory."""
    directory = Path(directory)
    data = _serialize(model.model.state_dict(), None)
    atomic_write_bytes(directory / WEIGHTS_NAME, data)
    sidecar = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.cfg.to_json(),
        HASH_KEY: hashlib.sha256(data).hexdigest(),
        "extra": extra or {},
    }
    atomic_write_text(directory / SIDECAR_NAME, json.dumps(sidecar, indent=2, sort_keys=True))
    return directory


def read_json(path: Path, remedy: str) -> Any:
    """The JSON document in ``path``; WeightsError naming the file and ``remedy`` (what to do)
    when it does not parse."""
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); {remedy}") from None


def read_sidecar(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / SIDECAR_NAME
    if not path.is_file():
        raise WeightsError(
            f"no {SIDECAR_NAME} in {directory}; a model directory holds "
            f"{WEIGHTS_NAME} and {SIDECAR_NAME} (write them with save_model)"
        )
    data = read_json(path, "the sidecar is corrupt")
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise WeightsError(
            f"{path} is not an interplab model sidecar (format={data.get('format')!r}, "
            f"version={data.get('version')!r}; expected {FORMAT!r} version {VERSION})"
        )
    digest = data.get(HASH_KEY)
    if digest is not None and not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise WeightsError(
            f"{path} has an invalid {HASH_KEY} {digest!r} (expected 64 lowercase hex "
            f"digits, the SHA-256 of {WEIGHTS_NAME}); the sidecar is corrupt: save "
            "the model again (or delete the directory to rebuild a cached model)"
        )
    return data


def load_model(
    directory: str | os.PathLike, name: str | None = None
) -> tuple[HookedTransformer, dict[str, Any]]:
    """Load a model saved by :func:`save_model`. Returns (model, extra).

    Raises WeightsError when a file is missing or unreadable, when the weights do not fit the
    config, or when their SHA-256 differs from the one the sidecar recorded (a corrupt file).
    A sidecar without a recorded hash (written before it existed) loads without the check."""
    data = read_sidecar(directory)
    try:
        cfg = TransformerConfig.from_json(data["config"])
    except (ConfigError, TypeError, KeyError) as exc:
        raise WeightsError(f"the config in {directory}/{SIDECAR_NAME} is invalid: {exc}") from None
    model = HookedTransformer(cfg, name=name or Path(directory).name)
    path = Path(directory) / WEIGHTS_NAME
    raw = _read_weights(path)
    recorded, actual = data.get(HASH_KEY), hashlib.sha256(raw).hexdigest()
    corrupt = recorded is not None and recorded != actual
    state = _parse(path, raw)
    expected = model.model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}")
        if wrong:
            parts.append(f"shape mismatches {wrong[:5]}")
        if corrupt:
            parts.append(f"and its SHA-256 differs from the one {SIDECAR_NAME} recorded")
        raise WeightsError(
            f"weights in {directory} do not match its config: {'; '.join(parts)}. "
            "The sidecar and weights come from different models; save them together."
        )
    if corrupt:
        assert recorded is not None  # corrupt means a recorded hash that differs
        raise WeightsError(
            f"{path} is corrupt: its SHA-256 is {actual[:16]}…, but {SIDECAR_NAME} recorded "
            f"{recorded[:16]}… when it was saved (changed bytes on disk, or a partial copy). "
            f"Delete {directory} and rebuild the model (a cached organism is rebuilt on next use), "
            "or save it again from a good copy."
        )
    model.model.load_state_dict(state)
    return model, data.get("extra", {})
