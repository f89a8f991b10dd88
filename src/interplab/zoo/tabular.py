"""Decision organisms on tabular data, each with a known reason where one exists.

    credit-rule    MLP on German credit relabelled by a sparse scorecard (models.tabular.SCORECARD):
                   the true reason of every decision is the scorecard; the MLP must agree with
                   the rule on ≥ 98 % of held-out applicants (checked when built)
    credit-linear  logistic regression on the real labels: exact Shapley values in logit space
                   are coef · (enc(x) − E[enc(x)]) (the oracle, read from the stored weights)
    credit-mlp     MLP on the real labels: no oracle, only counterfactual checks apply
    cancer-mlp     MLP on scikit-learn's breast-cancer data (label: benign)
    digits-rule    MLP on 8×8 digits where a planted 3-pixel corner patch decides the class

Rows are split once (seeded): 60 % train (also the background/reference population methods
may use), 40 % test (the decisions that are explained and scored). A trained organism is cached
under ``cache_dir()/tabular/<name>-s<seed>/`` (safetensors + ``truth.json`` with a fingerprint of
everything it was built from and the weights' SHA-256); a stale or corrupt cache is rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interplab._config import cache_dir
from interplab.data import tabular as D
from interplab.errors import VerificationError, WeightsError, unknown_name
from interplab.models import tabular as T
from interplab.models import weights_cache
from interplab.models.io import atomic_write_text, load_tensors, save_tensors
from interplab.zoo.registry import ZooEntry

Tensor = torch.Tensor
FORMAT_VERSION = 1
MIN_RULE_ACCURACY = 0.98


@dataclass(frozen=True)
class TabularSpec:
    name: str
    description: str
    data: str  # "german_credit" | "breast_cancer" | "digits_patch"
    labels: str  # "real" | "scorecard" | "patch"
    train: T.TrainConfig
    n_synthetic: int = 0  # product-of-marginals rows labelled by the rule (rule organisms)


SPECS: dict[str, TabularSpec] = {
    s.name: s
    for s in (
        TabularSpec(
            "credit-rule",
            "MLP on German credit relabelled by a 4-feature scorecard (known reason)",
            "german_credit",
            "scorecard",
            T.TrainConfig(hidden=(32, 16), steps=1200, lr=0.01, batch_size=256, smoothing=0.02),
            n_synthetic=20000,
        ),
        TabularSpec(
            "credit-linear",
            "logistic regression on German credit (exact Shapley oracle)",
            "german_credit",
            "real",
            T.TrainConfig(hidden=(), weight_decay=1e-3),
        ),
        TabularSpec(
            "credit-mlp",
            "MLP on German credit's real labels (no oracle)",
            "german_credit",
            "real",
            T.TrainConfig(hidden=(32, 16), steps=300, weight_decay=1e-2),
        ),
        TabularSpec(
            "cancer-mlp",
            "MLP on scikit-learn's breast-cancer data",
            "breast_cancer",
            "real",
            T.TrainConfig(hidden=(32, 16), steps=300),
        ),
        TabularSpec(
            "digits-rule",
            "MLP on 8×8 digits whose class is decided by a planted 3-pixel patch",
            "digits_patch",
            "patch",
            T.TrainConfig(hidden=(32,), steps=600, lr=0.01, batch_size=256, smoothing=0.02),
            n_synthetic=10000,
        ),
    )
}
ORGANISMS = tuple(SPECS)


@dataclass
class TabularOrganism:
    """A trained decision model, its data split and its truth (see the module docstring)."""

    name: str
    model: T.TabularNet
    data: D.TabularData
    train_idx: Tensor
    test_idx: Tensor
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> tuple[D.Feature, ...]:
        return self.data.features

    @property
    def background(self) -> Tensor:
        """The training rows [n_train, feature]: the reference population methods may use."""
        return self.data.x[self.train_idx]

    @property
    def test_rows(self) -> Tensor:
        return self.data.x[self.test_idx]

    def true_features(self) -> tuple[str, ...] | None:
        """The features that decide, where planted (rule organisms); None otherwise."""
        return tuple(self.truth["features"]) if "features" in self.truth else None

    def true_attributions(self, x: Tensor) -> Tensor | None:
        """Exact per-feature contributions [n, feature] where known, else None:
        credit-linear: coef · (enc(x) − E[enc]) summed per feature (logit units, the oracle);
        credit-rule: the scorecard's points minus their mean over the training rows."""
        if self.truth.get("kind") == "linear":
            coef = torch.tensor(self.truth["coef"], dtype=torch.float64)
            mean = torch.tensor(self.truth["encoded_mean"], dtype=torch.float64)
            with torch.no_grad():
                contrib = (self.model.encode(x.double()) - mean) * coef
            return torch.stack([contrib[:, g].sum(1) for g in self.truth["groups"]], 1)
        if self.truth.get("kind") == "scorecard":
            names = self.data.names
            pts = T.scorecard_points(x, names) - T.scorecard_points(self.background, names).mean(0)
            out = torch.zeros(x.shape[0], len(names), dtype=torch.float64)
            for k, feat in enumerate(T.SCORECARD):
                out[:, names.index(feat)] = -pts[:, k]  # points count against approval
            return out
        return None


