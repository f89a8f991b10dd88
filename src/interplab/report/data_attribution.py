"""Data-attribution report: the bench section and the ``trace-data`` page (self-contained HTML).

``section(store)``: per organism, one table: each method's LDS, leave-one-out correlation,
mislabel recall at 10% and planted recall, each as value [95% interval] n=…, the baselines
(random, nearest neighbours) in grey below the methods and never highlighted; a red note where a
baseline beats every method on a metric.

``trace_page(data)``: the output of ``interplab trace-data``: the input, its top training
examples drawn as 8×8 images (inline SVG; token contexts as text) with scores and flipped /
planted tags, and the checks.
Never runs a model.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

METRICS = ("lds", "loo_correlation", "mislabel_recall_at_10", "planted_recall")
LABELS = {
    "lds": "LDS",
    "loo_correlation": "LOO correlation",
    "mislabel_recall_at_10": "mislabel recall @10%",
    "planted_recall": "planted recall",
}
TRACK = "data_attribution"


def _baselines() -> frozenset[str]:
    from interplab.report._page import baseline_methods

    return baseline_methods([TRACK])


def _cell(value: float | None, est: Mapping | None, reason: str | None, best: bool) -> str:
    if value is None:
        return f"<td title='{html.escape(reason or 'no value', quote=True)}'>n/a</td>"
    text = f"{value:.3f}"
    if est and est.get("low") is not None:
        text += f" [{float(est['low']):.3f}, {float(est['high']):.3f}] <span class='muted'>n={int(est['n'])}</span>"
    return f"<td class='best'>{text}</td>" if best else f"<td>{text}</td>"


def organism_table(
    rows: Sequence[Mapping],
    estimates: Mapping[str, Mapping],
    organism: str,
    baselines: frozenset[str],
) -> str:
    table: dict[str, dict[str, Mapping]] = {}
    for r in rows:
        if r["organism"] == organism and r["metric"] in METRICS:
            table.setdefault(r["method"], {})[r["metric"]] = r
    methods = sorted(m for m in table if m not in baselines)
    controls = sorted(m for m in table if m in baselines)
    best, notes = {}, []
    for metric in METRICS:
        vals = {
            m: table[m][metric]["value"]
            for m in methods
            if metric in table[m] and table[m][metric]["value"] is not None
        }
        top = max(vals.values()) if vals else None
        best[metric] = {m for m, v in vals.items() if v == top}
        for c in controls:
            v = table[c].get(metric, {}).get("value")
            if top is not None and v is not None and v > top:
                notes.append(
                    f"{html.escape(c)} ({v:.3f}) beats every method on {LABELS[metric]} (best {top:.3f})"
                )
    head = "".join(f"<th>{LABELS[m]}</th>" for m in METRICS)
    body = []
    for m in methods + controls:
        cls = " class='baseline'" if m in baselines else ""
        tag = " <span class='tag'>(baseline)</span>" if m in baselines else ""
        cells = "".join(
            _cell(
                table[m].get(k, {}).get("value"),
                estimates.get(m, {}).get(k),
                table[m].get(k, {}).get("reason"),
                m in best[k] and m not in baselines,
            )
            if k in table[m]
            else "<td>–</td>"
            for k in METRICS
        )
        body.append(f"<tr{cls}><td class='name'>{html.escape(m)}{tag}</td>{cells}</tr>")
    return (
        f"<h3>{html.escape(organism)}</h3><table data-track='{TRACK}'><tr><th class='name'>method</th>"
        f"{head}</tr>{''.join(body)}</table>"
        + "".join(f"<p class='baseline-note'>{n}</p>" for n in notes)
    )


def section(store: Any) -> str:
    jobs = [j for j in store.jobs() if j.track == TRACK and j.status == "done"]
    if not jobs:
        return ""
    keys = {j.key: j for j in jobs}
    pairs = {(j.organism, j.method) for j in jobs}
    rows = [r for r in store.rows() if (r["organism"], r["method"]) in pairs]
    estimates: dict[str, dict[str, Mapping]] = {}
    truth: dict[str, Mapping] = {}
    for key, arts in store.artifacts().items():
        if key in keys:
            estimates.setdefault(keys[key].organism, {})[keys[key].method] = arts.get(
                "estimates", {}
            )
            truth[keys[key].organism] = arts.get("ground_truth_used", {})
    baselines = _baselines()
    parts = []
    for organism in sorted({j.organism for j in jobs}):
        t = truth.get(organism, {})
        parts.append(organism_table(rows, estimates.get(organism, {}), organism, baselines))
        if t:
            parts.append(
                f"<p class='muted'>Ground truth: {html.escape(str(t.get('source', '')))}; "
                f"{t.get('subsets')} retrainings on {t.get('subset_fraction')} subsets, "
                f"{t.get('loo_points')} leave-one-out, {t.get('test_points')} test points, "
                f"{t.get('flipped')} flipped labels, {t.get('planted')} planted examples.</p>"
            )
    return (
        "<h2 id='data-attribution'>Which training data did the model rely on?</h2><p class='muted'>"
        "Training-data attribution scored against retraining (LDS: Spearman correlation of predicted "
        "and retrained outputs over random 50% subsets; leave-one-out correlation), against 10% "
        "planted flipped labels (self-influence, inspecting 10% of the data) and planted trigger "
        "examples (are they the top attributions of triggered inputs?). 95% intervals: bootstrap over "
        "test points, Wilson over flipped examples. Baselines (grey) are never highlighted.</p>"
        + "".join(parts)
    )


def digit_svg(pixels: Sequence[float], size: int = 64) -> str:
    cell = size / 8
    rects = "".join(
        f"<rect x='{(k % 8) * cell:.1f}' y='{(k // 8) * cell:.1f}' width='{cell:.1f}' height='{cell:.1f}' "
        f"fill='rgb({int(255 * (1 - v))},{int(255 * (1 - v))},{int(255 * (1 - v))})'/>"
        for k, v in enumerate(pixels)
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' "
        f"viewBox='0 0 {size} {size}' role='img'>{rects}</svg>"
    )


_CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 16px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 18px}th,td{border:1px solid #ddd;padding:4px 8px}
th{background:#f4f4f4}.grid{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;
padding:6px;text-align:center;font-size:12px;width:96px}.flipped{border-color:#c62828;background:#fdecea}
.planted{border-color:#1565c0;background:#e8f0fd}.muted{color:#777;font-size:12px}
code.tokens{display:block;padding:18px 0;font-size:13px}"""


