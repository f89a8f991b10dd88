"""Scoring failure explanations, reconstructed triggers and trojan detectors.

    restoration_rate   share of failing examples whose answer returns to the clean one when the
                       explanation's top-k units are patched back to their clean values
    leftover_rate      the same when every unit *but* those k is patched back (should be low)
    trigger_iou        IoU of the reconstructed mask (> 0.5) with the planted trigger's support
    pattern_similarity 1 - mean |p - p_true| over the planted trigger's support
    localisation_auroc AUROC of mean unit scores vs the true trojan units
    detection_auroc    AUROC of a detector's scores over a population of clean/trojaned models

Restoration and leftover take unit explanations and SAE-latent ones
(:class:`~interplab.methods.failures.FeatureFailureExplanation`, patched by latent contribution).

Rates come with Wilson 95% intervals (:func:`interplab.eval.stats.wilson`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import torch

from interplab.eval.circuits import auroc
from interplab.eval.stats import Estimate, wilson
from interplab.methods.failures.explain import FailureExplanation, patch_units, select_logits
from interplab.methods.failures.features import FeatureFailureExplanation, patch_latents

Tensor = torch.Tensor


def _restored(
    model: Any, clean: Any, failing: Any, expl: Any, chosen: Tensor, rest: bool = False
) -> Tensor:
    if isinstance(expl, FeatureFailureExplanation):
        _, cc = model.run_with_cache(clean, [expl.site])
        _, fc = model.run_with_cache(failing, [expl.site])
        out = patch_latents(
            model,
            expl.site,
            expl.dictionary,
            cc[expl.site],
            fc[expl.site],
            failing,
            chosen,
            rest=rest,
        )
        return select_logits(out, expl.output_position).argmax(-1) == expl.clean_labels
    if rest:
        chosen = ~chosen
    sites = list(dict.fromkeys(s for s, _ in expl.units))
    _, cc = model.run_with_cache(clean, sites)
    _, fc = model.run_with_cache(failing, sites)
    out = patch_units(
        model, {s: cc[s] for s in sites}, {s: fc[s] for s in sites}, failing, expl.units, chosen
    )
    return select_logits(out, expl.output_position).argmax(-1) == expl.clean_labels


Explanation = FailureExplanation | FeatureFailureExplanation


def _undone(
    model: Any, clean: Any, failing: Any, expl: Explanation, k: int, rest: bool
) -> Estimate:
    """Share of the failures (failing label != clean label) whose clean label comes back when
    each example's top-``k`` units (``rest``: all the others) are patched to clean."""
    restored = _restored(model, clean, failing, expl, expl.top(k), rest=rest)
    restored = restored[expl.fail_labels != expl.clean_labels]
    return wilson(int(restored.sum()), len(restored))


def restoration_rate(model: Any, clean: Any, failing: Any, expl: Explanation, k: int) -> Estimate:
    """Share of the failures undone by patching each example's top-``k`` units to clean."""
    return _undone(model, clean, failing, expl, k, rest=False)


def leftover_rate(model: Any, clean: Any, failing: Any, expl: Explanation, k: int) -> Estimate:
    """Share of the failures undone by patching every unit except each example's top ``k`` (for
    latents: the site set to clean minus the top latents' change, so the SAE error goes with the
    rest)."""
    return _undone(model, clean, failing, expl, k, rest=True)


def trigger_iou(mask: Tensor, true_mask: Tensor, threshold: float = 0.5) -> float:
    pred, true = mask.flatten() > threshold, true_mask.flatten() > 0
    union = int((pred | true).sum())
    return int((pred & true).sum()) / union if union else float("nan")


def pattern_similarity(pattern: Tensor, true_pattern: Tensor, true_mask: Tensor) -> float:
    support = true_mask.flatten() > 0
    if not support.any():
        return float("nan")
    return 1.0 - float((pattern.flatten()[support] - true_pattern.flatten()[support]).abs().mean())


def localisation_auroc(scores: Mapping[Hashable, float], truth: Iterable[Hashable]) -> float:
    return auroc(scores, truth)


def detection_auroc(scores: Sequence[float], trojaned: Sequence[bool]) -> float:
    """AUROC of detector ``scores`` (higher: more likely trojaned) over a population."""
    return auroc(
        {i: float(s) for i, s in enumerate(scores)}, [i for i, t in enumerate(trojaned) if t]
    )


def success_estimate(success: Tensor, keep: Tensor | None = None) -> Estimate:
    s = success if keep is None else success[keep]
    return wilson(int(s.sum()), len(s))


def detection_estimate(
    scores: Sequence[float], trojaned: Sequence[bool], *, n_boot: int = 1000, seed: int = 0
) -> Estimate:
    """Detection AUROC with a 95% percentile-bootstrap interval (models resampled within each
    class, so every resample has both); ``n`` is the number of models."""
    pos = [float(s) for s, t in zip(scores, trojaned) if t]
    neg = [float(s) for s, t in zip(scores, trojaned) if not t]
    value = detection_auroc(scores, trojaned)
    gen = torch.Generator().manual_seed(seed)
    p, q = torch.tensor(pos), torch.tensor(neg)
    boots = []
    for _ in range(n_boot):
        a = p[torch.randint(len(p), (len(p),), generator=gen)]
        b = q[torch.randint(len(q), (len(q),), generator=gen)]
        wins = (a[:, None] > b[None, :]).float() + 0.5 * (a[:, None] == b[None, :]).float()
        boots.append(float(wins.mean()))
    boots.sort()
    return Estimate(
        value,
        boots[int(0.025 * n_boot)],
        boots[min(n_boot - 1, int(0.975 * n_boot))],
        len(pos) + len(neg),
    )


def robust_radius(
    model: Any,
    x: Tensor,
    y: Tensor,
    eps_grid: Sequence[float],
    *,
    norm: str = "l2",
    steps: int = 20,
    seed: int = 0,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> tuple[list[Estimate], float]:
    """PGD success at each budget of ``eps_grid`` (ascending), with Wilson intervals, and the
    smallest budget at which at least half the correctly classified inputs flip (inf if none)."""
    from interplab.methods.attacks import pgd

    curve = []
    for eps in eps_grid:
        r = pgd(model, x, y, eps=eps, steps=steps, norm=norm, seed=seed, bounds=bounds)
        curve.append(wilson(r.n_success, r.n))
    radius = next((e for e, est in zip(eps_grid, curve) if est.value >= 0.5), float("inf"))
    return curve, radius
