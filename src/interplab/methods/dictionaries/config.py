"""Configuration of a sparse dictionary (SAE or transcoder) and of its training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from interplab._json import dataclass_from_json
from interplab.errors import ConfigError

ACTIVATIONS = ("relu", "topk", "jumprelu")
#: Fields that may change between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "keep_checkpoints", "log_every"})


@dataclass(frozen=True)
class DictionaryConfig:
    """A sparse dictionary ``x [batch, d_in] -> latents [batch, d_latent] -> ŷ [batch, d_out]``.

    An autoencoder (SAE) reconstructs its input (``d_out`` None); a transcoder predicts a
    different target (e.g. an MLP's output from its input; set ``d_out``).

    Attributes:
        d_in: input width (the site's last dimension).
        d_latent: number of dictionary latents.
        activation: "relu" (ReLU with an L1 penalty), "topk" (keep the k largest), or
            "jumprelu" (ReLU with a learned per-latent threshold, L0 penalty trained with a
            straight-through estimator; Rajamanoharan et al. 2024).
        d_out: target width for a transcoder; None for an autoencoder.
        k: latents kept per sample ("topk").
        l1_coefficient: weight of the L1 penalty on latents ("relu").
        l0_coefficient: weight of the L0 penalty ("jumprelu").
        jumprelu_threshold: initial threshold ("jumprelu"), in activation units.
        jumprelu_bandwidth: width of the rectangle kernel of the straight-through estimator.
        lr: Adam learning rate.
        batch_size: activations per step.
        steps: training steps.
        normalize_decoder: keep decoder rows unit norm (gradient projected, rows renormalized).
        resample_every: every this many steps, resample latents that have not fired for
            ``resample_every`` steps (0 = never).
        checkpoint_every: write a checkpoint every this many steps (0 = only at the end, and
            only when a checkpoint directory is given).
        keep_checkpoints: how many recent checkpoints to keep on disk.
        log_every: record a history row every this many steps.
        seed: seeds the init, the resampling and the choice of activations.
    """

    d_in: int
    d_latent: int
    activation: str = "relu"
    d_out: int | None = None
    k: int = 8
    l1_coefficient: float = 1e-2
    l0_coefficient: float = 1e-2
    jumprelu_threshold: float = 0.05
    jumprelu_bandwidth: float = 0.05
    lr: float = 1e-3
    batch_size: int = 1024
    steps: int = 2000
    normalize_decoder: bool = True
    resample_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("d_in", "d_latent", "k", "batch_size", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive int, got {value!r}")
        for name in ("steps", "resample_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"{name} must be a non-negative int, got {value!r}")
        if self.d_out is not None and (not isinstance(self.d_out, int) or self.d_out < 1):
            problems.append(f"d_out must be a positive int or None, got {self.d_out!r}")
        if self.activation not in ACTIVATIONS:
            problems.append(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if (
            self.activation == "topk"
            and isinstance(self.k, int)
            and isinstance(self.d_latent, int)
            and self.k > self.d_latent
        ):
            problems.append(f"k={self.k} exceeds d_latent={self.d_latent}")
        for name in ("l1_coefficient", "l0_coefficient"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("jumprelu_threshold", "jumprelu_bandwidth", "lr"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if problems:
            raise ConfigError("invalid DictionaryConfig: " + "; ".join(problems))

    @property
    def is_transcoder(self) -> bool:
        return self.d_out is not None

    @property
    def out_width(self) -> int:
        return self.d_out if self.d_out is not None else self.d_in

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict) -> DictionaryConfig:
        return dataclass_from_json(DictionaryConfig, data)
