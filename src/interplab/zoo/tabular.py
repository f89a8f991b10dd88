"""Decision organisms on tabular data, each with a known reason where one exists.

    credit-rule    MLP on German credit relabelled by a sparse scorecard (models.tabular.SCORECARD):
                   the true reason of every decision is the scorecard; the MLP must agree with
                   the rule on ≥ 98 % of held-out applicants (checked when built)
    credit-linear  logistic regression on the real labels: exact Shapley values in logit space
                   are coef · (enc(x) − E[enc(x)]) (the oracle, read from the stored weights)
    credit-mlp     MLP on the real labels: no oracle, only counterfactual checks apply
    cancer-mlp     MLP on scikit-learn's breast-cancer data (label: benign)
    digits-rule    MLP on 8×8 digits where a planted 3-pixel corner patch decides the class
    credit-tiers   three classes (refuse / review / approve) on German credit, decided by the
                   scorecard's points (≥ 4 refuse, 2–3 review, ≤ 1 approve): an MLP with three
                   class logits. Its truth (the 4 scorecard features decide the class, the other
                   16 do not) is verified when built, by intervening on the trained model on the
                   held-out rows: ≥ 98 % agreement with the rule; resampling the 16 other features
                   keeps ≥ 98 % of predicted classes; copying the scorecard features from training
                   rows of each class makes ≥ 98 % of rows predict that class

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
from torch import nn

from interplab._config import cache_dir
from interplab.core.threads import one_thread
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
    labels: str  # "real" | "scorecard" | "patch" | "tiers" (three classes)
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
        TabularSpec(
            "credit-tiers",
            "MLP with 3 classes (refuse/review/approve) on German credit decided by the "
            "scorecard's points (known reason)",
            "german_credit",
            "tiers",
            T.TrainConfig(hidden=(32, 16), steps=2000, lr=0.01, batch_size=256, smoothing=0.02),
            n_synthetic=20000,
        ),
    )
}
ORGANISMS = tuple(SPECS)
#: credit-tiers: the classes, by index, and the points that separate them (T.SCORECARD's points:
#: ≥ TIER_CUTS[1] refuse, ≥ TIER_CUTS[0] review, else approve)
TIERS = ("refuse", "review", "approve")
TIER_CUTS = (2, T.SCORECARD_CUTOFF)


def tier_of(x: Tensor, names: list[str]) -> Tensor:
    """The planted class [n] of credit-tiers: 0 refuse, 1 review, 2 approve (by the points)."""
    points = T.scorecard_points(x, names).sum(1)
    return torch.where(
        points >= TIER_CUTS[1],
        0,
        torch.where(points >= TIER_CUTS[0], 1, 2),
    ).long()


class ClassNet(T.TabularNet):
    """A :class:`~interplab.models.tabular.TabularNet` with K class logits [batch, K]: the same
    encoding and hidden layers, the last layer widened to K outputs."""

    def __init__(
        self,
        features: tuple[D.Feature, ...],
        hidden: tuple[int, ...] = (),
        n_classes: int = 3,
        *,
        mean: Tensor | None = None,
        std: Tensor | None = None,
        seed: int = 0,
    ):
        super().__init__(features, hidden, mean=mean, std=std, seed=seed)
        width = self.hidden[-1] if self.hidden else self.d_enc
        last = nn.Linear(width, n_classes).double()
        gen = torch.Generator().manual_seed(seed + 17)
        with torch.no_grad():
            last.weight.copy_(torch.randn(last.weight.shape, generator=gen).double() * width**-0.5)
            last.bias.zero_()
        self.net[-1] = last
        self.n_classes = n_classes

    def head(self, z: Tensor) -> Tensor:
        return self.net(z)


def fit_classes(
    x: Tensor, y: Tensor, features: tuple[D.Feature, ...], cfg: T.TrainConfig, k: int
) -> ClassNet:
    """Train a :class:`ClassNet` on rows ``x`` and class labels ``y`` (0..k-1): AdamW with a
    cosine schedule on minibatches, cross-entropy with label smoothing, one torch thread."""
    with one_thread():
        torch.manual_seed(cfg.seed)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-9)
        model = ClassNet(features, cfg.hidden, k, mean=mean, std=std, seed=cfg.seed)
        adam = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, cfg.steps)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        for _ in range(cfg.steps):
            batch = (
                torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
                if cfg.batch_size
                else slice(None)
            )
            adam.zero_grad()
            nn.functional.cross_entropy(
                model(x[batch]), y[batch], label_smoothing=cfg.smoothing
            ).backward()
            adam.step()
            sched.step()
    return model.eval()


def predict_class(model: nn.Module, x: Tensor) -> Tensor:
    """[n] the decision of a binary net (1 when its logit is > 0) or a ClassNet's class."""
    with torch.no_grad():
        out = model(x.double())
    return out.argmax(1) if out.dim() == 2 else (out > 0).long()


