"""The failures track's population and sweep jobs (:mod:`interplab.bench.tracks.failures`):
trojan detection over a population of clean and trojaned models, and the adversarial
superposition sweep. Also the track's row helper."""

from __future__ import annotations

import math
import time

import torch

from interplab.bench.track import Job, JobOutput, Row
from interplab.errors import ConfigError


def failure_row(
    job: Job, metric: str, value: float | None, seconds: float, reason: str | None = None
) -> Row:
    """One row: a finite value, or None with ``reason``; ``seconds`` rounded to ms."""
    if value is not None and math.isfinite(value):
        return Row(metric, float(value), seconds=round(seconds, 3))
    return Row(metric, None, reason or "no finite value", seconds=round(seconds, 3))


def detection_job(job: Job, n: int) -> JobOutput:
    from interplab.eval.failures import detection_estimate
    from interplab.methods.attacks import neural_cleanse, weight_norm
    from interplab.models.trojans import digits
    from interplab.zoo import trojans

    start = time.perf_counter()
    members = trojans.population(n, seed=job.seed)
    x, _ = digits("score")
    labels = [m.trojaned for m in members]
    if job.method == "neural_cleanse":
        scores = [
            neural_cleanse(m.model, x[:100], steps=100, seed=job.seed).anomaly_index
            for m in members
        ]
    elif job.method == "weight_norm":
        scores = [weight_norm(m.model).score for m in members]
    elif job.method == "random":
        scores = torch.rand(n, generator=torch.Generator().manual_seed(job.seed)).tolist()
    else:
        raise ConfigError(
            f"method {job.method} does not apply to a population (use neural_cleanse, "
            "weight_norm or random)"
        )
    est = detection_estimate(scores, labels, seed=job.seed)
    return JobOutput(
        [failure_row(job, "trojan_detection_auroc", est.value, time.perf_counter() - start)],
        {
            "estimates": {"trojan_detection_auroc": est.as_dict()},
            "detection": {"scores": scores, "trojaned": labels, "n": n},
        },
    )


# ------------------------------------------------------------------------ superposition
SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
WIDTHS = (2, 5, 10, 20)
EPS_GRID = tuple(round(0.05 * i, 2) for i in range(1, 17))


def _superposition_point(sparsity: float, width: int, seed: int) -> dict:
    from interplab.eval.failures import robust_radius
    from interplab.models.superposition import SuperpositionConfig, analyze, train_superposition

    model = train_superposition(
        SuperpositionConfig(
            n_features=20,
            d_hidden=width,
            sparsity=sparsity,
            importance_decay=1.0,
            steps=1000,
            seed=seed,
        )
    )
    features = model.represented.nonzero().flatten()
    x, y = torch.eye(20)[features], features
    curve, radius = robust_radius(model, x, y, EPS_GRID, norm="l2", steps=20, seed=seed)
    a = analyze(model)
    return {
        "sparsity": sparsity,
        "width": width,
        "represented": len(features),
        "dimensions_per_feature": a.dimensions_per_feature,
        "robust_radius": radius,
        "success": [e.as_dict() for e in curve],
    }


def superposition_job(job: Job) -> JobOutput:
    if job.method != "pgd":
        raise ConfigError("superposition-sweep runs the pgd method only")
    start = time.perf_counter()
    by_sparsity = [_superposition_point(s, 5, job.seed) for s in SPARSITIES]
    by_width = [_superposition_point(0.9, w, job.seed) for w in WIDTHS]
    secs = time.perf_counter() - start
    points = by_sparsity + by_width
    dpf = torch.tensor([p["dimensions_per_feature"] for p in points])
    rad = torch.tensor([min(p["robust_radius"], 2 * EPS_GRID[-1]) for p in points])
    rank = lambda t: t.argsort().argsort().float()  # noqa: E731
    rho = float(torch.corrcoef(torch.stack([rank(dpf), rank(rad)]))[0, 1])
    rows = [
        failure_row(
            job,
            f"robust_radius@sparsity={p['sparsity']}",
            p["robust_radius"],
            secs,
            "no budget in the grid flips half the inputs",
        )
        for p in by_sparsity
    ]
    rows.append(failure_row(job, "spearman_radius_vs_dimensions_per_feature", rho, secs))
    return JobOutput(
        rows,
        {
            "superposition": {
                "eps_grid": list(EPS_GRID),
                "by_sparsity": by_sparsity,
                "by_width": by_width,
            }
        },
    )
