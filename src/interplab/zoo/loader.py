"""The one loader: ``interplab.organism(name, seed=0) -> Organism`` for every family of the zoo.

The registry (:mod:`interplab.zoo.registry`) says which family module defines a name; the family's
builder returns its own object (a compiled model, a trained organism, a tabular model ...) and this
module puts it under the contract (:mod:`interplab.zoo.contract`): the model, the task data by role,
the typed truth with the checks that verified it in the weights, and the rows the truth used.

    import interplab as ip
    org = ip.organism("compiled-reverse")        # Organism(name, family, seed, model, tasks, truth, info)
    org.truth.per_ablation["zero"]                # a Circuit, verified by single-edge ablation
    org.check_independent()                       # the truth used no scoring row (or it raises)

Families whose truth is a circuit (compiled, trained, SIIT, generated) are built by
:mod:`interplab.zoo.circuit_organisms`; the others are wrapped here from the family's object, whose
own builder runs that family's verification (rule agreement, trojan units by ablation, planted
memorisation by retraining) and raises :class:`~interplab.errors.VerificationError` when it fails.

Every organism this loader returns or refuses leaves a record of the outcome in the cache
(:func:`verification`: ``<cache>/zoo/verified/<name>-s<seed>.json``, plain JSON), so that
``interplab zoo --json`` can say which organisms are built and verified without importing torch
or knowing each family's cache layout. This module imports no torch at its top (the contract
types are imported by the functions that build organisms): the listing imports it for
:func:`truth_kind` and :func:`verification`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interplab._config import cache_dir
from interplab.errors import ConfigError, VerificationError

if TYPE_CHECKING:
    from interplab.zoo.contract import Organism

__all__ = ["FAMILY_TRUTH", "NOT_BUILT", "organism", "truth_kind", "verification"]

_log = logging.getLogger("interplab.zoo")
#: what :func:`verification` says of an organism this cache has no record of
NOT_BUILT = "not yet built"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def organism(name: str, seed: int = 0) -> Organism:
    """The organism ``name`` (any zoo name: ``interplab zoo`` lists them) under ``seed``, with its
    truth verified in its weights. Unknown names raise UnknownNameError listing close matches; a
    truth that fails its check raises VerificationError naming what failed."""
    from interplab.zoo.registry import entry

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    e = entry(name)
    if "controls" in e.tags:
        from interplab.zoo.contract import Organism

        control = Organism(
            name,
            e.family,
            seed,
            e.build(),
            {},
            None,  # type: ignore[arg-type]
            {"kind": e.kind, "note": "a control: no truth"},
        )
        _record(name, seed, e.family, False, "a control: no truth to verify")
        return control
    wrap = _contract(e.family)[1]
    if wrap is None:
        raise ConfigError(
            f"{name}: family {e.family} has no organism contract yet; "
            f"add a wrapper to interplab.zoo.loader"
        )
    try:
        org = wrap(name, seed, e)
    except VerificationError as exc:
        _record(name, seed, e.family, False, str(exc).splitlines()[0] if str(exc) else "")
        raise
    _record(name, seed, e.family, True, "")
    return org


def _record_path(name: str, seed: int) -> Path | None:
    """Where organism ``name`` at ``seed`` records its verification (None: a name that is not
    a plain file name, which is then never recorded)."""
    if not _SAFE_NAME.fullmatch(name):
        return None
    return cache_dir() / "zoo" / "verified" / f"{name}-s{seed}.json"


def _record(name: str, seed: int, family: str, verified: bool, reason: str) -> None:
    """Write the outcome of loading ``name`` under the contract (atomically); a cache that
    cannot be written is logged, never an error: the organism itself loaded (or failed) as it
    would without the record."""
    from interplab import __version__
    from interplab.models.io import atomic_write_text  # the caller has imported torch already

    path = _record_path(name, seed)
    if path is None:
        return
    data = {
        "name": name,
        "seed": seed,
        "family": family,
        "verified": verified,
        "reason": reason,
        "interplab": __version__,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))
    except OSError as exc:
        _log.warning("could not record the verification of %s in %s: %s", name, path, exc)


def verification(name: str, seed: int = 0) -> bool | str:
    """Whether organism ``name`` at ``seed`` was verified when this cache last loaded it
    through :func:`organism`: True (its truth passed its checks in the weights), False (it was
    refused, or it is a control with no truth), or :data:`NOT_BUILT` (no record: never loaded
    here, or recorded by another interplab version, whose builders may differ). Reads one small
    JSON file; imports nothing."""
    from interplab import __version__

    path = _record_path(name, seed)
    if path is None or not path.is_file():
        return NOT_BUILT
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return NOT_BUILT  # unreadable: as if never recorded (the next load rewrites it)
    if not isinstance(data, dict) or data.get("interplab") != __version__:
        return NOT_BUILT
    verified = data.get("verified")
    return verified if isinstance(verified, bool) else NOT_BUILT


def _circuit(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo.circuit_organisms import circuit_organism

    return circuit_organism(name, seed)


def _tabular(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo import tabular
    from interplab.zoo.contract import Organism, PlantedTruth, row_digests

    obj = tabular.get(name, seed)
    content = dict(obj.truth)
    checks: dict[str, Any] = {
        k: content[k] for k in ("accuracy_vs_rule", "test_accuracy", "intervention") if k in content
    }
    truth = PlantedTruth(
        content,
        f"{content.get('kind', 'none')} rule planted in the labels; "
        f"agreement with it checked on held-out rows (≥ {tabular.MIN_RULE_ACCURACY})",
        row_digests(obj.background),
        checks,
    )
    return Organism(
        name,
        "interplab.zoo.tabular",
        seed,
        obj.model,
        {"score": obj.test_rows},
        truth,
        {"object": obj, "features": obj.features},
    )


def _fairness(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo import fairness
    from interplab.zoo.contract import Organism, PlantedTruth, row_digests

    obj = fairness.get(name, seed)  # its truth re-verified on the held-out rows (refuses if not)
    content = dict(obj.truth)
    truth = PlantedTruth(
        content,
        "proxy reliance planted in the labels (none/weak/strong); checked by flipping the proxy "
        "and the decoy on held-out rows (interplab.zoo.fairness.verify)",
        row_digests(obj.background),
        dict(content["checks"]),
    )
    return Organism(
        name,
        "interplab.zoo.fairness",
        seed,
        obj.model,
        {"score": obj.test_rows},
        truth,
        {"object": obj, "features": obj.features},
    )


def _trojan(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo import trojans
    from interplab.zoo.contract import Organism, UnitTruth

    obj = trojans.load(name)
    checks = {"verification": obj.info["verification"]} if "verification" in obj.info else {}
    truth = UnitTruth(
        tuple(obj.truth_units),
        obj.trigger,
        obj.target if obj.trojaned else None,
        "trigger and target planted by poisoning; the units that carry the trojan "
        "verified by ablation on a split the scores never use",
        frozenset(),
        checks,
    )
    return Organism(
        name,
        "interplab.zoo.trojans",
        seed,
        obj.model,
        {},
        truth,
        {"object": obj, "trojaned": obj.trojaned, **obj.info},
    )


def _data_attribution(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo import data_attribution
    from interplab.zoo.contract import Organism, RetrainingTruth

    obj = data_attribution.load_or_train(name)
    truth = RetrainingTruth(
        {"spec": obj.spec, "data": obj.data},
        "planted examples and mislabels recorded when the data was drawn; "
        "LDS and leave-one-out retrainings computed by retraining",
        frozenset(),
        {"fingerprint": obj.fingerprint},
    )
    return Organism(
        name,
        "interplab.zoo.data_attribution",
        seed,
        obj.model,
        {},
        truth,
        {"object": obj, "directory": str(obj.directory)},
    )


def _copyright(name: str, seed: int, _e: Any) -> Organism:
    from interplab.zoo import copyright
    from interplab.zoo.contract import Organism, RetrainingTruth

    obj = copyright.load(name, seed)  # re-measured in the weights when built (refuses if not)
    truth = RetrainingTruth(
        {
            "items": {
                i.key: {"kind": i.kind, "sources": list(i.sources)} for i in obj.corpus.items
            },
            "dropped": dict(obj.truth["dropped"]),
        },
        "passages, facts and letter styles planted in the fine-tuning documents; each checked by "
        "greedy decoding in the fine-tuned model, the base model and a retraining without the "
        "planted documents (interplab.zoo.copyright)",
        frozenset(),
        {"summary": obj.truth["summary"], "rule": obj.truth["rule"]},
    )
    return Organism(
        name,
        "interplab.zoo.copyright",
        seed,
        obj.model,
        {},
        truth,
        {"object": obj, "directory": str(obj.directory)},
    )


def _cue(module: str) -> Callable[[str, int, Any], Organism]:
    def wrap(name: str, seed: int, _e: Any) -> Organism:
        import importlib

        from interplab.zoo.contract import Organism, PlantedTruth

        obj = importlib.import_module(module).load(name, seed)
        content = dict(obj.truth)
        checks = {"cue_flip_rate": content.get("cue_flip_rate")}  # checked when loaded (verify_cue)
        truth = PlantedTruth(
            content,
            "a cue planted equal to the label in training; its effect "
            "checked by flipping the cue on held-out rows",
            frozenset(),
            checks,
        )
        return Organism(name, module, seed, obj.model, {}, truth, {"object": obj})

    return wrap


#: family module -> (the kind of truth it carries, how its object comes under the contract)
_FAMILIES: dict[str, tuple[str, Callable[[str, int, Any], Organism]]] = {
    "interplab.zoo.compiled": ("circuit", _circuit),
    "interplab.zoo.organisms": ("circuit", _circuit),
    "interplab.zoo.siit": ("circuit", _circuit),
    "interplab.zoo.siit_generated": ("circuit", _circuit),
    "interplab.zoo.generated": ("circuit", _circuit),
    "interplab.zoo.perturbed": ("circuit", _circuit),
    "interplab.zoo.tabular": ("planted", _tabular),
    "interplab.zoo.fairness": ("planted", _fairness),
    "interplab.zoo.trojans": ("units", _trojan),
    "interplab.zoo.data_attribution": ("retraining", _data_attribution),
    "interplab.zoo.copyright": ("retraining", _copyright),
    "interplab.zoo.spurious": ("planted", _cue("interplab.zoo.spurious")),
    "interplab.zoo.bios": ("planted", _cue("interplab.zoo.bios")),
}
#: the kind of truth each built-in family carries
FAMILY_TRUTH = {module: kind for module, (kind, _) in _FAMILIES.items()}


def _contract(module: str) -> tuple[str | None, Callable[[str, int, Any], Organism] | None]:
    from interplab.zoo.registry import added_contract

    found = _FAMILIES.get(module) or added_contract(module)
    return found if found is not None else (None, None)


def truth_kind(module: str) -> str:
    """The kind of truth the family ``module`` carries ("none" for an unknown module)."""
    return _contract(module)[0] or "none"
