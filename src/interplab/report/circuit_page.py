"""The page of ``interplab circuit``: what the drawn circuit recovers, MIB's scores beside the
baselines, faithfulness curves on a log and a linear axis, the circuit as a labelled graph
(score-threshold slider) and the attention of its top heads (token hover).

Reads the result dict of :func:`interplab.eval.circuit_study.circuit_study`; runs nothing."""

from __future__ import annotations

from html import escape
from typing import Any

from interplab.report.viewer import circuit_data, line_chart, viewer_page

_COLORS = ["#1f6fb4", "#6aaed6", "#d98a1c", "#3a3", "#a3a", "#999999"]


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _first_reaching(curve: dict[str, Any], target: float = 0.8) -> str:
    for s, f in zip(curve["sizes"], curve["f"]):
        if f >= target:
            return f"{s:.1%} of the edges"
    return "no size below 100%"


def _summary_table(summary: dict[str, dict[str, Any]]) -> str:
    sizes = sorted({s for row in summary.values() for s in row["f_at"]}, key=float)
    head = "".join(f"<th>f at {float(s):.0%} [95% CI]</th>" for s in sizes)
    rows = [
        "<table class='summary'><tr><th>ranking</th><th>n held-out prompts</th>"
        "<th>MIB CPR, signed ranking (higher better) [95% CI]</th>"
        "<th>MIB CMD, absolute ranking (lower better) [95% CI]</th>"
        f"<th>mean f per decade of size (interplab)</th>{head}</tr>"
    ]
    for name, r in summary.items():
        tag = " (baseline)" if r["baseline"] else ""
        cells = "".join(
            f"<td>{r['f_at'][s][0]:.3f} {_ci(r['f_at'][s][1:])}</td>"
            if s in r["f_at"]
            else "<td></td>"
            for s in sizes
        )
        rows.append(
            f"<tr><td>{escape(name)}{tag}</td><td>{r['n_prompts']}</td>"
            f"<td>{r['mib_cpr']:.3f} {_ci(r['mib_cpr_ci'])}</td>"
            f"<td>{r['mib_cmd']:.3f} {_ci(r['mib_cmd_ci'])}</td>"
            f"<td>{r['log_area']:.3f} {_ci(r['log_area_ci'])}</td>{cells}</tr>"
        )
    return "".join(rows) + "</table>"


def _verdict(block: dict[str, Any], ablation: str) -> str:
    """Plain sentences: what the drawn circuit recovers and where f first reaches 0.8."""
    d = block["drawn"]
    curves = {c["method"]: c for c in block["curves"]}
    ranked = curves.get(d["method"])
    f = d["f"]
    if f >= 0.8:
        judgement = "it carries most of the behaviour"
    elif f >= 0.5:
        judgement = "it carries part of the behaviour, and much is missing"
    else:
        judgement = "it explains only a small part of the behaviour"
    text = (
        f"<p class='drawn'>The drawn circuit (the top {d['top']} edges of {escape(d['method'])}'s "
        f"signed ranking under {escape(ablation)} ablation, {d['n_kept']} left after pruning = "
        f"{d['fraction']:.2%} of the edges) recovers <b>f = {f:.3f}</b> {_ci(d['f_ci'])} on the "
        f"held-out prompts: {judgement}."
    )
    if ranked is not None:
        text += f" Its ranking first reaches f ≥ 0.8 at {_first_reaching(ranked)}."
    rand = next((c for c in block["curves"] if c.get("ranking") == "random"), None)
    if rand is not None:
        text += f" Random edges first reach it at {_first_reaching(rand)}."
    return text + "</p>"


