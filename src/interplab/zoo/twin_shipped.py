"""The SIIT twins shipped with interplab (package data): the manifest of every attempt and the
verified twins' files, loaded after a hash check and a quick re-verification.

Reading the manifest (:func:`shipped_manifest`, :func:`shipped_rows`, :func:`listing`) imports
nothing but the standard library; loading a twin (:func:`load_shipped`) imports the SIIT code.
The training side (which writes these files) is :mod:`interplab.zoo.twin_zoo`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

#: where the shipped twins live (inside the package, so an install brings them)
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "siit_generated"
MANIFEST = "manifest.json"
#: the generator seed and training seed of the shipped twins
SHIPPED_SEED = 0
#: held-out pairs in the quick re-verification run when a shipped twin is loaded
QUICK_PAIRS = 256
FILES = ("model.safetensors", "model.json", "siit_ground_truth.json")
_log = logging.getLogger("interplab.zoo")


def cache_dir_of(row: dict[str, Any]) -> Path:
    """Where the zoo cache keeps the twin of a manifest row."""
    from interplab.zoo.siit import organism_dir

    return organism_dir(row["name"], int(row["seed"]))


def _fmt(iia: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(iia.items()))


def shipped_manifest(root: Path | None = None) -> dict[str, Any]:
    """The shipped manifest ({} when none is shipped). Plain JSON: no torch. Parsed once per
    file version (the zoo asks for it once per listed twin)."""
    path = (root or SHIPPED) / MANIFEST
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _parsed(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _parsed(path: str, stamp: int) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shipped_rows(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every shipped attempt, by name (verified or not)."""
    return {r["name"]: r for r in shipped_manifest(root).get("twins", []) if "name" in r}


def listing(row: dict[str, Any]) -> dict[str, Any]:
    """How the zoo lists one attempt (kind, description, tags), stored in the manifest so that
    the registry lists the shipped twins from plain JSON: every attempt, a failed one said so,
    tagged "unverified" and with its numbers."""
    shape = f"{', '.join(row.get('constructs', []))}; depth {row.get('depth')}"
    iia = min(row["iia"].values()) if row.get("iia") else 0.0
    numbers = f"held-out IIA ≥ {iia:.2f}, task {row.get('task_accuracy', 0.0):.2f}"
    if row.get("verified"):
        text = f"SIIT-trained twin of {row.get('sibling')} ({shape}; {numbers})"
        tags = ["causal", "circuits", "generated", "shipped", "siit", "trained"]
    else:
        text = f"failed verification, not usable: twin of {row.get('sibling')} ({shape}; {numbers})"
        tags = ["generated", "siit", "unverified"]
    return {"kind": "trained", "description": text, "tags": tags}


def load_shipped(name: str, seed: int, spec: Any, min_iia: float, root: Path | None = None) -> Any:
    """The shipped twin ``name`` (trained for ``spec``) as a SIITOrganism, or None (with a
    warning saying why) when it is not shipped, its files are missing or corrupt, its recipe
    changed since it was shipped, or the quick held-out re-verification (IIA and task accuracy
    ≥ ``min_iia`` on :data:`QUICK_PAIRS` held-out pairs) fails."""
    from interplab.errors import WeightsError
    from interplab.models.io import load_model
    from interplab.zoo.siit import fingerprint, heldout_check, organism_of

    root = root or SHIPPED
    row = shipped_rows(root).get(name)
    if row is None or not row.get("verified") or int(row.get("seed", -1)) != seed:
        return None
    directory = root / name
    problem = None
    if row.get("fingerprint") != fingerprint(spec):
        problem = "its training recipe changed since it was shipped"
    else:
        for fname, digest in row.get("sha256", {}).items():
            path = directory / fname
            if not path.is_file():
                problem = f"{path} is missing"
                break
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                problem = f"{path} does not match its SHA-256 in the manifest (corrupt)"
                break
    model = None
    if problem is None:
        try:
            model, _ = load_model(directory, name=name)
        except WeightsError as exc:
            problem = str(exc).splitlines()[0]
    if model is not None:
        check = heldout_check(model, spec, seed, QUICK_PAIRS)
        worst = min(check["iia"].values())
        if worst < min_iia or check["task_accuracy"] < min_iia:
            problem = (
                f"its quick re-verification failed (IIA {_fmt(check['iia'])}, task "
                f"{check['task_accuracy']:.3f} on {check['n_heldout_pairs']} held-out pairs)"
            )
    if problem is not None:
        _log.warning("rebuilding shipped SIIT twin %s: %s", name, problem)
        return None
    assert model is not None
    _into_cache(directory, row)
    truth = json.loads((directory / "siit_ground_truth.json").read_text("utf-8"))
    report = {**truth["verification"], "quick_recheck": check, "shipped": True}
    return organism_of(spec, model, report)


def _into_cache(directory: Path, row: dict[str, Any]) -> None:
    """Copy a checked shipped twin into the zoo cache (where the truth and its checks read the
    weights from), unless the same files are there already."""
    from interplab.models.io import atomic_write_bytes

    cache = cache_dir_of(row)
    for fname, digest in sorted(row.get("sha256", {}).items(), key=lambda kv: kv[0] == FILES[2]):
        target = cache / fname  # the ground truth last: a directory with it is complete
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            continue
        atomic_write_bytes(target, (directory / fname).read_bytes())


__all__ = [
    "FILES",
    "MANIFEST",
    "QUICK_PAIRS",
    "SHIPPED",
    "SHIPPED_SEED",
    "cache_dir_of",
    "listing",
    "load_shipped",
    "shipped_manifest",
    "shipped_rows",
]