def _data(spec: TabularSpec, seed: int) -> D.TabularData:
    if spec.data == "german_credit":
        return D.german_credit()
    if spec.data == "breast_cancer":
        return D.breast_cancer()
    return T.plant_patch(D.digits(), seed)


def _split(n: int, seed: int) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1000 + seed))
    cut = n * 6 // 10
    return perm[:cut].sort().values, perm[cut:].sort().values


def fingerprint(spec: TabularSpec, data: D.TabularData, seed: int) -> str:
    fields = {
        "spec": repr(spec),
        "data": data.digest,
        "seed": seed,
        "version": FORMAT_VERSION,
        "scorecard": repr(T.SCORECARD),
        "cutoff": T.SCORECARD_CUTOFF,
        "patch": repr(T.PATCH_PIXELS),
    }
    return weights_cache.digest(fields)


def organism_dir(name: str, seed: int) -> Path:
    return cache_dir() / "tabular" / f"{name}-s{seed}"


def _labels(spec: TabularSpec, data: D.TabularData, x: Tensor) -> Tensor:
    if spec.labels == "scorecard":
        return T.scorecard_approves(x, data.names)
    if spec.labels == "patch":
        return (x[:, T.patch_index()].sum(1) >= T.PATCH_MIN_SUM).long()
    raise AssertionError(spec.labels)


def _train(
    spec: TabularSpec, data: D.TabularData, train_idx: Tensor, test_idx: Tensor, seed: int
) -> tuple[T.TabularNet, dict[str, Any]]:
    x, y = data.x[train_idx], data.y[train_idx]
    if spec.n_synthetic:
        x = torch.cat([x, T.product_sample(x, spec.n_synthetic, seed + 7)])
    if spec.labels != "real":
        y = _labels(spec, data, x)
    cfg = T.TrainConfig(**{**vars(spec.train), "seed": seed})
    model = T.fit(x, y, data.features, cfg)
    with torch.no_grad():
        pred = (model(data.x[test_idx]) > 0).long()
    truth: dict[str, Any] = {
        "kind": "none",
        "test_accuracy": float((pred == data.y[test_idx]).double().mean()),
    }
    if spec.labels == "scorecard":
        rule = T.scorecard_approves(data.x[test_idx], data.names)
        truth = {
            "kind": "scorecard",
            "features": list(T.SCORECARD),
            "cutoff": T.SCORECARD_CUTOFF,
            "points": {
                k: [op, list(c) if isinstance(c, tuple) else c, p]
                for k, (op, c, p) in T.SCORECARD.items()
            },
            "accuracy_vs_rule": float((pred == rule).double().mean()),
        }
    elif spec.labels == "patch":
        rule = _labels(spec, data, data.x[test_idx])
        truth = {
            "kind": "patch",
            "features": [data.names[i] for i in T.patch_index()],
            "min_sum": T.PATCH_MIN_SUM,
            "accuracy_vs_rule": float((pred == rule).double().mean()),
        }
    elif model.linear is not None:
        with torch.no_grad():
            truth = {
                **truth,
                "kind": "linear",
                "coef": model.linear.weight[0].tolist(),
                "intercept": float(model.linear.bias[0]),
                "groups": model.groups,
                "encoded_mean": model.encode(data.x[train_idx]).mean(0).tolist(),
            }
    if "accuracy_vs_rule" in truth and truth["accuracy_vs_rule"] < MIN_RULE_ACCURACY:
        raise VerificationError(
            f"{spec.name} (seed {seed}) agrees with its planted rule on "
            f"{truth['accuracy_vs_rule']:.3f} of held-out rows; it needs ≥ "
            f"{MIN_RULE_ACCURACY}. Train longer or try another seed."
        )
    return model, truth


