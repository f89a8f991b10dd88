"""Synthetic activations built from known features: the ground truth a dictionary should recover.

A sample is ``x = c @ D`` where ``D`` [feature, d] holds one unit-norm direction per feature and
``c`` [batch, feature] holds non-negative coefficients, zero for features that are off. Features
fire with Zipf-like frequencies (``p_i ∝ rank**-zipf_exponent``, scaled so that on average
``mean_active`` features fire per sample), optionally in correlated groups (a group event turns
several members on together) and hierarchies (a child can only fire when its parent fires).

Batches are a pure function of ``(seed, index)``, so a stream can be replayed from any point
(that is what makes dictionary training resumable) and nothing is held in memory.

With ``d_out`` set, each feature also has an output direction ``D_out`` [feature, d_out] and the
batch carries ``y = c @ D_out``: the target a transcoder should learn to predict from ``x``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from interplab.errors import ConfigError

_MAGNITUDES = ("uniform", "exponential", "constant")


@dataclass(frozen=True)
class SyntheticConfig:
    """How to generate synthetic activations.

    Attributes:
        n_features: number of ground-truth features.
        d: width of each activation vector (``d < n_features`` puts features in superposition).
        mean_active: expected number of independently firing features per sample (before the
            group and hierarchy rules add or remove some).
        zipf_exponent: firing probability of the feature of rank r is proportional to
            ``r**-zipf_exponent``; 0 gives every feature the same frequency.
        magnitude: distribution of an active feature's coefficient: "uniform" on (0, 1],
            "exponential" with mean 1, or "constant" 1.
        n_groups, group_size: correlated groups, made of the first ``n_groups * group_size``
            features; when a group's event fires (probability ``group_prob``) each member
            turns on with probability ``group_correlation``.
        n_hierarchies, children_per_parent: parent/child trees, made of the features after the
            correlated groups; a child's independent coin only counts when its parent is on
            (children are exclusive: at most one child per parent fires).
        d_out: width of a second, output representation (transcoder target); None for none.
        seed: seeds the directions, the frequencies and every batch.
    """

    n_features: int = 128
    d: int = 64
    mean_active: float = 4.0
    zipf_exponent: float = 0.0
    magnitude: str = "uniform"
    n_groups: int = 0
    group_size: int = 4
    group_prob: float = 0.02
    group_correlation: float = 0.8
    n_hierarchies: int = 0
    children_per_parent: int = 3
    d_out: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_features", "d"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not 0 < self.mean_active <= self.n_features:
            problems.append(
                f"mean_active must be in (0, n_features={self.n_features}], got {self.mean_active}"
            )
        if self.zipf_exponent < 0:
            problems.append(f"zipf_exponent must be >= 0, got {self.zipf_exponent}")
        if self.magnitude not in _MAGNITUDES:
            problems.append(f"magnitude must be one of {_MAGNITUDES}, got {self.magnitude!r}")
        used = self.n_groups * self.group_size + self.n_hierarchies * (1 + self.children_per_parent)
        if used > self.n_features:
            problems.append(
                f"groups and hierarchies need {used} features but n_features={self.n_features}; "
                f"lower n_groups/n_hierarchies or raise n_features"
            )
        for name in ("group_prob", "group_correlation"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        if self.d_out is not None and self.d_out < 1:
            problems.append(f"d_out must be a positive int or None, got {self.d_out!r}")
        if problems:
            raise ConfigError("invalid SyntheticConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class FeatureBatch:
    """One batch with its ground truth.

    Attributes:
        x: activations [batch, d].
        coefficients: feature coefficients [batch, feature], zero where a feature is off.
        active: which features are on [batch, feature] (bool).
        y: transcoder target [batch, d_out], or None.
    """

    x: torch.Tensor
    coefficients: torch.Tensor
    active: torch.Tensor
    y: torch.Tensor | None = None


def _unit_rows(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    w = torch.randn(n, d, generator=gen)
    return w / w.norm(dim=1, keepdim=True)


class SyntheticFeatures:
    """A seeded stream of activations with known features. See the module docstring.

    Attributes:
        config: the :class:`SyntheticConfig`.
        directions: true feature directions [feature, d], unit norm.
        out_directions: output directions [feature, d_out] or None.
        probabilities: independent firing probability of each feature [feature].
        parent: index of each feature's parent [feature], -1 for none.
    """

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = cfg = config or SyntheticConfig()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.directions = _unit_rows(cfg.n_features, cfg.d, gen)
        self.out_directions = _unit_rows(cfg.n_features, cfg.d_out, gen) if cfg.d_out else None
        ranks = torch.randperm(cfg.n_features, generator=gen).double() + 1
        weights = ranks**-cfg.zipf_exponent
        probs = weights / weights.sum() * cfg.mean_active
        self.probabilities = probs.clamp(max=1.0).float()
        self.parent = torch.full((cfg.n_features,), -1, dtype=torch.long)
        start = cfg.n_groups * cfg.group_size
        for h in range(cfg.n_hierarchies):
            p = start + h * (1 + cfg.children_per_parent)
            self.parent[p + 1 : p + 1 + cfg.children_per_parent] = p
            # A child fires (given its parent) with its parent's share of the siblings.
            self.probabilities[p + 1 : p + 1 + cfg.children_per_parent] = (
                1.0 / cfg.children_per_parent
            )

    @property
    def d(self) -> int:
        return self.config.d

    @property
    def n_features(self) -> int:
        return self.config.n_features

    def sample(self, batch_size: int, index: int = 0) -> FeatureBatch:
        """Batch number ``index`` of size ``batch_size``; the same arguments give the same batch."""
        cfg = self.config
        gen = torch.Generator().manual_seed(
            hash((cfg.seed, int(index), int(batch_size))) & 0x7FFF_FFFF_FFFF
        )
        n = cfg.n_features
        active = torch.rand(batch_size, n, generator=gen) < self.probabilities
        for g in range(cfg.n_groups):
            members = slice(g * cfg.group_size, (g + 1) * cfg.group_size)
            event = torch.rand(batch_size, 1, generator=gen) < cfg.group_prob
            joined = torch.rand(batch_size, cfg.group_size, generator=gen) < cfg.group_correlation
            active[:, members] |= event & joined
        active = self._apply_hierarchy(active, gen)
        if cfg.magnitude == "uniform":
            mags = 1.0 - torch.rand(batch_size, n, generator=gen)  # (0, 1]
        elif cfg.magnitude == "exponential":
            mags = -torch.log(1.0 - torch.rand(batch_size, n, generator=gen))
        else:
            mags = torch.ones(batch_size, n)
        coefficients = mags * active
        y = coefficients @ self.out_directions if self.out_directions is not None else None
        return FeatureBatch(coefficients @ self.directions, coefficients, active, y)

    def _apply_hierarchy(self, active: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        cfg = self.config
        start = cfg.n_groups * cfg.group_size
        k = cfg.children_per_parent
        for h in range(cfg.n_hierarchies):
            p = start + h * (1 + k)
            children = slice(p + 1, p + 1 + k)
            choice = torch.randint(0, k, (active.shape[0],), generator=gen)
            one_child = torch.nn.functional.one_hot(choice, k).bool()
            active[:, children] = one_child & active[:, p : p + 1]
        return active

    def batches(
        self, batch_size: int, n_batches: int | None = None, start: int = 0
    ) -> Iterator[FeatureBatch]:
        """Stream batches ``start, start + 1, ...``; endless when ``n_batches`` is None."""
        i = start
        while n_batches is None or i < start + n_batches:
            yield self.sample(batch_size, i)
            i += 1