def verify_tiers(
    model: nn.Module, data: D.TabularData, test_idx: Tensor, train_idx: Tensor, seed: int
) -> dict[str, Any]:
    """The credit-tiers truth checked by intervening on the trained model on the held-out rows
    (never trained on): every check is a share of rows with its n (see the module docstring).
    Replacement values come from the training rows (seeded draws)."""
    names = data.names
    x, pool = data.x[test_idx], data.x[train_idx]
    deciding = [names.index(f) for f in T.SCORECARD]
    others = [j for j in range(len(names)) if j not in deciding]
    gen = torch.Generator().manual_seed(4242 + seed)
    n = x.shape[0]

    def resampled(cols: list[int], source: Tensor) -> Tensor:
        out = x.clone()
        pick = torch.randint(0, source.shape[0], (n,), generator=gen)
        out[:, cols] = source[pick][:, cols]
        return out

    before = predict_class(model, x)
    checks: dict[str, Any] = {
        "agrees_with_rule": float((before == tier_of(x, names)).double().mean()),
        "others_resampled_keep_class": float(
            (predict_class(model, resampled(others, pool)) == before).double().mean()
        ),
    }
    moved = resampled(deciding, pool)
    checks["rule_resampled_follows_rule"] = float(
        (predict_class(model, moved) == tier_of(moved, names)).double().mean()
    )
    pool_class = tier_of(pool, names)
    for c, name in enumerate(TIERS):
        rows = resampled(deciding, pool[pool_class == c])
        checks[f"set_to_{name}"] = float((predict_class(model, rows) == c).double().mean())
    checks["n"] = n
    return checks


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

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, by index (binary organisms: their two outcomes)."""
        return tuple(self.data.outcomes)

    def true_features(self) -> tuple[str, ...] | None:
        """The features that decide, where planted (rule organisms); None otherwise."""
        return tuple(self.truth["features"]) if "features" in self.truth else None

    def true_attributions(self, x: Tensor) -> Tensor | None:
        """Exact per-feature contributions [n, feature] where known, else None:
        credit-linear: coef · (enc(x) − E[enc]) summed per feature (logit units, the oracle);
        credit-rule: the scorecard's points minus their mean over the training rows
        (credit-tiers: None; its truth is the set of deciding features, for every contrast)."""
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
    if spec.labels == "tiers":  # German credit relabelled by the planted three-class rule
        credit = D.german_credit()
        return D.TabularData(
            "german_credit_tiers",
            credit.features,
            credit.x,
            tier_of(credit.x, credit.names),
            TIERS,  # type: ignore[arg-type]  # TabularData.outcomes is typed for two classes
            credit.source + "; classes by interplab's planted scorecard tiers",
            credit.digest + "-tiers",
        )
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
    if spec.labels == "tiers":  # only this organism's fingerprint reads the tiers
        fields["tiers"] = repr((TIERS, TIER_CUTS))
    return weights_cache.digest(fields)


def organism_dir(name: str, seed: int) -> Path:
    return cache_dir() / "tabular" / f"{name}-s{seed}"


def _labels(spec: TabularSpec, data: D.TabularData, x: Tensor) -> Tensor:
    if spec.labels == "scorecard":
        return T.scorecard_approves(x, data.names)
    if spec.labels == "patch":
        return (x[:, T.patch_index()].sum(1) >= T.PATCH_MIN_SUM).long()
    if spec.labels == "tiers":
        return tier_of(x, data.names)
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
    if spec.labels == "tiers":
        return _train_tiers(spec, data, x, y, cfg, train_idx, test_idx, seed)
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


def _train_tiers(
    spec: TabularSpec,
    data: D.TabularData,
    x: Tensor,
    y: Tensor,
    cfg: T.TrainConfig,
    train_idx: Tensor,
    test_idx: Tensor,
    seed: int,
) -> tuple[T.TabularNet, dict[str, Any]]:
    model = fit_classes(x, y, data.features, cfg, len(TIERS))
    checks = verify_tiers(model, data, test_idx, train_idx, seed)
    truth = {
        "kind": "tiers",
        "features": list(T.SCORECARD),
        "classes": list(TIERS),
        "cuts": list(TIER_CUTS),
        "points": {
            k: [op, list(c) if isinstance(c, tuple) else c, p]
            for k, (op, c, p) in T.SCORECARD.items()
        },
        "accuracy_vs_rule": checks["agrees_with_rule"],
        "test_accuracy": checks["agrees_with_rule"],
        "intervention": checks,
    }
    failed = [f"{k} {v:.3f}" for k, v in checks.items() if k != "n" and v < MIN_RULE_ACCURACY]
    if failed:
        raise VerificationError(
            f"{spec.name} (seed {seed}) fails its truth check on {checks['n']} held-out rows: "
            f"{', '.join(failed)} (each needs ≥ {MIN_RULE_ACCURACY}). Train longer or try "
            "another seed."
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
            model = _net(spec, data)
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


def _net(spec: TabularSpec, data: D.TabularData) -> T.TabularNet:
    """An untrained net of the organism's shape (its weights are loaded into it)."""
    if spec.labels == "tiers":
        return ClassNet(data.features, spec.train.hidden, len(TIERS))
    return T.TabularNet(data.features, spec.train.hidden)


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