def circuit_report(
    result: dict[str, Any],
    attention: dict[str, Any] | None = None,
    ablation_for_graph: str | None = None,
) -> str:
    """HTML of a circuit study (see the module docstring)."""
    abls = result["ablations"]
    graph_abl = ablation_for_graph or next(iter(abls))
    methods = result.get("methods") or [result["method"]]
    intro = (
        f"<p>Model <b>{escape(result['model'])}</b>, task <b>{escape(result['task'])}</b>: "
        f"{escape(result['task_description'])}. Edges scored on {result['n_prompts']} prompts "
        f"by <b>{escape(', '.join(methods))}</b>"
        + (
            f" (EAP-IG: {result['steps']} steps, {result['rule']} rule)"
            if result.get("steps")
            else ""
        )
        + (
            f"; every curve measured on {result['n_eval_prompts']} held-out prompts"
            if result.get("eval_held_out")
            else "; curves on the same prompts (in-sample)"
        )
        + f", over the full graph of {result['n_edges']:,} edges (embeddings, every head's q/k/v "
        "inputs and output, every MLP, logits).</p><p>Faithfulness f(C) = (m(C) − m(∅)) / "
        "(m(N) − m(∅)), m the mean logit difference, as MIB defines it: a circuit of s% keeps "
        "the first int(s·edges) edges of a ranking"
        + (
            ", minus edges that cannot carry the input to the logits (pruned)"
            if result.get("pruned")
            else ""
        )
        + "; MIB's CPR is the area under f over s (linear, 0.1% to 100%) for the signed "
        "ranking (positive = the edge supports the behaviour), CMD the area under |1 − f| for "
        "the absolute ranking. Both areas are dominated by circuits of 20–100% of the edges, "
        "so the table also gives f at 1%, 2% and 5% and the mean f per decade of size. "
        f"Intervals: 95% bootstrap over prompts. Scoring took {result.get('score_seconds', 0):.0f} s "
        f"and the curves {result.get('curve_seconds', 0):.0f} s.</p>"
    )
    intro += _verdict(abls[graph_abl], graph_abl)
    sections = []
    for abl, block in abls.items():
        curves = block["curves"]
        series = [
            (c["method"], c["sizes"], c["f"], _COLORS[i % len(_COLORS)])
            for i, c in enumerate(curves)
        ]
        bands = [(c["f_low"], c["f_high"]) for c in curves]
        log_chart = line_chart(
            series,
            bands=bands,
            title=f"f by circuit size, {abl} ablation (log axis)",
            xlabel="circuit size (share of edges, log)",
            ylabel="f",
            percent_x=True,
        )
        lin_chart = line_chart(
            series,
            bands=bands,
            title="the same, linear axis (MIB's area)",
            xlabel="circuit size (share of edges)",
            ylabel="f",
            log_x=False,
            percent_x=True,
        )
        passes = "; ".join(
            f"{escape(m)}: {b['forward_passes']} forward and {b['backward_passes']} backward "
            f"passes, {b['seconds']:.0f} s"
            for m, b in block["methods"].items()
        )
        note = (
            f"<p>m(N) = {block['m_full']:.3f} (clean), m(∅) = {block['m_empty']:.3f} (every "
            f"edge {abl}-ablated). Scoring: {passes}. Curves: {block['curve_circuits_run']} "
            f"circuits run ({block['curve_forward_passes']} forward passes).</p>"
        )
        if abl != graph_abl:
            note = _verdict(block, abl) + note
        sections.append(
            (
                f"Faithfulness under {abl} ablation",
                note
                + _summary_table(block["summary"])
                + f"<div class='charts'>{log_chart}{lin_chart}</div>",
            )
        )
    circuit = circuit_data(abls[graph_abl]["top_edges"])
    d = abls[graph_abl]["drawn"]
    sections.append(
        (
            "How to read the graph",
            f"<p>The graph below draws the circuit above ({d['n_kept']} edges, {graph_abl} "
            "ablation): nodes are labelled by site (Lℓ.Hh a head, Lℓ.MLP an MLP); edge width is "
            "|signed score|, dashed edges have a negative score (they work against the "
            "behaviour); colour is the receiving channel (q, k, v, or the input of an MLP / the "
            "logits). The slider hides weaker edges.</p>",
        )
    )
    return viewer_page(
        f"interplab circuit: {result['model']} / {result['task']}",
        intro,
        sections=sections,
        circuit=circuit,
        attention=attention,
    )
