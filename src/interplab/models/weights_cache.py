"""The on-disk weights cache: every builder that writes under ``cache_dir()`` goes through here.

Two kinds of entry share one lock and one hash check:

- trained organisms (:func:`cached`): ``model.safetensors`` + ``truth.json`` in a directory named
  by a fingerprint of the spec that built them (:func:`digest`, :func:`fingerprint`). The truth
  records the weights' SHA-256; a file that does not match (or an unreadable truth) is rebuilt
  with a warning, never trusted.
- converted pretrained weights (:func:`cached_state_dict`): dequantising a GGUF file takes
  10-60 s on a small machine, so the result is saved once under
  ``<cache>/pretrained/<name>-<sha256 of the source, 16 hex>.safetensors`` with a sidecar
  holding the SHA-256 of the saved bytes; a missing, truncated or altered file is rebuilt.

One lock per entry: a build holds an exclusive file lock (:func:`entry_lock`, a ``.lock`` file
beside the entry) and looks in the cache again once it holds it, so two processes asking for
the same entry at once (parallel bench jobs) build it once: the second waits for the first and
then reads what it wrote. A cache hit found before the lock takes no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from interplab import _config
from interplab.errors import WeightsError
from interplab.models.io import (
    HASH_KEY,
    SIDECAR_NAME,
    WEIGHTS_NAME,
    atomic_write_text,
    file_lock,
    load_model,
    load_tensors,
    read_sidecar,
    save_model,
    save_tensors,
)

_log = logging.getLogger("interplab.zoo")  # the organisms' logger, as before the move
Trainer = Callable[[], "tuple[dict[str, torch.Tensor], dict]"]
#: a task check of a loaded model: None when it does its task, else why not (one line)
TaskCheck = Callable[[Any], "str | None"]


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


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_path(name: str, source: str | Path) -> Path:
    """Where the converted weights of ``source`` (a model file) are cached."""
    return _config.cache_dir() / "pretrained" / f"{name}-{file_sha256(source)[:16]}.safetensors"


def cached_state_dict(
    name: str, source: str | Path, build: Callable[[], dict[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, whether it came from the cache). ``build()`` converts the source; it runs
    under the entry's lock, after a second look in the cache."""
    path = cache_path(name, source)
    hit = _load_converted(path)
    if hit is not None:
        return hit, True
    with entry_lock(path):
        hit = _load_converted(path)  # another process may have converted it meanwhile
        if hit is not None:
            return hit, True
        tensors = build()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(path, tensors, metadata={"source_sha256": file_sha256(source), "name": name})
        atomic_write_text(path.with_suffix(".sha256"), file_sha256(path))
    return tensors, False


def _load_converted(path: Path) -> dict[str, torch.Tensor] | None:
    """The converted weights at ``path`` if they match their sidecar hash, else None."""
    sidecar = path.with_suffix(".sha256")
    if path.is_file() and sidecar.is_file():
        if file_sha256(path) == sidecar.read_text().strip():
            try:
                return load_tensors(path)
            except WeightsError:
                pass
    return None


def cached_model(
    directory: Path,
    name: str,
    train: Callable[[], tuple[Any, dict]],
    *,
    use_cache: bool = True,
    check: TaskCheck | None = None,
) -> tuple[Any, dict]:
    """The model (a HookedTransformer) cached in ``directory``, or ``train()``-ed (and saved
    there when ``use_cache``, under the entry's lock, so that two processes asking for one
    organism at once train it once). A cache that cannot be loaded (corrupt weights, a hash
    mismatch, a broken sidecar: any WeightsError) is rebuilt with a one-line warning on the
    ``interplab.zoo`` logger. ``info["train_seconds"]``: how long ``train()`` took.

    A cache written before sidecars held a weights hash has nothing to check its bytes
    against: it is hashed on first use and, with ``check`` (the organism's task check: None
    when the model does its task, else why not), used only if the loaded model passes it;
    the hash is then recorded, so every later load verifies it. One that fails is rebuilt
    with a warning, never used. Without ``check`` such a cache loads as before, unverified."""
    if not use_cache:
        return _model_entry(directory, name, train, use_cache=False)
    with entry_lock(directory):
        return _model_entry(directory, name, train, check=check)


def _model_entry(
    directory: Path,
    name: str,
    train: Callable[[], tuple[Any, dict]],
    *,
    use_cache: bool = True,
    check: TaskCheck | None = None,
) -> tuple[Any, dict]:
    """:func:`cached_model` without the lock (the caller holds it, or does not cache)."""
    if use_cache and (directory / SIDECAR_NAME).is_file():
        try:
            unhashed = HASH_KEY not in read_sidecar(directory)
            model, info = load_model(directory, name=name)
            if unhashed and check is not None:
                _verify_unhashed(directory, model, check)
            return model, info
        except WeightsError as exc:
            _log.warning(
                "rebuilding organism %s: its cache in %s is unusable (%s)",
                name,
                directory,
                str(exc).splitlines()[0],
            )
    start = time.perf_counter()
    model, info = train()
    info["train_seconds"] = time.perf_counter() - start
    if use_cache:
        save_model(directory, model, extra=info)
    return model, info


def _verify_unhashed(directory: Path, model: Any, check: TaskCheck) -> None:
    """Run ``check`` on a model whose cache recorded no weights hash; record the hash when it
    passes (WeightsError when it fails: the caller rebuilds)."""
    problem = check(model)
    if problem is not None:
        raise WeightsError(
            f"its weights have no recorded SHA-256 and the model fails its task check "
            f"({' '.join(str(problem).split())})"
        )
    sidecar_path = directory / SIDECAR_NAME
    data = json.loads(sidecar_path.read_text("utf-8"))
    data[HASH_KEY] = file_sha256(directory / WEIGHTS_NAME)
    atomic_write_text(sidecar_path, json.dumps(data, indent=2, sort_keys=True))