def _input(item: Mapping[str, Any], size: int = 64) -> str:
    """An 8×8 digit as an inline SVG, or a token context as text."""
    if "tokens" in item:
        return f"<code class='tokens'>{' '.join(f't{t}' for t in item['tokens'])} →</code>"
    return digit_svg(item["pixels"], size)


def trace_page(data: Mapping[str, Any]) -> str:
    title = f"trace-data — {data['organism']} {data['split']}[{data['index']}] by {data['method']}"
    cards = []
    for rank, row in enumerate(data["top"], 1):
        cls = "card flipped" if row["flipped"] else "card planted" if row["planted"] else "card"
        tags = "flipped label" if row["flipped"] else "planted" if row["planted"] else ""
        tags = "planted passage" if row["planted"] and "tokens" in row else tags
        cards.append(
            f"<div class='{cls}' data-train-index='{row['train_index']}'>#{rank} "
            f"{_input(row)}<br>train[{row['train_index']}]<br>label {row['label']} "
            f"({'true' if 'tokens' in row else 'digit'} {row['true_digit']})<br>score {row['score']:+.3g}<br><b>{tags}</b></div>"
        )
    checks = []
    for name, value in data["checks"].items():
        if isinstance(value, Mapping):
            shown = f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}] n={value['n']}"
        else:
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        checks.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(shown)}</td></tr>")
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Input (label attributed: <b>{data['label_attributed']}</b>, model predicts "
        f"<b>{data['predicted']}</b>):</p>{_input(data, 96)}"
        f"<h2>Top {len(data['top'])} training examples</h2><p class='muted'>Score: the predicted "
        "change of the label margin from training on the example (positive: it pushed the model "
        "towards this output). Red: a planted flipped label; blue: a planted trigger example.</p>"
        f"<div class='grid'>{''.join(cards)}</div><h2>Checks</h2><p class='muted'>Against retraining "
        "(LDS over 50% subsets, leave-one-out) and planted truth; the method never saw either.</p>"
        f"<table><tr><th>check</th><th>value</th></tr>{''.join(checks)}</table>"
        f"<p class='muted'>{data['n_train']} training examples; attribution took {data['seconds']:.2f} s.</p>"
        "</body></html>"
    )


def table_trace_page(data: Mapping[str, Any]) -> str:
    """A self-contained HTML page of ``interplab trace-data --model``'s result: per test row, its
    values and its top training rows (values, label, score)."""
    names = [f["name"] for f in data["features"]]
    esc = html.escape

    def cells(row: dict) -> str:
        return "".join(f"<td>{esc(str(row[n]))}</td>" for n in names)

    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    parts = []
    for t in data["tests"]:
        rows = "".join(
            f"<tr data-train-index='{r['train_index']}'><td>train[{r['train_index']}]</td>"
            f"<td>{r['score']:+.4g}</td><td>{esc(r['label'])}</td>{cells(r['row'])}</tr>"
            for r in t["top"]
        )
        parts.append(
            f"<h2>test[{t['index']}]: label {esc(t['label_attributed'])}, predicted "
            f"{esc(t['predicted'])}</h2><table><tr><th></th><th></th><th>label</th>{head}</tr>"
            f"<tr class='test'><td>test[{t['index']}]</td><td></td>"
            f"<td>{esc(t['label_attributed'])}</td>{cells(t['row'])}</tr>"
            f"<tr><th>training row</th><th>score</th><th>label</th>{head}</tr>{rows}</table>"
        )
    title = f"trace-data — {data['model']} by {data['method']}"
    notes = "".join(f"<p class='muted'>note: {esc(n)}</p>" for n in data["notes"])
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:right}.test{background:#eef}.muted{color:#666}</style>"
        f"</head><body><h1>{esc(title)}</h1><p>Training rows of {esc(data['train'])} that most "
        f"raised the margin of each test row's label ({esc(data['test'])}); score: the predicted "
        "change of that margin from training on the row. No ground truth exists for this "
        f"model, so these are estimates, unchecked.</p>{notes}{''.join(parts)}"
        f"<p class='muted'>{data['n_train']} training rows; attribution took "
        f"{data['seconds']:.2f} s.</p></body></html>"
    )
