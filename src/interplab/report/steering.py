"""The steering check's numbers and its self-contained HTML page (no scripts, no external URLs).

:func:`summarise` turns the per-prompt log-odds that ``interplab steer`` stores into rates with
intervals; :func:`steering_report` draws the page. Neither runs a model.

Per condition (each row of the table):
    positive rate   share of eval prompts whose sentiment log-odds is > 0 (Wilson 95% interval)
    mean log-odds   with a normal 95% interval (mean +- 1.96 s / sqrt(n))
    moved share     share of prompts whose log-odds moved the way the step points, against the
                    unsteered run of the same prompt (up for +alpha and for ablation, down for
                    -alpha; Wilson interval): a paired measure with no ceiling
For random directions the table gives the mean over directions and the range (min..max).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from statistics import fmean, stdev
from typing import Any


def _wilson(k: int, n: int) -> dict[str, float]:
    from interplab.eval.stats import wilson

    return wilson(k, n).as_dict()


def _mean_ci(xs: Sequence[float]) -> dict[str, float]:
    m = fmean(xs)
    half = 1.96 * stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return {"value": m, "low": m - half, "high": m + half, "n": len(xs)}


def _stats(
    scores: Sequence[float], base: Sequence[float], kind: str, alpha: float
) -> dict[str, Any]:
    n = len(scores)
    down = kind == "add" and alpha < 0
    moved = sum((s < b) if down else (s > b) for s, b in zip(scores, base))
    return {
        "positive_rate": _wilson(sum(s > 0 for s in scores), n),
        "mean_log_odds": _mean_ci(scores),
        "moved_share": _wilson(moved, n) if kind != "none" else None,
        "moved": "down" if down else "up",
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Rows for the learned direction (and no change) and the random-direction control, plus
    one verdict per signed step: ``beyond_random`` when the learned direction's mean log-odds
    interval lies past every random direction's mean log-odds (above for +alpha, below for
    -alpha); ``rate_beyond_random`` likewise for the positive rate (for +alpha its point value
    above every random direction's, for -alpha its Wilson upper bound below every one)."""
    conds = result["conditions"]
    base = next(c for c in conds if c["kind"] == "none")["scores"]
    rows = []
    for c in conds:
        if c["direction"] in ("-", "learned"):
            rows.append(
                {
                    "label": c["label"],
                    "kind": c["kind"],
                    "alpha": c["alpha"],
                    **_stats(c["scores"], base, c["kind"], c["alpha"]),
                }
            )
    control = []
    steps = [(c["kind"], c["alpha"]) for c in conds if c["direction"] == "learned"]
    for kind, alpha in steps:
        runs = [
            c
            for c in conds
            if c["direction"] == "random" and c["kind"] == kind and c["alpha"] == alpha
        ]
        if not runs:
            continue
        each = [_stats(c["scores"], base, kind, alpha) for c in runs]
        agg = {}
        for key in ("positive_rate", "mean_log_odds", "moved_share"):
            vals = [e[key]["value"] for e in each]
            agg[key] = {"mean": fmean(vals), "min": min(vals), "max": max(vals)}
        control.append(
            {
                "kind": kind,
                "alpha": alpha,
                "n_directions": len(runs),
                **agg,
                "per_direction": [{"seed": c["seed"], **e} for c, e in zip(runs, each)],
            }
        )
    verdicts = []
    by_step = {(r["kind"], r["alpha"]): r for r in rows}
    ctrl = {(c["kind"], c["alpha"]): c for c in control}
    for alpha in result["alphas"]:
        for a in (alpha, -alpha):
            if ("add", a) not in by_step or ("add", a) not in ctrl:
                continue
            learned, rand = by_step[("add", a)], ctrl[("add", a)]
            lo, rate = learned["mean_log_odds"], learned["positive_rate"]
            up = a > 0
            verdicts.append(
                {
                    "alpha": a,
                    "learned_mean_log_odds": lo,
                    "random_mean_log_odds": rand["mean_log_odds"],
                    "learned_positive_rate": rate,
                    "random_positive_rate": rand["positive_rate"],
                    "beyond_random": (lo["low"] > rand["mean_log_odds"]["max"])
                    if up
                    else (lo["high"] < rand["mean_log_odds"]["min"]),
                    "rate_beyond_random": (rate["value"] > rand["positive_rate"]["max"])
                    if up
                    else (rate["high"] < rand["positive_rate"]["min"]),
                }
            )
    return {"rows": rows, "control": control, "verdicts": verdicts, "n": len(base)}


