"""Utility track: the report section (per task, every arm as a bar with its 95% interval, the
budget, and the verdict of the best interpretability arm against the best baseline) and the
summary card that states each task's verdict in one line.

Reads only the stored ``utility`` artifacts (:mod:`interplab.bench.tracks.utility`); the
verdict is :func:`interplab.eval.utility.verdict` on those intervals. When interpretability
loses or cannot be told apart from a baseline, the page says so in words.
"""

from __future__ import annotations

import html
from typing import Any, Mapping

from interplab.eval.utility import ArmEstimate, arm_kind, verdict

TRACK = "utility"
_E = html.escape
_COLOURS = {"interp": "#1565c0", "baseline": "#8d8d8d", "oracle": "#2e7d32"}
_CSS = """
.utility .bars text{font:12px system-ui,sans-serif}.utility .v-better{color:#1b5e20;font-weight:600}
.utility .v-worse{color:#b71c1c;font-weight:600}.utility .v-nobetter{color:#8a4b00;font-weight:600}
"""


def collect(store: Any) -> dict[str, dict[str, dict]]:
    """{task: {arm: utility artifact}} from the store's finished utility jobs."""
    jobs = {j.key: j for j in store.jobs() if j.track == TRACK and j.status == "done"}
    out: dict[str, dict[str, dict]] = {}
    for key, arts in store.artifacts().items():
        if key in jobs and "utility" in arts:
            a = arts["utility"]
            out.setdefault(jobs[key].organism, {})[a["arm"]] = a
    return out


def task_verdict(arms: Mapping[str, dict]) -> dict[str, Any]:
    """The verdict on one task's main metric (None when no arm has an estimate)."""
    ests = {a: ArmEstimate.from_dict(art["estimates"][art["metric"]])
            for a, art in arms.items() if art["metric"] in art.get("estimates", {})}
    if not ests:
        return {"verdict": "no results", "interp": None, "baseline": None, "oracle": None, "gap": None}
    v = verdict(ests)
    v["estimates"] = ests
    return v


def sentence(task: str, v: Mapping[str, Any]) -> str:
    """The verdict in words (plain text)."""
    if v["verdict"] not in ("better", "worse", "no better"):
        return f"{task}: {v['verdict']}."
    e = v["estimates"]
    i, b = v["interp"], v["baseline"]
    gap = f"{e[i].mean:.3f} vs {e[b].mean:.3f}"
    if v["verdict"] == "better":
        return f"{task}: interpretability wins — {i} beats the best baseline {b} ({gap}; intervals do not overlap)."
    if v["verdict"] == "worse":
        return f"{task}: interpretability loses — {b} beats the best interp arm {i} ({gap})."
    return (f"{task}: interpretability is no better than the best baseline — {i} vs {b} ({gap}); "
            "the intervals overlap.")


def _bars(arms: Mapping[str, dict], metric: str) -> str:
    rows = []
    for a in sorted(arms, key=lambda a: (("interp", "baseline", "oracle").index(arm_kind(a)), a)):
        est = arms[a].get("estimates", {}).get(metric)
        if est is not None:
            rows.append((a, est))
    if not rows:
        return ""
    lo = min(0.0, min(e["low"] for _, e in rows))
    hi = max(1.0, max(e["high"] for _, e in rows))
    width, label_w, bar_h = 560, 230, 18
    scale = (width - label_w - 70) / (hi - lo)
    x = lambda v: label_w + (v - lo) * scale  # noqa: E731
    parts = []
    for k, (a, e) in enumerate(rows):
        y = 8 + k * (bar_h + 6)
        colour = _COLOURS[arm_kind(a)]
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{_E(a)}</text>"
            f"<rect x='{x(0):.1f}' y='{y}' width='{max(0.5, x(e['value']) - x(0)):.1f}' height='{bar_h}' "
            f"fill='{colour}' opacity='0.75'><title>{_E(a)}: {e['value']:.3f} [{e['low']:.3f}, "
            f"{e['high']:.3f}]</title></rect>"
            f"<line x1='{x(e['low']):.1f}' x2='{x(e['high']):.1f}' y1='{y + bar_h / 2}' y2='{y + bar_h / 2}' "
            "stroke='#111' stroke-width='1.5'/>"
            f"<text x='{x(max(e['high'], e['value'])) + 5:.1f}' y='{y + 13}'>{e['value']:.3f}</text>")
    h = 16 + len(rows) * (bar_h + 6)
    axis = "".join(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='4' y2='{h - 8}' stroke='#ddd'/>"
                   f"<text x='{x(t):.1f}' y='{h + 4}' text-anchor='middle' fill='#777'>{t:g}</text>"
                   for t in (0, 0.25, 0.5, 0.75, 1.0) if lo <= t <= hi)
    return (f"<svg class='bars' role='img' aria-label='{_E(metric)} per arm' width='{width}' "
            f"height='{h + 10}' viewBox='0 0 {width} {h + 10}'>{axis}{''.join(parts)}</svg>")


