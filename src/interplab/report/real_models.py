"""Self-contained HTML reports for methods run on real models (heatmaps as inline base64 PNG).

Reads result dicts (the ``to_dict()`` of the method dataclasses); never runs a model.
matplotlib (the ``report`` extra) is imported lazily, with the Agg backend.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}"
    "h2{border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ddd;padding:3px 8px}img{max-width:100%}th{background:#f4f4f4}"
    ".muted{color:#666;font-size:13px}.note{background:#fff8e1;border-left:4px solid #f0b400;"
    "padding:6px 12px;margin:8px 0}td.sign{font-weight:bold;text-align:center}"
    "tr.neg td.sign{color:#c62828}tr.pos td.sign{color:#2e7d32}"
    ".tok{display:inline-block;min-width:1.6em;text-align:center;margin:2px;padding:2px;"
    "border:1px solid #ccc}.tok.changed{border:2px solid #c00}"
    "pre.sample{white-space:pre-wrap;background:#f7f7f7;padding:4px 8px;margin:2px 0}"
    "tr.baseline{color:#555;font-style:italic;background:#f7f7f7}tr.planted td{background:#e8f4e8}"
)


def _plt() -> Any:
    from interplab.report.plots import pyplot

    return pyplot()


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def heatmap(
    matrix: Sequence[Sequence[float]],
    title: str,
    xlabel: str = "head",
    ylabel: str = "layer",
    diverging: bool = True,
) -> str:
    """An <img> of a [rows, cols] heatmap."""
    plt = _plt()
    rows = len(matrix)
    fig, ax = plt.subplots(figsize=(5.5, max(2.5, rows * 0.22)))
    flat = [abs(v) for r in matrix for v in r] or [1.0]
    vmax = max(flat) or 1.0
    im = ax.imshow(
        matrix,
        aspect="auto",
        cmap="RdBu_r" if diverging else "viridis",
        vmin=-vmax if diverging else None,
        vmax=vmax if diverging else None,
    )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax)
    return _png(fig)


def line(values: Sequence[float], title: str, xlabel: str, ylabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3))
    ax.plot(list(values), marker="o")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _png(fig)


def images(arrays: Sequence[Sequence[float]], titles: Sequence[str], side: int = 28) -> str:
    """A row of [side*side] attribution maps."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(arrays), figsize=(2 * len(arrays), 2.3), squeeze=False)
    for ax, arr, title in zip(axes[0], arrays, titles):
        vmax = max(abs(v) for v in arr) or 1.0
        ax.imshow(
            [list(arr[i * side : (i + 1) * side]) for i in range(side)],
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
        )
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return _png(fig)


def table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(r[c]))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def page(
    title: str, sections: Sequence[tuple[str, str]], data: dict[str, Any] | None = None
) -> str:
    """A complete HTML document; ``data`` is embedded as JSON for re-use."""
    parts = [f"<h2>{escape(h)}</h2>{body}" for h, body in sections]
    blob = (
        ""
        if data is None
        else (f'<script type="application/json" id="data">{escape(json.dumps(data))}</script>')
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{''.join(parts)}{blob}"
        "</body></html>"
    )


def write(path: str | Path, html: str) -> Path:
    from interplab.models.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, html)
    return path


def induction_report(model: str, result: dict[str, Any]) -> str:
    summary = (
        f"<p>{result['n_seqs']} sequences of {result['seq_len']} random tokens, repeated. "
        f"Mean loss on the first half {result['loss_first']:.3f}, on the repeated half "
        f"{result['loss_repeat']:.3f}.</p>"
    )
    return page(
        f"Induction heads: {model}",
        [
            ("Summary", summary + table(result["top_heads"])),
            (
                "Induction score per head",
                heatmap(result["scores"], "induction score", diverging=False),
            ),
        ],
        result,
    )


def ranked_heads_table(ranked: Sequence[dict[str, Any]], top_k: int = 10) -> str:
    """The ``top_k`` heads by |score| as a table with a sign column: a head that pushes the
    wrong way ranks beside the ones that help (``ranked`` from ``rank_heads`` in the CLI)."""
    rows = "".join(
        f"<tr class='head {'neg' if h['score'] < 0 else 'pos'}'><td>{h['rank']}</td>"
        f"<td>{escape(h['head'])}</td><td class='sign'>{'−' if h['score'] < 0 else '+'}</td>"
        f"<td>{h['score']:+.3f}</td><td>{h['logit_diff_change']:+.3f}</td></tr>"
        for h in ranked[:top_k]
    )
    return (
        "<table class='ranked'><tr><th>rank by |score|</th><th>head</th><th>sign</th>"
        "<th>score (fraction of gap restored)</th><th>Δ logit diff (logits)</th></tr>"
        f"{rows}</table>"
    )


def patching_report(model: str, results: dict[str, Any]) -> str:
    """The ``interplab patch`` page: the logit differences and their gap, what a score means,
    and per method the heads ranked by |score| (with the sign) beside the heatmap."""
    gap = results.get("gap", results["clean_logit_diff"] - results["corrupt_logit_diff"])
    unit = results.get(
        "score_unit",
        "fraction of the clean-corrupted logit-difference gap restored by patching the head",
    )
    sections = [
        (
            "Summary",
            table(
                [
                    {"metric": "clean logit diff (logits)", "value": results["clean_logit_diff"]},
                    {
                        "metric": "corrupted logit diff (logits)",
                        "value": results["corrupt_logit_diff"],
                    },
                    {"metric": "gap: clean − corrupted (logits)", "value": gap},
                    {"metric": "prompts", "value": results["n_prompts"]},
                ]
            )
            + f"<p id='unit'><b>Score</b>: {escape(unit)}. Heads are ranked by |score|; the "
            "sign column says which way each pushes; Δ logit diff = score × gap.</p>"
            + "<p>Examples: "
            + escape(" | ".join(results["examples"]))
            + "</p>",
        )
    ]
    for key, title in (
        ("activation_patching", "Activation patching (attn_z, clean into corrupted)"),
        ("attribution_patching", "Attribution patching (first-order estimate)"),
    ):
        if key in results:
            r = results[key]
            ranked = r.get("ranked_heads")
            sections.append(
                (
                    title,
                    f"<p class='muted'>computed in {r['seconds']:.1f} s</p>"
                    + (ranked_heads_table(ranked) if ranked else "")
                    + heatmap(r["scores"], "fraction of gap restored (signed)"),
                )
            )
    if "lens" in results:
        lens = results["lens"]
        sections.append(
            (
                "Logit lens",
                line(
                    lens["layer_logit_diff"],
                    "logit diff read after each layer",
                    "layer",
                    "logit diff",
                ),
            )
        )
        sections.append(
            ("Direct logit attribution per head", heatmap(lens["head_dla"], "DLA (logit diff)"))
        )
    return page(f"IOI-style patching: {model}", sections, results)


def attribution_report(model: str, results: dict[str, Any]) -> str:
    sections = [("Completeness", table(results["completeness"]))]
    if "maps" in results:
        sections.append(("Integrated gradients", images(results["maps"], results["titles"])))
    if "tokens" in results:
        rows = [
            {"token": t, "ig": a, "input_x_grad": b}
            for t, a, b in zip(results["tokens"], results["ig"], results["ixg"])
        ]
        sections.append(("Token attributions", table(rows)))
    return page(f"Attributions: {model}", sections, results)
