"""Causal-track report fragment: per organism, hypotheses side by side with their scores.

``causal_section(rows, organism)`` returns an HTML string (a ``<section>``) holding a table of
hypothesis x metric and a bar chart (inline SVG via matplotlib's Agg backend, imported lazily).
Rows are the causal track's result rows (see :mod:`interplab.bench.tracks.causal`).
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping

ORDER = ("ground_truth", "circuit_eap", "misaligned", "shuffled")
SHOWN = ("counterfactual_accuracy", "iia", "loss_recovered")


def _table(rows: list[Mapping]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        key = r["method"] + (f" [{r['ablation']}]" if r.get("ablation") else "")
        out.setdefault(key, {})[r["metric"]] = float(r["value"])
    return out


def _svg(table: dict[str, dict[str, float]]) -> str:
    from interplab.report.plots import pyplot, figure_to_svg

    plt = pyplot()
    hyps = [h for h in ORDER if h in table]
    if not hyps:
        return ""
    fig, ax = plt.subplots(figsize=(6, 2.6))
    width = 0.8 / len(SHOWN)
    for j, metric in enumerate(SHOWN):
        vals = [table[h].get(metric, float("nan")) for h in hyps]
        ax.bar([i + j * width for i in range(len(hyps))], vals, width, label=metric)
    ax.set_xticks([i + width for i in range(len(hyps))], hyps)
    ax.set_ylim(min(0.0, *(v for h in hyps for v in table[h].values() if v == v)), 1.05)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return figure_to_svg(fig)


def causal_section(rows: Iterable[Mapping], organism: str) -> str:
    """HTML fragment for one organism (empty string if it has no causal rows)."""
    rows = [r for r in rows if r.get("organism") == organism]
    if not rows:
        return ""
    table = _table(rows)
    metrics = sorted({m for v in table.values() for m in v})
    order = [h for h in ORDER if h in table] + sorted(h for h in table if h not in ORDER)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join(
        f"<tr><td>{html.escape(h)}</td>" + "".join(
            f"<td>{table[h][m]:.3f}</td>" if m in table[h] else "<td>–</td>" for m in metrics)
        + "</tr>" for h in order)
    return (f'<section class="causal"><h3>Explanations that predict: {html.escape(organism)}</h3>'
            f"<table><tr><th>hypothesis</th>{head}</tr>{body}</table>{_svg(table)}</section>")


def section(store) -> str:
    """The report's causal section: every organism that has causal-track jobs."""
    organisms = sorted({j.organism for j in store.jobs() if j.track == "causal" and j.status == "done"})
    if not organisms:
        return ""
    rows = store.rows()
    parts = [causal_section(rows, o) for o in organisms]
    return ("<h2 id='causal'>Explanations that predict</h2><p class='muted'>Per organism, the "
            "ground-truth hypothesis next to a discovered circuit and deliberately wrong controls: "
            "counterfactual-prediction accuracy, interchange-intervention accuracy (IIA) and loss "
            "recovered; replacement fidelity compares a component rebuilt from its explanation with "
            "mean ablation.</p><div class='figure-wrap'>" + "".join(parts) + "</div>")
