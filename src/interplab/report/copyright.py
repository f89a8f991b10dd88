"""Copyright report section: which fine-tuning documents made the model say this?

``section(store)``: per organism of the ``copyright`` track, one table (method × planted kind:
recall@10 with its 95% bootstrap interval over items and n, and seconds per query), the
gradient methods first, the lawyer's baselines (n-gram, BM25, embedding, membership, random) in
grey below and never highlighted; then the verdict in words, computed from the rows: per kind,
the best method and the best baseline, whether their intervals separate them, and where a
baseline beats every method (the n-gram and BM25 baselines on verbatim passages, typically).
Never runs a model.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

TRACK = "copyright"
KINDS = ("passage", "fact", "style")
METRICS = tuple(f"recall_at_10_{k}" for k in KINDS)
#: the columns: recall per kind, then the linear datamodeling score over subset retrainings
SHOWN = (*METRICS, "lds")
LABELS = {**{f"recall_at_10_{k}": f"{k} recall@10" for k in KINDS}, "lds": "LDS"}


def _baselines(methods: Sequence[str]) -> frozenset[str]:
    from interplab.eval.copyright import BASELINES
    from interplab.report._page import baseline_methods

    return baseline_methods([TRACK], methods) | (frozenset(BASELINES) & set(methods))


def _fmt(value: float | None, est: Mapping | None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.2f}"
    if est and est.get("low") is not None:
        text += (
            f" [{float(est['low']):.2f}, {float(est['high']):.2f}]"
            f" <span class='muted'>n={int(est['n'])}</span>"
        )
    return text


def verdict(table: Mapping[str, Mapping[str, Mapping]], baselines: frozenset[str]) -> list[str]:
    """Sentences, one per kind and one for LDS: the best method against the best baseline
    (intervals compared),
    from ``table[method][metric] = {"value", "low", "high", "n"}``."""
    out = []
    named = [(f"{k}s", m) for k, m in zip(KINDS, METRICS)] + [("LDS", "lds")]
    for kind, metric in named:
        vals = {
            m: row[metric]
            for m, row in table.items()
            if metric in row and row[metric].get("value") is not None
        }
        methods = {m: v for m, v in vals.items() if m not in baselines}
        controls = {m: v for m, v in vals.items() if m in baselines and m != "random"}
        if not methods or not controls:
            continue
        bm = max(methods, key=lambda m: methods[m]["value"])
        bb = max(controls, key=lambda m: controls[m]["value"])
        a, b = methods[bm], controls[bb]
        n = a.get("n")
        if b["value"] > a["value"]:
            sep = b.get("low") is not None and a.get("high") is not None and b["low"] > a["high"]
            out.append(
                f"{kind} (n={n}): the {bb} baseline wins ({b['value']:.2f} against {bm}'s "
                f"{a['value']:.2f}){'' if sep else ', though the intervals overlap'}."
            )
        elif b["value"] == a["value"]:
            out.append(f"{kind} (n={n}): {bm} and the {bb} baseline tie at {a['value']:.2f}.")
        else:
            sep = a.get("low") is not None and b.get("high") is not None and a["low"] > b["high"]
            out.append(
                f"{kind} (n={n}): {bm} leads ({a['value']:.2f} against the {bb} baseline's "
                f"{b['value']:.2f}){'' if sep else ', but the intervals overlap: not separated'}."
            )
    return out


def organism_table(
    rows: Sequence[Mapping], estimates: Mapping[str, Mapping], organism: str
) -> tuple[str, list[str]]:
    """The HTML table of one organism and its verdict sentences."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    seconds: dict[str, float | None] = {}
    reasons: dict[tuple[str, str], str] = {}
    for r in rows:
        if r["organism"] != organism:
            continue
        m = r["method"]
        if r["metric"] in SHOWN:
            est = dict(estimates.get(m, {}).get(r["metric"], {}))
            est["value"] = r["value"]
            table.setdefault(m, {})[r["metric"]] = est
            if r["value"] is None:
                reasons[m, r["metric"]] = r.get("reason") or "no value"
        elif r["metric"] == "seconds_per_query":
            seconds[m] = r["value"]
    baselines = _baselines(sorted(table))
    methods = sorted(m for m in table if m not in baselines)
    controls = sorted(m for m in table if m in baselines)
    best = {}
    for metric in SHOWN:
        vals = [table[m][metric]["value"] for m in methods if metric in table[m]]
        vals = [v for v in vals if v is not None]
        best[metric] = max(vals) if vals else None
    head = "".join(f"<th>{LABELS[m]}</th>" for m in SHOWN) + "<th>s / query</th>"
    body = []
    for m in methods + controls:
        base = m in baselines
        cells = []
        for metric in SHOWN:
            cell = table[m].get(metric)
            if cell is None:
                cells.append("<td>–</td>")
                continue
            title = reasons.get((m, metric))
            attr = f" title='{html.escape(title, quote=True)}'" if title else ""
            win = not base and cell["value"] is not None and cell["value"] == best[metric]
            cls = " class='best'" if win else ""
            cells.append(f"<td{cls}{attr}>{_fmt(cell['value'], cell)}</td>")
        s = seconds.get(m)
        cells.append(f"<td>{'n/a' if s is None else f'{s:.3g}'}</td>")
        tag = " <span class='tag'>(baseline)</span>" if base else ""
        row_cls = " class='baseline'" if base else ""
        body.append(
            f"<tr{row_cls}><td class='name'>{html.escape(m)}{tag}</td>{''.join(cells)}</tr>"
        )
    html_table = (
        f"<h3>{html.escape(organism)}</h3><table data-track='{TRACK}'><tr>"
        f"<th class='name'>method</th>{head}</tr>{''.join(body)}</table>"
    )
    return html_table, verdict(table, baselines)


def section(store: Any) -> str:
    jobs = [j for j in store.jobs() if j.track == TRACK and j.status == "done"]
    if not jobs:
        return ""
    keys = {j.key: j for j in jobs}
    pairs = {(j.organism, j.method) for j in jobs}
    rows = [r for r in store.rows() if (r["organism"], r["method"]) in pairs]
    estimates: dict[str, dict[str, Mapping]] = {}
    for key, arts in store.artifacts().items():
        if key in keys:
            job = keys[key]
            estimates.setdefault(job.organism, {})[job.method] = arts.get("estimates", {})
    parts = []
    for organism in sorted({j.organism for j in jobs}):
        table, words = organism_table(rows, estimates.get(organism, {}), organism)
        parts.append(table)
        if words:
            parts.append("<p><b>Verdict.</b> " + " ".join(html.escape(w) for w in words) + "</p>")
    return (
        "<h2 id='copyright'>Which fine-tuning documents made the model say this?</h2>"
        "<p class='muted'>SmolLM2-135M fine-tuned with LoRA on short documents with planted "
        "protected passages (copied verbatim), facts (stated in different words) and a letter "
        "style, each verified by retraining. Per planted item, the model's greedy output is "
        "attributed to the documents; recall@10 is the share of the item's planting documents "
        "among the top 10 (95% bootstrap interval over items, n items). The gradient methods "
        "attribute the output's loss through the adapters; the baselines (grey) are what a "
        "lawyer's expert would try first: word 3-gram overlap, BM25, sentence-embedding "
        "similarity, loss-based membership inference (the same ranking for every query) and "
        "random. LDS: per query, the Spearman correlation across retrainings on random halves "
        "of the documents between the scores summed over each half and the query's loss after "
        "that retraining (mean over queries, 95% bootstrap interval). Seconds per query include "
        "every pass over the documents.</p>" + "".join(parts)
    )
