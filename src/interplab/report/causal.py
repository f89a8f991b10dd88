"""Causal-track report fragment: per organism, hypotheses side by side with their scores.

``causal_section(rows, organism)`` returns an HTML string (a ``<section>``) holding a table of
hypothesis x metric and a bar chart (inline SVG via matplotlib's Agg backend, imported lazily).
Rows are the causal track's result rows (see :mod:`interplab.bench.tracks.causal`).
"""

from __future__ import annotations

import html
import io
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


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
