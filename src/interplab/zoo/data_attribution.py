"""Data-attribution organisms: small digit classifiers with recorded training data and planted truth.

Each organism is a :class:`~interplab.models.classifiers.ClassifierSpec` trained on a
:func:`~interplab.data.digits.planted_digits` split (10% flipped labels, a few planted
trigger examples), or on :func:`~interplab.data.passages.planted_passages` text (``passages-*``;
``passages-transformer`` is a
:class:`~interplab.models.transformer_classifier.TransformerClassifierSpec`). It is cached under ``cache_dir()/data_attribution/<name>-<fingerprint>/``::

    model.safetensors   theta and the training checkpoints
    data.safetensors    the training data as trained on, the test and triggered inputs, and the
                        planted truth (flipped and planted indices)
    organism.json       spec, fingerprint, SHA-256 of both files

The retraining ground truth (:mod:`interplab.zoo.retraining_truth`) is cached beside them.
A cached organism whose files do not match their recorded hashes is rebuilt. Each is built
under its entry's file lock, so parallel jobs never train the same organism twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from interplab._config import cache_dir
from interplab.core.threads import one_thread
from interplab.data.digits import PlantedDigits, planted_digits
from interplab.data.passages import planted_passages
from interplab.errors import ConfigError, WeightsError, unknown_name
from interplab.models import weights_cache
from interplab.models.classifiers import ClassifierSpec, TrainedClassifier, train_classifier
from interplab.models.io import atomic_write_text, load_tensors, read_json, save_tensors
from interplab.models.transformer_classifier import TransformerClassifierSpec
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
FORMAT_VERSION = 1
MODEL_FILE, DATA_FILE, SIDECAR = "model.safetensors", "data.safetensors", "organism.json"


@dataclass(frozen=True)
class DAOrganismSpec:
    """An organism and its ground-truth budget (every field enters the fingerprint)."""

    classifier: ClassifierSpec | TransformerClassifierSpec
    n_train: int = 300
    n_test: int = 50
    n_triggered: int = 20
    n_planted: int = 8
    flip_fraction: float = 0.1
    data_seed: int = 0
    n_subsets: int = 100  # LDS retrainings on random subsets
    subset_fraction: float = 0.5
    n_init_seeds: int = 3  # subset j retrains from init seed classifier.seed + j % n_init_seeds
    n_loo: int = 40  # leave-one-out retrainings (a seeded sample of training points)
    description: str = ""
    data: str = "digits"  # or "passages" (interplab.data.passages; n_triggered, n_planted unused)

    def to_json(self) -> dict:
        out = asdict(self)
        out["classifier"] = self.classifier.to_json()
        return out


_LOGREG = ClassifierSpec("logreg", weight_decay=1e-2, steps=100, lr=1.0, n_checkpoints=4)
_MLP = ClassifierSpec("mlp", n_hidden=32, weight_decay=1e-3, steps=300, lr=0.01, n_checkpoints=4)


def _digits_1000(classifier: ClassifierSpec, description: str) -> DAOrganismSpec:
    """A digits organism at the larger scale: 1000 training digits, a ground truth twice the size."""
    return DAOrganismSpec(
        classifier,
        n_train=1000,
        n_test=100,
        n_triggered=40,
        n_planted=16,
        n_subsets=200,
        description=description,
    )


SPECS: dict[str, DAOrganismSpec] = {
    "digits-logreg": DAOrganismSpec(_LOGREG, description="logistic regression, 300 digits"),
    "digits-mlp": DAOrganismSpec(_MLP, description="tanh MLP (64-32-10), 300 digits"),
    "digits-logreg-1000": _digits_1000(_LOGREG, "logistic regression, 1000 digits"),
    "digits-mlp-1000": _digits_1000(_MLP, "tanh MLP (64-32-10), 1000 digits"),
    "passages-mlp": DAOrganismSpec(
        ClassifierSpec(
            "mlp",
            n_in=48,
            n_classes=16,
            n_hidden=32,
            weight_decay=1e-3,
            steps=300,
            lr=0.01,
            n_checkpoints=4,
        ),
        n_train=300,
        n_test=50,
        data="passages",
        description="next-token MLP (3-token context) on synthetic text with 3 planted passages",
    ),
    # 100 subset + 20 leave-one-out retrainings (~1-1.5 s each): a ground truth of ~100 s on one core
    "passages-transformer": DAOrganismSpec(
        TransformerClassifierSpec(
            n_classes=16,
            context=3,
            d_model=32,
            n_heads=1,
            d_mlp=64,
            n_layers=1,
            weight_decay=1e-3,
            steps=150,
            lr=0.02,
            n_checkpoints=4,
        ),
        n_train=300,
        n_test=50,
        data="passages",
        n_subsets=100,
        n_loo=20,
        description="1-layer causal transformer (d_model 32, 3-token context) on synthetic text with 3 "
        "planted passages",
    ),
}


def fingerprint(spec: DAOrganismSpec) -> str:
    """What an organism is trained from (spec and format version, not the description)."""
    fields = {k: v for k, v in spec.to_json().items() if k != "description"}
    if fields["data"] == "digits":  # added later: absent from the digits organisms' fingerprints
        del fields["data"]
    fields["version"] = FORMAT_VERSION
    return weights_cache.digest(fields)


@dataclass(frozen=True)
class DAOrganism:
    """A trained classifier with the data it was trained on and its planted truth."""

    name: str
    spec: DAOrganismSpec
    model: TrainedClassifier
    data: PlantedDigits
    fingerprint: str
    directory: Path


def organism_dir(name: str, spec: DAOrganismSpec) -> Path:
    return cache_dir() / "data_attribution" / f"{name}-{fingerprint(spec)}"


def get_spec(name: str) -> DAOrganismSpec:
    if name not in SPECS:
        raise unknown_name("data-attribution organism", name, tuple(SPECS))
    return SPECS[name]


def build(spec: DAOrganismSpec) -> tuple[TrainedClassifier, PlantedDigits]:
    """Draw the data and train the classifier (deterministic; no cache; one thread, restored after)."""
    if spec.data == "passages":
        data = planted_passages(
            spec.n_train, spec.n_test, flip_fraction=spec.flip_fraction, seed=spec.data_seed
        )
    else:
        data = planted_digits(
            spec.n_train,
            spec.n_test,
            spec.n_triggered,
            flip_fraction=spec.flip_fraction,
            n_planted=spec.n_planted,
            seed=spec.data_seed,
        )
    with one_thread():
        return train_classifier(spec.classifier, data.x_train, data.y_train), data


def load_or_train(name: str) -> DAOrganism:
    """The organism ``name`` (a key of :data:`SPECS`), trained on first use and cached. The build
    holds the entry's lock (:func:`interplab.models.weights_cache.entry_lock`) and looks again once
    it has it, so parallel jobs train each organism once."""
    spec = get_spec(name)
    directory = organism_dir(name, spec)
    hit = _load_cached(name, directory, warn=False)
    if hit is not None:
        return hit
    with weights_cache.entry_lock(directory):
        hit = _load_cached(name, directory, warn=True)  # another process may have built it
        if hit is not None:
            return hit
        model, data = build(spec)
        save_organism(directory, name, spec, model, data)
    return DAOrganism(name, spec, model, data, fingerprint(spec), directory)


def _load_cached(name: str, directory: Path, warn: bool) -> DAOrganism | None:
    """The organism saved in ``directory``, or None when absent or unusable (with a warning)."""
    if not (directory / SIDECAR).is_file():
        return None
    try:
        return load_organism_dir(directory)
    except (WeightsError, ConfigError) as exc:
        if warn:
            logging.getLogger("interplab.zoo").warning(
                "rebuilding %s: its cache in %s is unusable (%s)",
                name,
                directory,
                str(exc).splitlines()[0],
            )
        return None


def _data_tensors(d: PlantedDigits) -> dict[str, Tensor]:
    return {
        "x_train": d.x_train,
        "y_train": d.y_train,
        "y_clean": d.y_clean,
        "x_test": d.x_test,
        "y_test": d.y_test,
        "x_triggered": d.x_triggered,
        "y_triggered": d.y_triggered,
        "flipped": d.flipped,
        "planted": d.planted,
        "source_index": d.source_index,
        "target": torch.tensor([d.target]),
        "triggered_labels": d.triggered_labels,
        "planted_group": d.planted_group,
        "triggered_group": d.triggered_group,
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_organism(
    directory: Path, name: str, spec: DAOrganismSpec, model: TrainedClassifier, data: PlantedDigits
) -> None:
    tensors = {
        "theta": model.theta.clone(),
        **{f"checkpoint{k}": c for k, c in enumerate(model.checkpoints)},
    }
    save_tensors(directory / MODEL_FILE, tensors)
    save_tensors(directory / DATA_FILE, _data_tensors(data))
    sidecar = {
        "format": "interplab-data-attribution-organism",
        "version": FORMAT_VERSION,
        "name": name,
        "spec": spec.to_json(),
        "fingerprint": fingerprint(spec),
        "checkpoint_lr": list(model.checkpoint_lr),
        "sha256": {f: _sha(directory / f) for f in (MODEL_FILE, DATA_FILE)},
    }
    atomic_write_text(directory / SIDECAR, json.dumps(sidecar, indent=1, sort_keys=True))


def _spec_from_json(raw: dict) -> DAOrganismSpec:
    try:
        kind = (
            TransformerClassifierSpec
            if raw["classifier"].get("kind") == "transformer"
            else ClassifierSpec
        )
        return DAOrganismSpec(**{**raw, "classifier": kind(**raw["classifier"])})
    except (TypeError, KeyError) as exc:
        raise WeightsError(f"the organism spec in {SIDECAR} is invalid ({exc})") from None


def load_organism_dir(directory: str | Path) -> DAOrganism:
    """Load a saved organism. Raises ConfigError when its training data was not recorded (no
    ``data.safetensors``: attribution to training examples needs them), WeightsError when a file
    is corrupt or does not match the hash the sidecar recorded."""
    directory = Path(directory)
    side = directory / SIDECAR
    if not side.is_file():
        raise ConfigError(
            f"{directory} holds no {SIDECAR}; a data-attribution organism directory is "
            f"written by interplab.zoo.data_attribution.save_organism"
        )
    meta = read_json(side, f"delete {directory} to rebuild")
    if not (directory / DATA_FILE).is_file():
        raise ConfigError(
            f"the training data of the model in {directory} was not recorded (no "
            f"{DATA_FILE}): training-data attribution needs the examples the model was "
            "trained on; save the model with save_organism(..., data)"
        )
    for f in (MODEL_FILE, DATA_FILE):
        if not (directory / f).is_file() or _sha(directory / f) != meta.get("sha256", {}).get(f):
            raise WeightsError(
                f"{directory / f} is missing or differs from the SHA-256 {SIDECAR} "
                "recorded; delete the directory to rebuild the organism"
            )
    spec = _spec_from_json(meta.get("spec", {}))
    w, d = load_tensors(directory / MODEL_FILE), load_tensors(directory / DATA_FILE)
    ckpts = tuple(w[f"checkpoint{k}"] for k in range(len(meta["checkpoint_lr"])))
    model = TrainedClassifier(spec.classifier, w["theta"], ckpts, tuple(meta["checkpoint_lr"]))
    data = PlantedDigits(
        d["x_train"],
        d["y_train"],
        d["y_clean"],
        d["x_test"],
        d["y_test"],
        d["x_triggered"],
        d["y_triggered"],
        d["flipped"],
        d["planted"],
        int(d["target"][0]),
        d["source_index"],
        # older caches lack these three: None makes PlantedDigits fill them in __post_init__
        d.get("triggered_labels"),  # type: ignore[arg-type]
        d.get("planted_group"),  # type: ignore[arg-type]
        d.get("triggered_group"),  # type: ignore[arg-type]
    )
    return DAOrganism(
        meta.get("name", directory.name), spec, model, data, meta["fingerprint"], directory
    )


def entries() -> list[ZooEntry]:
    """Every data-attribution organism (tags "trained", "data_attribution"); builds train on
    first use and cache, as :func:`load_or_train` does."""
    return [
        ZooEntry(
            name,
            "trained",
            f"data attribution: {spec.description}",
            lambda name=name: load_or_train(name),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset({"trained", "data_attribution"}),
        )
        for name, spec in SPECS.items()
    ]
