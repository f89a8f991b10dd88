"""The self-contained HTML report of a bench run (works offline: inline CSS and SVG, no CDN).

Reads ``DIR/results.sqlite`` (rows and artifacts); never runs a model.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Callable

from interplab.bench.runner import DB_NAME
from interplab.bench.store import ResultsStore
from interplab.core.circuit import Circuit
from interplab.errors import ResultsStoreError
from interplab.models.io import atomic_write_text
from interplab.report.circuit_svg import circuit_svg
from interplab.report.plots import line_plot

#: Extra report sections: functions (store) -> HTML fragment ("" to skip). Tracks add theirs.
SECTIONS: list[Callable[[ResultsStore], str]] = []

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td.name,th.name{text-align:left}.best{font-weight:bold;background:#e8f4e8}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #eee;border-radius:6px;padding:8px}
.muted{color:#777;font-size:12px}.scroll{overflow-x:auto}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""

_LOWER_IS_BETTER = {"cmd", "l0", "dead_fraction", "forward_passes", "method_seconds"}
#: Headline metrics, shown first in this order; bookkeeping metrics go to the end.
_METRIC_ORDER = ("edge_auroc", "edge_auroc_mismatched", "cpr", "cmd", "node_auroc",
                 "edge_auroc_pessimistic", "mmcs", "feature_f1", "variance_explained", "l0",
                 "loss_recovered", "counterfactual_accuracy", "iia", "replacement_fidelity",
                 "kl_recovered", "probe_selectivity", "probe_accuracy")
_BOOKKEEPING = ("forward_passes", "method_seconds", "n_pairs")


def _metric_rank(metric: str) -> tuple[int, int, str]:
    if metric in _METRIC_ORDER:
        return (0, _METRIC_ORDER.index(metric), metric)
    return (2 if metric in _BOOKKEEPING else 1, 0, metric)


def render_report(out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` from the stored results; returns its path."""
    out_dir = Path(out_dir)
    db = out_dir / DB_NAME
    if not db.is_file():
        raise ResultsStoreError(f"no {DB_NAME} in {out_dir}; run `interplab bench --out {out_dir}` first")
    with ResultsStore(db) as store:
        html = build_html(store, title=f"interplab bench — {out_dir.name}")
    path = out_dir / "report.html"
    atomic_write_text(path, html)
    return path


