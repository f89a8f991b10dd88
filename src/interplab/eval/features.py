"""Scores for sparse dictionaries: recovery of known features, next to the usual proxies.

Ground-truth scores need the true feature directions [feature, d]:
    MMCS        mean over true features of the max cosine similarity to any dictionary direction
    precision   fraction of (live) dictionary directions within ``threshold`` cosine of a true feature
    recall      fraction of true features within ``threshold`` cosine of a dictionary direction
    F1          their harmonic mean
Proxies need only activations:
    L0                  active latents per sample
    variance_explained  1 - Σ‖y - ŷ‖² / Σ‖y - ȳ‖²
    dead_fraction       latents that never fire on the evaluation batch
    loss_recovered      (L_ablated - L_spliced) / (L_ablated - L_clean) when the reconstruction
                        replaces a model site (1 = as good as the real activation, 0 = as bad as
                        ablating it). This is the only quantity called ``loss_recovered`` in the
                        bench; a causal hypothesis's version is ``hypothesis_loss_recovered``.
Everything here is a pure function of its arguments (the model runs only in loss_recovered).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from interplab.core.interventions import Mean, Replace, Zero
from interplab.core.model import HookedModel
from interplab.core.sites import Site
from interplab.errors import ConfigError, ShapeError
from interplab.methods.dictionaries.modules import SparseDictionary

Tensor = torch.Tensor


def _unit(w: Tensor) -> Tensor:
    w = w.detach().float()
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(true_directions: Tensor, learned_directions: Tensor) -> Tensor:
    """Cosine similarity [feature, latent] between rows of [feature, d] and [latent, d]."""
    if (
        true_directions.ndim != 2
        or learned_directions.ndim != 2
        or true_directions.shape[1] != learned_directions.shape[1]
    ):
        raise ShapeError(
            f"directions must be [feature, d] and [latent, d] with the same d, got "
            f"{tuple(true_directions.shape)} and {tuple(learned_directions.shape)}; "
            "compare a dictionary's decoder with features in the space it writes to"
        )
    return _unit(true_directions) @ _unit(learned_directions).T


def max_cosines(true_directions: Tensor, learned_directions: Tensor) -> Tensor:
    """Per true feature, the max cosine to any learned direction [feature]."""
    return cosine_matrix(true_directions, learned_directions).max(dim=1).values


def mmcs(true_directions: Tensor, learned_directions: Tensor) -> float:
    """Mean max cosine similarity (Sharkey et al. 2022), in [-1, 1]; 1 = every feature found."""
    return float(max_cosines(true_directions, learned_directions).mean())


@dataclass(frozen=True)
class Recovery:
    precision: float
    recall: float
    f1: float
    threshold: float


def feature_recovery(
    true_directions: Tensor,
    learned_directions: Tensor,
    threshold: float = 0.9,
    live: Tensor | None = None,
) -> Recovery:
    """Precision/recall/F1 of feature recovery at a cosine ``threshold``.

    ``live`` [latent] (bool) restricts precision to latents that fire; dead latents then
    neither help nor hurt."""
    if not -1 <= threshold <= 1:
        raise ConfigError(f"threshold is a cosine and must be in [-1, 1], got {threshold}")
    cos = cosine_matrix(true_directions, learned_directions)
    recall = float((cos.max(dim=1).values >= threshold).float().mean())
    per_latent = cos.max(dim=0).values >= threshold
    if live is not None:
        per_latent = per_latent[live]
    precision = float(per_latent.float().mean()) if per_latent.numel() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Recovery(precision, recall, f1, threshold)


def l0(latents: Tensor) -> float:
    """Mean number of non-zero latents per sample; latents [..., latent]."""
    return float((latents != 0).float().sum(-1).mean())


def variance_explained(target: Tensor, reconstruction: Tensor) -> float:
    """Fraction of the target's variance the reconstruction explains; both [n, d]."""
    if target.shape != reconstruction.shape:
        raise ShapeError(
            f"target {tuple(target.shape)} and reconstruction {tuple(reconstruction.shape)} differ"
        )
    t = target.reshape(-1, target.shape[-1]).float()
    r = reconstruction.reshape(-1, target.shape[-1]).float()
    var = float(((t - t.mean(0)) ** 2).sum())
    return 1.0 - float(((t - r) ** 2).sum()) / var if var > 0 else float("nan")


def dead_fraction(latents: Tensor) -> float:
    """Fraction of latents that never fire on this batch; latents [..., latent]."""
    return float((latents.reshape(-1, latents.shape[-1]) == 0).all(0).float().mean())


