"""Toy models of superposition (Elhage et al. 2022): ``x' = ReLU(Wᵀ W x + b)``.

``n`` sparse input features are squeezed into ``m < n`` hidden dimensions by ``W`` [m, n] and read
back out by ``Wᵀ``. Feature i is zero with probability ``sparsity`` and uniform on [0, 1]
otherwise; the loss weights feature i by ``importance_decay**i``. With enough sparsity the model
stores more features than it has dimensions, in superposition.

Ground truth: the true direction of feature i in the hidden space is column ``W[:, i]``
(:attr:`SuperpositionModel.directions`, normalized), and per sample the active features are
``x > 0``. The hidden activation passes through the identity module ``hidden`` and the output
through ``output``, so a HookedModel (``wrap_module(model, ["hidden", "output"])``) can read or
replace them at ``Site.module("hidden")`` and ``Site.module("output")``.

Analysis (:func:`analyze`): per-feature norms ``‖W_i‖``, superposition ``Σ_{j≠i} (Ŵ_i·W_j)²``,
the per-feature dimensionality ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` and dimensions per feature
``m / ‖W‖_F²``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from interplab.data.synthetic import FeatureBatch
from interplab.errors import ConfigError, WeightsError


@dataclass(frozen=True)
class SuperpositionConfig:
    """A toy model of superposition and how to train it.

    Attributes:
        n_features: input/output width n.
        d_hidden: bottleneck width m (superposition needs m < n).
        sparsity: probability that a feature is zero in a sample, in [0, 1).
        importance_decay: feature i's loss weight is ``importance_decay**i`` (1 = all equal).
        steps, batch_size, lr: Adam training schedule.
        seed: seeds the init and the data.
    """

    n_features: int = 20
    d_hidden: int = 5
    sparsity: float = 0.9
    importance_decay: float = 0.9
    steps: int = 3000
    batch_size: int = 1024
    lr: float = 1e-2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_features", "d_hidden", "steps", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not 0 <= self.sparsity < 1:
            problems.append(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0 < self.importance_decay <= 1:
            problems.append(f"importance_decay must be in (0, 1], got {self.importance_decay}")
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if problems:
            raise ConfigError("invalid SuperpositionConfig: " + "; ".join(problems))

    @property
    def importance(self) -> torch.Tensor:
        """Loss weight per feature [feature]."""
        return self.importance_decay ** torch.arange(self.n_features, dtype=torch.float32)


class SuperpositionModel(nn.Module):
    """``forward(x [batch, n]) -> x' [batch, n]``; the hidden state [batch, m] goes through ``hidden``."""

    def __init__(self, config: SuperpositionConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SuperpositionConfig()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.W = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(cfg.d_hidden, cfg.n_features), generator=gen)
        )
        self.b = nn.Parameter(torch.zeros(cfg.n_features))
        self.hidden = nn.Identity()
        self.output = nn.Identity()
        self.train_seconds: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x @ self.W.T)
        return self.output(torch.relu(h @ self.W + self.b))

    # ---- ground truth -------------------------------------------------------------------
    @property
    def d(self) -> int:
        return self.config.d_hidden

    @property
    def n_features(self) -> int:
        return self.config.n_features

    @property
    def directions(self) -> torch.Tensor:
        """True feature directions in the hidden space [feature, d_hidden], unit norm."""
        w = self.W.detach().T
        return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @property
    def represented(self) -> torch.Tensor:
        """Features the model actually stores (``‖W_i‖ ≥ 0.5``) [feature] (bool); the others
        were dropped and have no true direction to recover."""
        return self.W.detach().norm(dim=0) >= 0.5

    @property
    def out_directions(self) -> torch.Tensor:
        """Where each feature is written in the output [feature, n]: the standard basis."""
        return torch.eye(self.config.n_features)

    def sample_inputs(self, batch_size: int, index: int = 0) -> torch.Tensor:
        """Sparse input features [batch, n]; a pure function of (seed, index, batch_size)."""
        cfg = self.config
        gen = torch.Generator().manual_seed(
            hash((cfg.seed, 1, int(index), int(batch_size))) & 0x7FFF_FFFF_FFFF
        )
        values = torch.rand(batch_size, cfg.n_features, generator=gen)
        keep = torch.rand(batch_size, cfg.n_features, generator=gen) >= cfg.sparsity
        return values * keep

    def sample(self, batch_size: int, index: int = 0) -> FeatureBatch:
        """Hidden activations with ground truth: x = hidden [batch, m], coefficients = inputs
        [batch, n], active = inputs > 0, y = the model's output [batch, n] (transcoder target)."""
        inputs = self.sample_inputs(batch_size, index)
        with torch.no_grad():
            h = inputs @ self.W.T
            out = torch.relu(h @ self.W + self.b)
        return FeatureBatch(h, inputs, inputs > 0, out)

    def loss(self, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error, averaged over the batch (scalar)."""
        return ((output - inputs) ** 2 * self.config.importance).sum(-1).mean()


def train_superposition(config: SuperpositionConfig | None = None) -> SuperpositionModel:
    """Train a toy model of superposition; seeded, a few seconds on a CPU."""
    config = config or SuperpositionConfig()
    torch.manual_seed(config.seed)
    model = SuperpositionModel(config)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = time.perf_counter()
    # Weights of dropped features decay towards 0 and go subnormal, which slows CPU math ~3x.
    flushed = torch.set_flush_denormal(True)
    try:
        for step in range(config.steps):
            inputs = model.sample_inputs(config.batch_size, index=-1 - step)
            loss = model.loss(inputs, model(inputs))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        if flushed:
            torch.set_flush_denormal(False)  # torch's default
    model.train_seconds = time.perf_counter() - start
    model.eval()
    return model


@dataclass(frozen=True)
class SuperpositionAnalysis:
    """Per-feature geometry of W (all tensors [feature]).

    Attributes:
        norms: ``‖W_i‖``; near 1 means represented, near 0 means dropped.
        superposition: ``Σ_{j≠i} (Ŵ_i·W_j)²``; 0 means feature i has a dimension to itself.
        dimensionality: ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²``: the fraction of a dimension feature i
            gets (1 = dedicated, 1/2 = antipodal pair, 0 = not represented).
        dimensions_per_feature: ``m / ‖W‖_F²`` (scalar).
    """

    norms: torch.Tensor
    superposition: torch.Tensor
    dimensionality: torch.Tensor
    dimensions_per_feature: float


def analyze(model: SuperpositionModel | torch.Tensor) -> SuperpositionAnalysis:
    """Geometry of a trained model's W [m, n] (or of a W given directly)."""
    W = (model.W if isinstance(model, SuperpositionModel) else model).detach().float()
    norms = W.norm(dim=0)
    unit = W / norms.clamp_min(1e-12)
    overlap = (unit.T @ W) ** 2  # [n, n]: (Ŵ_i · W_j)^2
    interference = overlap.sum(1) - overlap.diagonal()
    dimensionality = norms**2 / overlap.sum(1).clamp_min(1e-12)
    dimensionality = torch.where(norms > 1e-6, dimensionality, torch.zeros_like(dimensionality))
    fro = float((W**2).sum())
    dpf = W.shape[0] / fro if fro > 0 else float("inf")
    return SuperpositionAnalysis(norms, interference, dimensionality, dpf)


SUPERPOSITION_FORMAT = "interplab-superposition"


def save_superposition(directory: str | os.PathLike, model: SuperpositionModel) -> Path:
    """Save weights (``model.safetensors``) and a JSON sidecar (``model.json``) holding the config
    and the ground truth: which features are represented, and the per-feature analysis."""
    from interplab.models.io import atomic_write_text, save_tensors

    directory = Path(directory)
    save_tensors(directory / "model.safetensors", {"W": model.W, "b": model.b})
    a = analyze(model)
    sidecar = {
        "format": SUPERPOSITION_FORMAT,
        "version": 1,
        "config": dataclasses.asdict(model.config),
        "ground_truth": {
            "represented": [bool(v) for v in model.represented],
            "norms": a.norms.tolist(),
            "dimensionality": a.dimensionality.tolist(),
            "dimensions_per_feature": a.dimensions_per_feature,
        },
    }
    atomic_write_text(directory / "model.json", json.dumps(sidecar, indent=2))
    return directory


def load_superposition(directory: str | os.PathLike) -> SuperpositionModel:
    """Load a model saved by :func:`save_superposition`; WeightsError if missing or corrupt."""
    from interplab.models.io import load_tensors

    directory = Path(directory)
    try:
        sidecar = json.loads((directory / "model.json").read_text())
        if sidecar.get("format") != SUPERPOSITION_FORMAT:
            raise ValueError(f"format {sidecar.get('format')!r}, expected {SUPERPOSITION_FORMAT!r}")
        config = SuperpositionConfig(**sidecar["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(
            f"cannot read {directory / 'model.json'} ({type(exc).__name__}: {exc}); "
            "save the model again with save_superposition"
        ) from None
    tensors = load_tensors(directory / "model.safetensors")
    model = SuperpositionModel(config)
    expected = {"W": tuple(model.W.shape), "b": tuple(model.b.shape)}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != expected:
        raise WeightsError(f"{directory} holds tensors {found} but its config needs {expected}")
    with torch.no_grad():
        model.W.copy_(tensors["W"])
        model.b.copy_(tensors["b"])
    return model.eval()
