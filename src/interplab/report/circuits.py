"""The circuits track's report section: edge ROC curves, faithfulness curves, the true and
recovered circuits, and the interactive circuit explorer.

Reads the ``roc``, ``faithfulness``, ``true_circuit`` and ``circuit`` artifacts of every job kept
on the per-organism tables (:func:`interplab.report._page.detail`: not the zoo's 200 organisms).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from html import escape
from typing import Any

from interplab.core.circuit import Circuit
from interplab.report import circuit_explorer
from interplab.report._page import collapsible, detail
from interplab.report.circuit_svg import circuit_svg
from interplab.report.plots import line_plot


def section(store: Any) -> str:
    """The circuits sections (each collapsed; "" where a run has none of its artifacts)."""
    shown = detail(store)
    return (
        collapsible("ROC curves", roc_section(shown))
        + collapsible("Faithfulness curves", faithfulness_section(shown))
        + collapsible("Recovered circuits", circuits_section(shown))
        + circuit_explorer.section(shown)
    )


def _group_artifacts(store: Any, name: str) -> dict[tuple[str, str], dict[str, dict]]:
    """{(organism, ablation): {method: artifact}} for circuits-track artifacts called ``name``."""
    jobs = {j.key: j for j in store.jobs()}
    grouped: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for key, arts in store.artifacts(name).items():
        job = jobs.get(key)
        if job is not None:
            grouped[(job.organism, job.ablation or "–")][job.method] = arts[name]
    return grouped


def _curve_grid(
    store: Any,
    artifact: str,
    intro: str,
    series: Callable[[dict[str, dict]], dict[str, tuple[Any, Any]]],
    **plot: Any,
) -> str:
    """A grid of one line plot per (organism, ablation) of the ``artifact`` curves, under the
    heading and note ``intro`` ("" when the run stored none)."""
    grouped = _group_artifacts(store, artifact)
    if not grouped:
        return ""
    out = [intro + "<div class='grid'>"]
    for (organism, ablation), by_method in sorted(grouped.items()):
        out.append(
            "<div class='card figure'>"
            + line_plot(series(by_method), title=f"{organism} · {ablation}", **plot)
            + "</div>"
        )
    out.append("</div>")
    return "".join(out)


def roc_section(store: Any) -> str:
    return _curve_grid(
        store,
        "roc",
        "<h2 id='roc'>Edge ROC curves</h2><p class='muted'>Edge scores against the ground-truth "
        "circuit that matches the ablation used (area in the legend).</p>",
        lambda by_method: {
            f"{m} ({a.get('auc', float('nan')):.2f})": (a["fpr"], a["tpr"])
            for m, a in sorted(by_method.items())
        },
        xlabel="false positive rate",
        ylabel="true positive rate",
        diagonal=True,
        ylim=(0, 1.02),
    )


def faithfulness_section(store: Any) -> str:
    return _curve_grid(
        store,
        "faithfulness",
        "<h2 id='faithfulness'>Faithfulness curves</h2><p class='muted'>f(C) = (m(C) − m(∅)) / "
        "(m(N) − m(∅)) keeping the top-scored edges; CPR is the area under f, CMD the area "
        "under |1 − f|.</p>",
        lambda by_method: {m: (a["percent"], a["f"]) for m, a in sorted(by_method.items())},
        xlabel="% of edges kept",
        ylabel="faithfulness f",
        xlog=True,
    )


def circuits_section(store: Any) -> str:
    truths = _group_artifacts(store, "true_circuit")
    found = _group_artifacts(store, "circuit")
    if not truths:
        return ""
    out = [
        "<h2 id='circuits'>True and recovered circuits</h2><p class='muted'>Left: the ground "
        "truth for the ablation. Then each method's top edges (as many as the truth has): "
        "red dashed = not in the truth, grey dotted = missed.</p>"
    ]
    for (organism, ablation), by_method in sorted(truths.items()):
        truth = Circuit.from_json(next(iter(by_method.values())))
        cards = [circuit_svg(truth, title="ground truth")]
        for method, body in sorted(found.get((organism, ablation), {}).items()):
            cards.append(circuit_svg(Circuit.from_json(body), title=method, highlight=truth))
        out.append(
            f"<h3>{escape(organism)} · {escape(ablation)}</h3><div class='grid'>"
            + "".join(f"<div class='card figure'>{c}</div>" for c in cards)
            + "</div>"
        )
    return "".join(out)