def _pct(e: dict[str, float]) -> str:
    return f"{e['value']:.0%} [{e['low']:.0%}, {e['high']:.0%}]"


def _bars(rows: list[dict[str, Any]], control: list[dict[str, Any]]) -> str:
    """An inline SVG: per condition, the learned direction's positive rate (with its Wilson
    interval) and, beside it, the random directions' mean rate (whisker: min..max)."""
    ctrl = {(c["kind"], c["alpha"]): c for c in control}
    w, row_h, left = 640, 30, 130
    scale = (w - left - 20) / 1.0
    parts = []
    for i, r in enumerate(rows):
        y = 10 + i * row_h
        e = r["positive_rate"]
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(r["label"])}</text>'
            f'<rect x="{left}" y="{y}" width="{e["value"] * scale:.1f}" height="11" fill="#3b6fb6"/>'
            f'<line x1="{left + e["low"] * scale:.1f}" x2="{left + e["high"] * scale:.1f}" '
            f'y1="{y + 5.5}" y2="{y + 5.5}" stroke="#000"/>'
        )
        c = ctrl.get((r["kind"], r["alpha"]))
        if c is not None:
            p = c["positive_rate"]
            parts.append(
                f'<rect x="{left}" y="{y + 13}" width="{p["mean"] * scale:.1f}" height="9" fill="#bbb"/>'
                f'<line x1="{left + p["min"] * scale:.1f}" x2="{left + p["max"] * scale:.1f}" '
                f'y1="{y + 17.5}" y2="{y + 17.5}" stroke="#555"/>'
            )
    h = 10 + len(rows) * row_h + 20
    ticks = "".join(
        f'<line x1="{left + t * scale:.1f}" x2="{left + t * scale:.1f}" y1="5" y2="{h - 18}" '
        f'stroke="#eee"/><text x="{left + t * scale:.1f}" y="{h - 4}" text-anchor="middle">'
        f"{t:.0%}</text>"
        for t in (0, 0.25, 0.5, 0.75, 1.0)
    )
    return (
        f'<svg width="{w}" height="{h}" font-size="11" '
        f'role="img" aria-label="positive rate per intervention">{ticks}{"".join(parts)}</svg>'
        '<p class="legend"><span style="color:#3b6fb6">&#9632;</span> learned direction (line: Wilson 95%) '
        '&nbsp; <span style="color:#999">&#9632;</span> random directions, same step size '
        "(mean; line: min..max)</p>"
    )


def fluency_section(f: dict[str, Any]) -> str:
    """The fluency check's table (KL to the unsteered next-token distribution, held-out
    perplexity) and the greedy continuations side by side; '' without one."""
    if not f:
        return ""
    rows = []
    for r in f["rows"]:
        k, kr = r["kl"], r["kl_random"]
        rand = "" if kr is None else f"{kr['value']:.3f}"
        rows.append(
            f"<tr class='fluency-row'><td>{escape(r['label'])}</td>"
            f"<td class='kl'>{k['value']:.3f} [{k['low']:.3f}, {k['high']:.3f}]</td>"
            f"<td>{rand}</td>"
            f"<td class='ppl'>{r['perplexity']:.2f}</td><td>&times;{r['perplexity_ratio']:.2f}</td>"
            "</tr>"
        )
    table = (
        "<table id='fluency'><tr><th>intervention</th><th>KL(steered &#8214; unsteered), nats "
        "(95% CI over prompts)</th><th>KL, random direction of the same step</th>"
        "<th>held-out perplexity</th><th>vs unsteered</th></tr>" + "".join(rows) + "</table>"
    )
    samples = []
    for i, prompt in enumerate(f["sample_prompts"]):
        cells = "".join(
            f"<tr><td>{escape(r['label'])}</td><td><pre class='sample'>{escape(prompt)}"
            f"<b>{escape(r['samples'][i])}</b></pre></td></tr>"
            for r in f["rows"]
            if i < len(r["samples"])
        )
        samples.append(f"<h3>Prompt {i + 1}</h3><table class='samples'>{cells}</table>")
    intro = (
        f"<p>Does the steered model still write sensible text? KL: the next-token distribution "
        f"at every position of the {f['n_kl_prompts']} eval prompts, steered against unsteered "
        f"(0 = unchanged; the random column steers as far along one seeded random direction). "
        f"Perplexity: {f['n_held_out']} held-out neutral sentences ({escape(f['held_out_text'])}"
        f"; e.g. &ldquo;{escape(f['held_out_examples'][0]) if f['held_out_examples'] else ''}"
        f"&rdquo;) under each intervention. Continuations: {f['n_new_tokens']} greedy tokens "
        "(bold) with the intervention at every position.</p>"
    )
    return intro + table + "<h3>Greedy continuations</h3>" + "".join(samples)


