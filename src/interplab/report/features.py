"""Plots for the feature-recovery track, as SVG strings (matplotlib imported lazily).

    feature_recovery_plot(max_cosines)     per true feature, max cosine to any dictionary
                                           direction, sorted (one line per dictionary)
    superposition_plot(norms, dimensionality)   the toy model's per-feature norms and
                                           dimensionality (Elhage et al. 2022, figs. 2 and 13)
"""

from __future__ import annotations

from typing import Mapping, Sequence

from interplab.report.plots import _pyplot, figure_to_svg


def _floats(values) -> list[float]:
    if hasattr(values, "detach"):
        values = values.detach().cpu().flatten().tolist()
    return [float(v) for v in values]


def feature_recovery_plot(max_cosines: Mapping[str, Sequence[float]] | Sequence[float], *,
                          threshold: float | None = 0.9, title: str = "Feature recovery") -> str:
    """Sorted per-feature max cosine similarity; ``max_cosines`` is one sequence [feature] or
    {dictionary name: sequence}. A dashed line marks the recovery ``threshold``."""
    series = dict(max_cosines) if isinstance(max_cosines, Mapping) else {"dictionary": max_cosines}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for name, values in series.items():
        ys = sorted(_floats(values), reverse=True)
        ax.plot(range(1, len(ys) + 1), ys, label=f"{name} (MMCS {sum(ys) / max(len(ys), 1):.3f})",
                linewidth=1.4)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("true feature (sorted)")
    ax.set_ylabel("max cosine to a dictionary direction")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    return figure_to_svg(fig)


def superposition_plot(norms: Sequence[float], dimensionality: Sequence[float], *,
                       dimensions_per_feature: float | None = None,
                       title: str = "Superposition") -> str:
    """Two panels for a toy model of superposition: per-feature norm ‖W_i‖ (bars, in feature
    order, i.e. by decreasing importance) and per-feature dimensionality D_i (dots, with
    reference lines at 1, 1/2, 2/5, 1/3 for the geometries the paper found)."""
    n = _floats(norms)
    dims = _floats(dimensionality)
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.0, 3.0))
    left.bar(range(len(n)), n, color="#4c72b0")
    left.set_xlabel("feature (by importance)")
    left.set_ylabel("‖W_i‖")
    left.set_title("feature norms")
    for ref in (1.0, 0.5, 0.4, 1 / 3):
        right.axhline(ref, color="grey", linestyle=":", linewidth=0.7)
    right.scatter(range(len(dims)), dims, s=12, color="#dd8452")
    right.set_xlabel("feature (by importance)")
    right.set_ylabel("dimensionality D_i")
    right.set_ylim(-0.05, 1.1)
    sub = f" (dims/feature {dimensions_per_feature:.2f})" if dimensions_per_feature is not None else ""
    right.set_title("dimensionality" + sub)
    fig.suptitle(title)
    return figure_to_svg(fig)