def _fmt(e: Mapping[str, Any] | None) -> str:
    if not e:
        return "<td>–</td>"
    return (f"<td>{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}] "
            f"<span class='muted'>n={e['n']}×{e['n_seeds']} seeds</span></td>")


def _table(arms: Mapping[str, dict]) -> str:
    metrics: list[str] = []
    for art in arms.values():
        for m in [art["metric"], *art.get("estimates", {})]:
            if m not in metrics:
                metrics.append(m)
    head = "".join(f"<th>{_E(m)}</th>" for m in metrics)
    body = ""
    for a in sorted(arms, key=lambda a: (("interp", "baseline", "oracle").index(arm_kind(a)), a)):
        art = arms[a]
        spent = art.get("spent") or []
        spent_s = f"{sum(spent) / len(spent):.0f}" if spent else "–"
        cls = "" if arm_kind(a) == "interp" else " class='baseline'"
        body += (f"<tr{cls}><td class='name'>{_E(a)}</td><td>{arm_kind(a)}</td>"
                 + "".join(_fmt(art.get("estimates", {}).get(m)) for m in metrics)
                 + f"<td>{spent_s}</td></tr>")
    return (f"<div class='scroll'><table><tr><th class='name'>arm</th><th>kind</th>{head}"
            f"<th>budget spent (mean/seed)</th></tr>{body}</table></div>")


def section(store: Any) -> str:
    data = collect(store)
    if not data:
        return ""
    cards = []
    for task in sorted(data):
        arms = data[task]
        any_art = next(iter(arms.values()))
        v = task_verdict(arms)
        cls = {"better": "v-better", "worse": "v-worse", "no better": "v-nobetter"}.get(v["verdict"], "")
        b = any_art["budget"]
        cards.append(
            f"<div class='card'><h3>{_E(task)}</h3><p>{_E(any_art.get('description', ''))}</p>"
            f"<p class='{cls}'>{_E(sentence(task, v))}</p>"
            f"<p class='muted'>Budget (the same for every arm): {_E(str(b['amount']))} "
            f"{_E(b['kind'].replace('_', ' '))}. {_E(b.get('note', ''))}</p>"
            f"{_bars(arms, any_art['metric'])}{_table(arms)}</div>")
    return (f"<style>{_CSS}</style><h2 id='utility'>Downstream utility: interpretability against "
            "baselines</h2><div class='utility'><p class='muted'>Per task: every arm's mean over seeds "
            "with a Student-t 95% interval (n = examples per seed × seeds). Blue: interpretability "
            "arms; grey: non-interpretability baselines and the random control; green: the oracle "
            "(headroom, not the bar). The verdict compares the best interp arm with the best "
            "baseline by their intervals.</p>" + "".join(cards) + "</div>")


def summary_card(store: Any) -> str:
    """One line per task for the report's opening summary ("" without utility results)."""
    data = collect(store)
    if not data:
        return ""
    rows = ""
    for task in sorted(data):
        v = task_verdict(data[task])
        cls = {"better": "win", "worse": "lose"}.get(v["verdict"], "tie")
        rows += (f"<tr><td class='name'>{_E(task)}</td><td>{_E(next(iter(data[task].values()))['metric'])}</td>"
                 f"<td class='name {cls}'>{_E(sentence(task, v))}</td></tr>")
    return ("<div class='card'><b>utility</b> · interp vs the best baseline, per task"
            "<table><tr><th class='name'>task</th><th>metric</th><th class='name'>verdict</th></tr>"
            f"{rows}</table></div>")