def steering_report(result: dict[str, Any], summary: dict[str, Any] | None = None) -> str:
    """The HTML page for one ``interplab steer`` result (its JSON dict)."""
    from interplab.report.real_models import page

    s = summary or summarise(result)
    ctrl = {(c["kind"], c["alpha"]): c for c in s["control"]}
    head = (
        "<tr><th>intervention</th><th>positive rate</th><th>mean log-odds</th><th>moved share</th>"
        "<th>random: positive rate mean (min..max)</th><th>random: mean log-odds</th>"
        "<th>random: moved share mean (max)</th></tr>"
    )
    body = []
    for r in s["rows"]:
        m = r["mean_log_odds"]
        moved = "" if r["moved_share"] is None else f"{_pct(r['moved_share'])} {r['moved']}"
        c = ctrl.get((r["kind"], r["alpha"]))
        rand = (
            ["", "", ""]
            if c is None
            else [
                f"{c['positive_rate']['mean']:.0%} ({c['positive_rate']['min']:.0%}..{c['positive_rate']['max']:.0%})",
                f"{c['mean_log_odds']['mean']:+.2f}",
                f"{c['moved_share']['mean']:.0%} ({c['moved_share']['max']:.0%})",
            ]
        )
        cells = [
            escape(r["label"]),
            _pct(r["positive_rate"]),
            f"{m['value']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}]",
            moved,
            *rand,
        ]
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    verdicts = "".join(
        f"<li>add {v['alpha']:+g} &times; gap: mean log-odds "
        f"{v['learned_mean_log_odds']['value']:+.2f} [{v['learned_mean_log_odds']['low']:+.2f}, "
        f"{v['learned_mean_log_odds']['high']:+.2f}] vs random {v['random_mean_log_odds']['min']:+.2f}.."
        f"{v['random_mean_log_odds']['max']:+.2f}: <b>{'beyond' if v['beyond_random'] else 'NOT beyond'} "
        f"the random control</b>; positive rate {_pct(v['learned_positive_rate'])} vs random "
        f"{v['random_positive_rate']['min']:.0%}..{v['random_positive_rate']['max']:.0%} "
        f"({'beyond' if v['rate_beyond_random'] else 'not beyond'})</li>"
        for v in s["verdicts"]
    )
    task = result.get("task", {})
    intro = (
        f"<p><b>Model: {escape(str(result.get('model', '?')))}</b>. {escape(result.get('model_note', ''))}</p>"
        f"<p>Direction: difference in means of <b>{escape(result['site'])}</b> at the last token of "
        f"{task.get('n_fit', ['?'])[0]} positive and {task.get('n_fit', ['?', '?'])[1]} negative fit "
        f"sentences (words from the VADER lexicon); gap along it {result['gap']:.3g}, in-sample "
        f"AUC of the projection {result.get('fit_projection_auc', float('nan')):.3f}. Interventions act "
        f"at every position; +&alpha; adds &alpha; &times; gap along the unit direction. Behaviour "
        f"measured on n = {s['n']} held-out prompts, with held-out sentiment words "
        f"({len(task.get('eval_words', {}).get('positive', []))} positive, "
        f"{len(task.get('eval_words', {}).get('negative', []))} negative single tokens). Random control: "
        f"{s['control'][0]['n_directions'] if s['control'] else 0} seeded random unit directions "
        f"with the same gap.</p>"
    )
    notes = "".join(
        ("<li class='nonmonotonic note'>" if n.startswith("Not monotonic") else "<li>")
        + f"{escape(n)}</li>"
        for n in result.get("notes", [])
    )
    fluency = fluency_section(result.get("fluency") or {})
    sections = [
        ("Summary", intro + f"<ul>{verdicts}</ul>" + (f"<ul>{notes}</ul>" if notes else "")),
        ("Positive rate per intervention", _bars(s["rows"], s["control"])),
        ("Table", f"<table>{head}{''.join(body)}</table>"),
        *([("Fluency: is the text still sensible?", fluency)] if fluency else []),
        ("Eval prompts", "<p>" + escape(" | ".join(task.get("eval_prompts", []))) + "</p>"),
    ]
    return page(
        f"interplab steer: {result.get('concept', 'sentiment')} on {result.get('model', '?')}",
        sections,
    )


__all__ = ["steering_report", "summarise"]