def load(name: str, seed: int = 0, *, retrain: bool = False) -> TabularOrganism:
    """The organism ``name`` (trained on first use, then read from the cache)."""
    if name not in SPECS:
        raise unknown_name("tabular organism", name, ORGANISMS)
    return _load(name, seed, retrain)


@functools.lru_cache(maxsize=16)
def _cached(name: str, seed: int) -> TabularOrganism:
    return _load(name, seed, False)


def get(name: str, seed: int = 0) -> TabularOrganism:
    """Like :func:`load`, memoised in this process."""
    if name not in SPECS:
        raise unknown_name("tabular organism", name, ORGANISMS)
    return _cached(name, seed)


def _load(name: str, seed: int, retrain: bool) -> TabularOrganism:
    """Load or train under the entry's lock (:func:`interplab.models.weights_cache.entry_lock`),
    so that two processes asking for one organism at once train it once."""
    with weights_cache.entry_lock(organism_dir(name, seed)):
        return _load_entry(name, seed, retrain)


def _load_entry(name: str, seed: int, retrain: bool) -> TabularOrganism:
    spec = SPECS[name]
    data = _data(spec, seed)
    train_idx, test_idx = _split(data.x.shape[0], seed)
    directory = organism_dir(name, seed)
    stored = _read_json(directory / "truth.json")
    fp = fingerprint(spec, data, seed)
    if stored.get("fingerprint") == fp and not retrain:
        try:
            weights = directory / "model.safetensors"
            if hashlib.sha256(weights.read_bytes()).hexdigest() != stored.get("weights_sha256"):
                raise WeightsError(f"{weights} does not match the hash in truth.json")
            model = T.TabularNet(data.features, spec.train.hidden)
            model.load_state_dict(load_tensors(weights))
            return TabularOrganism(name, model.eval(), data, train_idx, test_idx, stored["truth"])
        except (WeightsError, OSError, RuntimeError) as exc:
            logging.getLogger("interplab.zoo").warning(
                "rebuilding %s: unusable cache (%s)", name, str(exc).splitlines()[0]
            )
    model, truth = _train(spec, data, train_idx, test_idx, seed)
    save_tensors(directory / "model.safetensors", model.state_dict())
    sha = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    atomic_write_text(
        directory / "truth.json",
        json.dumps(
            {
                "version": FORMAT_VERSION,
                "name": name,
                "seed": seed,
                "fingerprint": fp,
                "weights_sha256": sha,
                "hidden": list(spec.train.hidden),
                "source": data.source,
                "truth": truth,
            },
            indent=1,
            sort_keys=True,
        ),
    )
    return TabularOrganism(name, model, data, train_idx, test_idx, truth)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def entries() -> list[ZooEntry]:
    """Every tabular organism (tags: "trained", "tabular", "rationales")."""
    return [
        ZooEntry(
            name,
            "trained",
            spec.description,
            lambda name=name: get(name),  # type: ignore[misc]  # mypy: lambda with a default
            frozenset(
                {"trained", "tabular", "rationales"}
                | ({"quick"} if name in ("credit-rule", "credit-linear") else set())
            ),
        )
        for name, spec in SPECS.items()
    ]
