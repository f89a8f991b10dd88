"""The page of ``interplab circuit``: faithfulness curves beside the baselines, the circuit as an
interactive graph (score-threshold slider) and the attention of its top heads (token hover).
Reads the result dict of :func:`interplab.eval.circuit_study.circuit_study`; runs nothing."""

from __future__ import annotations

from html import escape
from typing import Any

from interplab.report.viewer import circuit_data, line_chart, viewer_page

_COLORS = ["#1f6fb4", "#999999", "#d98a1c", "#3a3", "#a3a"]


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _curve_table(curves: list[dict[str, Any]], baselines: list[str]) -> str:
    rows = [
        "<table><tr><th>ranking</th><th>n prompts</th><th>CPR (higher better) [95% CI]</th>"
        "<th>CMD (lower better) [95% CI]</th><th>best f at ≤ 5% of edges</th></tr>"
    ]
    for c in curves:
        small = [(s, f) for s, f in zip(c["sizes"], c["f"]) if s <= 0.05]
        best = max(small, key=lambda p: p[1]) if small else None
        tag = " (baseline)" if c["method"] in baselines else ""
        rows.append(
            f"<tr><td>{escape(c['method'])}{tag}</td><td>{c['n_prompts']}</td>"
            f"<td>{c['cpr']:.3f} {_ci(c['cpr_ci'])}</td><td>{c['cmd']:.3f} {_ci(c['cmd_ci'])}</td>"
            f"<td>{'' if best is None else f'f = {best[1]:.3f} at {best[0]:.2%}'}</td></tr>"
        )
    return "".join(rows) + "</table>"


def circuit_report(
    result: dict[str, Any],
    attention: dict[str, Any] | None = None,
    ablation_for_graph: str | None = None,
) -> str:
    """HTML of a circuit study (see the module docstring)."""
    abls = result["ablations"]
    graph_abl = ablation_for_graph or next(iter(abls))
    intro = (
        f"<p>Model <b>{escape(result['model'])}</b>, task <b>{escape(result['task'])}</b>: "
        f"{escape(result['task_description'])}. {result['n_prompts']} prompts; "
        f"method <b>{escape(result['method'])}</b>"
        + (f" ({result['steps']} steps, {result['rule']} rule)" if result.get("steps") else "")
        + (
            f"; curves on {result['n_eval_prompts']} held-out prompts"
            if result.get("eval_held_out")
            else "; curves on the same prompts (in-sample)"
        )
        + f" over the full graph of {result['n_edges']:,} edges (embeddings, every head's q/k/v "
        "inputs and output, every MLP, logits). Faithfulness f(C) = (m(C) − m(∅)) / "
        "(m(N) − m(∅)) with m the mean logit difference; CPR = area under f, CMD = area "
        "under |1 − f| over the circuit size (fraction of edges). Intervals: 95% bootstrap "
        f"over prompts. Random baseline: mean of {result['n_random_seeds']} random edge "
        "orders.</p>"
    )
    sections = []
    for abl, block in abls.items():
        curves = block["curves"]
        series = [
            (c["method"], c["sizes"], c["f"], _COLORS[i % len(_COLORS)])
            for i, c in enumerate(curves)
        ]
        bands = [(c["f_low"], c["f_high"]) for c in curves]
        chart = line_chart(
            series,
            bands=bands,
            title=f"faithfulness, {abl} ablation",
            xlabel="circuit size (fraction of edges, log)",
            ylabel="f",
        )
        c0 = curves[0]
        note = (
            f"<p>m(N) = {c0['m_full']:.3f} (clean), m(∅) = {c0['m_empty']:.3f} (every edge "
            f"{abl}-ablated). Scores: {block['forward_passes']} forward and "
            f"{block['backward_passes']} backward passes over batch chunks, "
            f"{block['seconds']:.0f} s; the signed scores sum to {block['signed_sum']:.3f}.</p>"
        )
        sections.append(
            (
                f"Faithfulness under {abl} ablation",
                note + chart + _curve_table(curves, result.get("baselines", [])),
            )
        )
    circuit = circuit_data(abls[graph_abl]["top_edges"])
    return viewer_page(
        f"interplab circuit: {result['model']} / {result['task']}",
        intro,
        sections=sections,
        circuit=circuit,
        attention=attention,
    )
