"""Plots for the feature-recovery track, as SVG strings (matplotlib imported lazily).

feature_recovery_plot(max_cosines)     per true feature, max cosine to any dictionary
                                       direction, sorted (one line per dictionary)
superposition_plot(norms, dimensionality)   the toy model's per-feature norms and
                                       dimensionality (Elhage et al. 2022, figs. 2 and 13)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from html import escape

from interplab.report.plots import figure_to_svg, pyplot


def _floats(values) -> list[float]:
    if hasattr(values, "detach"):
        values = values.detach().cpu().flatten().tolist()
    return [float(v) for v in values]


def feature_recovery_plot(
    max_cosines: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    threshold: float | None = 0.9,
    title: str = "Feature recovery",
) -> str:
    """Sorted per-feature max cosine similarity; ``max_cosines`` is one sequence [feature] or
    {dictionary name: sequence}. A dashed line marks the recovery ``threshold``."""
    series = dict(max_cosines) if isinstance(max_cosines, Mapping) else {"dictionary": max_cosines}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for name, values in series.items():
        ys = sorted(_floats(values), reverse=True)
        ax.plot(
            range(1, len(ys) + 1),
            ys,
            label=f"{name} (MMCS {sum(ys) / max(len(ys), 1):.3f})",
            linewidth=1.4,
        )
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("true feature (sorted)")
    ax.set_ylabel("max cosine to a dictionary direction")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    return figure_to_svg(fig)


def superposition_plot(
    norms: Sequence[float],
    dimensionality: Sequence[float],
    *,
    dimensions_per_feature: float | None = None,
    title: str = "Superposition",
) -> str:
    """Two panels for a toy model of superposition: per-feature norm ‖W_i‖ (bars, in feature
    order, i.e. by decreasing importance) and per-feature dimensionality D_i (dots, with
    reference lines at 1, 1/2, 2/5, 1/3 for the geometries the paper found)."""
    n = _floats(norms)
    dims = _floats(dimensionality)
    plt = pyplot()
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
    sub = (
        f" (dims/feature {dimensions_per_feature:.2f})"
        if dimensions_per_feature is not None
        else ""
    )
    right.set_title("dimensionality" + sub)
    fig.suptitle(title)
    return figure_to_svg(fig)


GROUND_TRUTH_METRICS = ("mmcs", "feature_f1")
PROXY_METRICS = ("variance_explained", "loss_recovered")


def feature_metrics_plot(
    rows: Sequence[Mapping],
    organism: str | None = None,
    *,
    title: str | None = None,
    baselines: Collection[str] = (),
) -> str:
    """Grouped bars from feature-track result rows (``{"organism", "method", "metric", "value"}``):
    per method, the ground-truth scores (MMCS, F1; solid) next to the proxies (variance explained,
    loss recovered; hatched), so the places where they disagree stand out. Values are averaged over
    seeds; ``organism`` picks one organism (default: the first one in ``rows``); methods named in
    ``baselines`` come last, labelled "(baseline)"."""
    rows = [r for r in rows if r.get("metric") in GROUND_TRUTH_METRICS + PROXY_METRICS]
    if not rows:
        raise ValueError(
            "no feature-track rows (metrics mmcs, feature_f1, variance_explained, loss_recovered) to plot"
        )
    organism = organism or rows[0]["organism"]
    rows = [r for r in rows if r["organism"] == organism]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    methods = [m for m in methods if m not in baselines] + [m for m in methods if m in baselines]
    metrics = [
        m for m in GROUND_TRUTH_METRICS + PROXY_METRICS if any(r["metric"] == m for r in rows)
    ]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(methods), 3.2))
    width = 0.8 / max(len(metrics), 1)
    for j, metric in enumerate(metrics):
        heights = []
        for method in methods:
            vals = [
                float(r["value"])
                for r in rows
                if r["method"] == method and r["metric"] == metric and r["value"] is not None
            ]
            heights.append(sum(vals) / len(vals) if vals else float("nan"))
        ax.bar(
            [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(methods))],
            heights,
            width,
            label=metric,
            hatch="//" if metric in PROXY_METRICS else None,
            edgecolor="white",
        )
    ax.set_xticks(
        range(len(methods)),
        [f"{m}\n(baseline)" if m in baselines else m for m in methods],
        fontsize=8,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title or f"{organism}: ground truth (solid) vs proxies (hatched)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return figure_to_svg(fig)


def _setting(field: str, value: float) -> str:
    return str(int(value)) if field == "k" else f"{value:.3g}"


def sweep_table(sweeps: Mapping[str, Mapping]) -> str:
    """HTML table of one organism's sparsity sweeps, ``{method: sparsity_sweep artifact}``: per
    method the settings tried (held-out variance explained, L0) and the one the rule chose."""
    if not sweeps:
        return ""
    body = []
    for method, sw in sorted(sweeps.items()):
        tried = " · ".join(
            f"<span class='{'best' if v == sw['chosen'] else ''}'>{escape(_setting(sw['field'], v))}: "
            f"VE {ve:.3f}, L0 {l0:.2f}</span>"
            for v, ve, l0 in zip(sw["values"], sw["variance_explained"], sw["l0"])
        )
        body.append(
            f"<tr><td class='name'>{escape(method)}</td><td class='name'>{escape(sw['field'])}</td>"
            f"<td class='name'>{tried}</td><td>{escape(_setting(sw['field'], sw['chosen']))}</td></tr>"
        )
    rule = next(iter(sweeps.values())).get("rule", "")
    return (
        "<table class='sweeps'><tr><th class='name'>method</th><th class='name'>setting</th>"
        "<th class='name'>tried, sparsest first (held-out variance explained, L0)</th><th>chosen</th></tr>"
        + "".join(body)
        + f"</table><p class='muted'>Rule: {escape(rule)}. The truth is never consulted.</p>"
    )


def section(store) -> str:
    """The report's feature-recovery section: per organism of the features track, the sorted
    per-feature max cosine of every dictionary, and ground-truth scores next to proxies."""
    jobs = {j.key: j for j in store.jobs() if j.track == "features" and j.status == "done"}
    if not jobs:
        return ""
    curves: dict[str, dict[str, list[float]]] = {}
    threshold = None
    for key, arts in store.artifacts("max_cosines").items():
        if key in jobs:
            art = arts["max_cosines"]
            curves.setdefault(jobs[key].organism, {})[jobs[key].method] = art["values"]
            threshold = art.get("threshold", threshold)
    sweeps: dict[str, dict[str, dict]] = {}
    for key, arts in store.artifacts("sparsity_sweep").items():
        if key in jobs:
            sweeps.setdefault(jobs[key].organism, {})[jobs[key].method] = arts["sparsity_sweep"]
    from interplab.report._page import baseline_methods

    baselines = baseline_methods(["features"])
    rows = store.rows()
    parts = [
        "<h2 id='features'>Feature recovery</h2><p class='muted'>Dictionaries trained on "
        "organisms whose true features are known. Left: for each true feature, the best cosine "
        "to any decoder direction (sorted). Right: ground-truth scores (solid) next to the usual "
        "proxies (hatched) — where they disagree, the proxies would have misled. The random "
        "baseline is an untrained dictionary of random directions. Below: how each dictionary's "
        "sparsity was chosen, from held-out activations only.</p>"
    ]
    for organism in sorted({j.organism for j in jobs.values()}):
        figs = []
        if organism in curves:
            figs.append(
                feature_recovery_plot(
                    curves[organism], threshold=threshold, title=f"{organism}: feature recovery"
                )
            )
        try:
            figs.append(feature_metrics_plot(rows, organism, baselines=baselines))
        except ValueError:
            pass
        parts.append(
            f"<h3>{escape(organism)}</h3><div class='grid'>"
            + "".join(f"<div class='card figure'>{f}</div>" for f in figs)
            + "</div>"
            + sweep_table(sweeps.get(organism, {}))
        )
    return "".join(parts)