def _mse_to(reference: Tensor) -> Callable[[Tensor], Tensor]:
    return lambda out: ((out.float() - reference.float()) ** 2).mean()


def loss_recovered(
    model: HookedModel,
    site: Site,
    inputs: Any,
    dictionary: SparseDictionary,
    *,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    ablation: str = "zero",
    input_site: Site | None = None,
) -> float:
    """Splice the dictionary's output into ``site`` and see how much of the loss it recovers.

    Args:
        site: where the reconstruction goes (for a transcoder: the MLP's output site).
        inputs: a batch the model accepts.
        loss_fn: ``output -> scalar``; default: mean squared error to the clean output
            (model-agnostic; pass e.g. a next-token cross-entropy for a language model).
        ablation: the baseline: "zero" or "mean" (the batch-mean activation).
        input_site: the site a transcoder reads (e.g. mlp_in); None for an autoencoder
            (reads ``site`` itself).

    Returns:
        (L_ablated - L_spliced) / (L_ablated - L_clean); NaN when ablating changes nothing.
    """
    if ablation not in ("zero", "mean"):
        raise ConfigError(f"ablation must be 'zero' or 'mean', got {ablation!r}")
    read_site = input_site if input_site is not None else site
    clean, cache = model.run_with_cache(inputs, [read_site, site])
    source, written = cache[read_site], cache[site]
    if source.shape[-1] != dictionary.d_in or written.shape[-1] != dictionary.d_out:
        raise ShapeError(
            f"dictionary maps width {dictionary.d_in} -> {dictionary.d_out} but {read_site} has "
            f"width {source.shape[-1]} and {site} has width {written.shape[-1]}; use a "
            f"dictionary trained on this site (DictionaryConfig(d_in={source.shape[-1]}, ...))"
        )
    with torch.no_grad():
        spliced_value = dictionary(source.float()).to(written.dtype)
    loss_fn = loss_fn or _mse_to(clean)
    spliced = model.run_with(inputs, [Replace(site, fn=lambda v: spliced_value.reshape(v.shape))])
    baseline = Zero(site) if ablation == "zero" else Mean(site, reference=inputs)
    ablated = model.run_with(inputs, [baseline])
    with torch.no_grad():
        l_clean, l_splice, l_abl = (
            float(loss_fn(clean)),
            float(loss_fn(spliced)),
            float(loss_fn(ablated)),
        )
    denom = l_abl - l_clean
    return (l_abl - l_splice) / denom if abs(denom) > 1e-12 else float("nan")


@dataclass(frozen=True)
class FeatureScores:
    """Ground-truth scores next to proxies, so disagreements are visible.

    Attributes:
        mmcs, precision, recall, f1, threshold: ground truth (None without true directions).
        l0, variance_explained, dead_fraction: proxies on the evaluation batch.
        loss_recovered: proxy on a model site, or None when not measured.
        max_cosines: per true feature, max cosine to the dictionary [feature] (or None).
    """

    mmcs: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    threshold: float
    l0: float
    variance_explained: float
    dead_fraction: float
    loss_recovered: float | None = None
    max_cosines: Tensor | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "mmcs": self.mmcs,
            "feature_precision": self.precision,
            "feature_recall": self.recall,
            "feature_f1": self.f1,
            "l0": self.l0,
            "variance_explained": self.variance_explained,
            "dead_fraction": self.dead_fraction,
            "loss_recovered": self.loss_recovered,
        }


def score_dictionary(
    dictionary: SparseDictionary,
    x: Tensor,
    target: Tensor | None = None,
    true_directions: Tensor | None = None,
    threshold: float = 0.9,
    loss_recovered: float | None = None,
) -> FeatureScores:
    """Score ``dictionary`` on an evaluation batch x [n, d_in] (target [n, d_out], default x)
    against ``true_directions`` [feature, d_out] when known."""
    target = x if target is None else target
    with torch.no_grad():
        latents = dictionary.encode(x.float())
        recon = dictionary.decode(latents)
    live = (latents > 0).any(0)
    gt: tuple[float | None, ...] = (None, None, None, None)
    cos = None
    if true_directions is not None:
        cos = max_cosines(true_directions, dictionary.directions)
        rec = feature_recovery(true_directions, dictionary.directions, threshold, live=live)
        gt = (float(cos.mean()), rec.precision, rec.recall, rec.f1)
    return FeatureScores(
        gt[0],
        gt[1],
        gt[2],
        gt[3],
        threshold,
        l0(latents),
        variance_explained(target, recon),
        dead_fraction(latents),
        loss_recovered,
        cos,
    )