def build_html(store: ResultsStore, title: str) -> str:
    rows = store.rows()
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
             f"<p class='muted'>Generated {_dt.datetime.now().isoformat(timespec='seconds')} · "
             f"{len(rows)} result rows · {len(store.jobs())} jobs</p>"]
    parts.append(leaderboard_section(rows))
    parts.append(roc_section(store))
    parts.append(faithfulness_section(store))
    parts.append(circuits_section(store))
    from interplab.report import causal, features

    for section in [features.section, causal.section, *SECTIONS]:
        parts.append(section(store))
    parts.append(failures_section(store))
    parts.append("</body></html>")
    return "".join(parts)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def leaderboard_section(rows: list[dict]) -> str:
    """One table per metric: rows (organism, ablation), columns methods; best per row bold."""
    if not rows:
        return "<h2>Leaderboard</h2><p>No results yet.</p>"
    by_metric: dict[str, dict[tuple, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by_metric[r["metric"]][(r["organism"], r["ablation"] or "–")][r["method"]] = r["value"]
    out = ["<h2 id='leaderboard'>Leaderboard</h2><p class='muted'>Each table is one metric; rows "
           "are organism × ablation, columns are methods; the best value per row is highlighted "
           "(higher is better except for " + ", ".join(sorted(_LOWER_IS_BETTER)) + ").</p>"]
    for metric in sorted(by_metric, key=_metric_rank):
        table = by_metric[metric]
        methods = sorted({m for cells in table.values() for m in cells})
        out.append(f"<h3>{escape(metric)}</h3><div class='scroll'><table class='leaderboard' data-metric='{escape(metric)}'>"
                   "<tr><th class='name'>organism</th><th class='name'>ablation</th>"
                   + "".join(f"<th>{escape(m)}</th>" for m in methods) + "</tr>")
        for (organism, ablation), cells in sorted(table.items()):
            pick = min if metric in _LOWER_IS_BETTER else max
            best = pick(cells.values()) if cells else None
            tds = "".join(
                f"<td class='{'best' if cells.get(m) == best and len(cells) > 1 else ''}'>{_fmt(cells.get(m))}</td>"
                for m in methods)
            out.append(f"<tr><td class='name'>{escape(organism)}</td><td class='name'>{escape(ablation)}</td>{tds}</tr>")
        out.append("</table></div>")
    return "".join(out)


def _group_artifacts(store: ResultsStore, name: str) -> dict[tuple[str, str], dict[str, dict]]:
    """{(organism, ablation): {method: artifact}} for circuits-track artifacts called ``name``."""
    jobs = {j.key: j for j in store.jobs()}
    grouped: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for key, arts in store.artifacts(name).items():
        job = jobs.get(key)
        if job is not None:
            grouped[(job.organism, job.ablation or "–")][job.method] = arts[name]
    return grouped


def roc_section(store: ResultsStore) -> str:
    grouped = _group_artifacts(store, "roc")
    if not grouped:
        return ""
    out = ["<h2 id='roc'>Edge ROC curves</h2><p class='muted'>Edge scores against the ground-truth "
           "circuit that matches the ablation used (area in the legend).</p><div class='grid'>"]
    for (organism, ablation), by_method in sorted(grouped.items()):
        series = {f"{m} ({a.get('auc', float('nan')):.2f})": (a["fpr"], a["tpr"]) for m, a in sorted(by_method.items())}
        out.append("<div class='card figure'>" + line_plot(
            series, title=f"{organism} · {ablation}", xlabel="false positive rate",
            ylabel="true positive rate", diagonal=True, ylim=(0, 1.02)) + "</div>")
    out.append("</div>")
    return "".join(out)


def faithfulness_section(store: ResultsStore) -> str:
    grouped = _group_artifacts(store, "faithfulness")
    if not grouped:
        return ""
    out = ["<h2 id='faithfulness'>Faithfulness curves</h2><p class='muted'>f(C) = (m(C) − m(∅)) / "
           "(m(N) − m(∅)) keeping the top-scored edges; CPR is the area under f, CMD the area "
           "under |1 − f|.</p><div class='grid'>"]
    for (organism, ablation), by_method in sorted(grouped.items()):
        series = {m: (a["percent"], a["f"]) for m, a in sorted(by_method.items())}
        out.append("<div class='card figure'>" + line_plot(
            series, title=f"{organism} · {ablation}", xlabel="% of edges kept", ylabel="faithfulness f",
            xlog=True) + "</div>")
    out.append("</div>")
    return "".join(out)


def circuits_section(store: ResultsStore) -> str:
    truths = _group_artifacts(store, "true_circuit")
    found = _group_artifacts(store, "circuit")
    if not truths:
        return ""
    out = ["<h2 id='circuits'>True and recovered circuits</h2><p class='muted'>Left: the ground "
           "truth for the ablation. Then each method's top edges (as many as the truth has): "
           "red dashed = not in the truth, grey dotted = missed.</p>"]
    for (organism, ablation), by_method in sorted(truths.items()):
        truth = Circuit.from_json(next(iter(by_method.values())))
        cards = [circuit_svg(truth, title="ground truth")]
        for method, body in sorted(found.get((organism, ablation), {}).items()):
            cards.append(circuit_svg(Circuit.from_json(body), title=method, highlight=truth))
        out.append(f"<h3>{escape(organism)} · {escape(ablation)}</h3><div class='grid'>"
                   + "".join(f"<div class='card figure'>{c}</div>" for c in cards) + "</div>")
    return "".join(out)


def failures_section(store: ResultsStore) -> str:
    failed = [j for j in store.jobs() if j.status == "failed"]
    if not failed:
        return ""
    items = "".join(f"<li><code>{escape(j.key)}</code>: {escape((j.error or '').strip().splitlines()[-1])}</li>"
                    for j in failed)
    return f"<h2 id='failures'>Failed jobs</h2><ul>{items}</ul><p class='muted'>Rerun the same " \
           "command to retry them; finished jobs are not recomputed.</p>"
