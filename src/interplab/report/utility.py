"""Utility track: the report section (per task, every arm as a bar with its 95% interval, the
budget, and the verdict of the best interpretability arm against the best baseline) and the
summary card that states each task's verdict in one line.

Reads only the stored ``utility`` artifacts (:mod:`interplab.bench.tracks.utility`) and the
store's failed utility jobs; the verdict is :func:`interplab.eval.utility.verdict` on those
intervals, with every failed seed counted against its arm (an arm whose job failed outright is
listed with its error, never left out). When interpretability loses, cannot be told apart from
a baseline, or failed, the page says so in words.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from interplab.eval.utility import ArmEstimate, verdict
from interplab.report._page import kind as _kind


def arm_kind(arm: str) -> str:
    """``interp`` / ``baseline`` / ``oracle``: the arm's kind in the method registry's ``utility``
    family (a registry method is an interpretability arm)."""
    k = _kind(arm, ["utility"])
    return "interp" if k == "method" else k


TRACK = "utility"
_E = html.escape
_COLOURS = {"interp": "#1565c0", "baseline": "#8d8d8d", "oracle": "#2e7d32"}
_CSS = """
.utility .bars text{font:12px system-ui,sans-serif}.utility .v-better{color:#1b5e20;font-weight:600}
.utility .v-worse{color:#b71c1c;font-weight:600}.utility .v-nobetter{color:#8a4b00;font-weight:600}
"""


def collect(store: Any) -> dict[str, dict[str, dict]]:
    """{task: {arm: utility artifact}} from the store's utility jobs: finished ones as stored;
    a failed one (every seed failed, or it crashed) as a stub with ``job_error`` and no estimate,
    so that the arm still shows and counts in the verdict."""
    jobs = {j.key: j for j in store.jobs() if j.track == TRACK}
    out: dict[str, dict[str, dict]] = {}
    for key, arts in store.artifacts().items():
        if key in jobs and jobs[key].status == "done" and "utility" in arts:
            a = arts["utility"]
            out.setdefault(jobs[key].organism, {})[a["arm"]] = a
    for j in jobs.values():
        if j.status == "failed" and j.method not in out.get(j.organism, {}):
            error = (j.error or "failed").strip().splitlines()
            out.setdefault(j.organism, {})[j.method] = {
                "arm": j.method,
                "kind": arm_kind(j.method),
                "metric": None,
                "estimates": {},
                "failed": [],
                "n_failed": None,
                "job_error": error[-1] if error else "failed",
            }
    return out


def _metric(arms: Mapping[str, dict]) -> str | None:
    return next((a["metric"] for a in arms.values() if a.get("metric")), None)


def failed_seeds(art: Mapping[str, Any]) -> int | None:
    """Seeds of the arm that failed on the task's metric (None: the whole job failed, count unknown)."""
    if art.get("job_error") is not None:
        return None
    est = art.get("estimates", {}).get(art.get("metric") or "")
    if est is not None:
        return int(est.get("n_failed", 0))
    return int(art.get("n_failed") or len(art.get("seeds") or ()) or 1)


def task_verdict(arms: Mapping[str, dict]) -> dict[str, Any]:
    """The verdict on one task's main metric, failed seeds counted (None when no arm has an
    estimate and none failed)."""
    metric = _metric(arms)
    ests = {
        a: ArmEstimate.from_dict(art["estimates"][metric])
        for a, art in arms.items()
        if metric and metric in art.get("estimates", {})
    }
    failed = {
        a: (n if n is not None else 1)
        for a, art in arms.items()
        if (n := failed_seeds(art)) is None or n > 0
    }
    if not ests and not failed:
        return {
            "verdict": "no results",
            "interp": None,
            "baseline": None,
            "oracle": None,
            "gap": None,
            "failed": {},
            "note": "",
        }
    v = verdict(ests, failed)
    v["estimates"] = ests
    v["job_failed"] = sorted(a for a, art in arms.items() if art.get("job_error") is not None)
    return v


def sentence(task: str, v: Mapping[str, Any]) -> str:
    """The verdict in words (plain text), with the arms that failed seeds."""
    return _verdict_words(task, v) + _failure_words(v)


def _verdict_words(task: str, v: Mapping[str, Any]) -> str:
    if v["verdict"] not in ("better", "worse", "no better"):
        return f"{task}: {v['verdict']}."
    e = v["estimates"]
    i, b = v["interp"], v["baseline"]
    gap = f"{e[i].mean:.3f} vs {e[b].mean:.3f}"
    if v["verdict"] == "better":
        return f"{task}: interpretability wins — {i} beats the best baseline {b} ({gap}; intervals do not overlap)."
    if v["verdict"] == "worse":
        return f"{task}: interpretability loses — {b} beats the best interp arm {i} ({gap})."
    if v.get("note"):
        return f"{task}: interpretability is not counted better — {i} vs {b} ({gap}); {v['note']}."
    return (
        f"{task}: interpretability is no better than the best baseline — {i} vs {b} ({gap}); "
        "the intervals overlap."
    )


def _failure_words(v: Mapping[str, Any]) -> str:
    failed = v.get("failed") or {}
    if not failed:
        return ""
    whole = set(v.get("job_failed") or ())
    return (
        " Failed seeds: "
        + ", ".join(
            f"{a} {'all (the job failed)' if a in whole else n}" for a, n in sorted(failed.items())
        )
        + "."
    )


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
            f"<text x='{x(max(e['high'], e['value'])) + 5:.1f}' y='{y + 13}'>{e['value']:.3f}</text>"
        )
    h = 16 + len(rows) * (bar_h + 6)
    axis = "".join(
        f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='4' y2='{h - 8}' stroke='#ddd'/>"
        f"<text x='{x(t):.1f}' y='{h + 4}' text-anchor='middle' fill='#777'>{t:g}</text>"
        for t in (0, 0.25, 0.5, 0.75, 1.0)
        if lo <= t <= hi
    )
    return (
        f"<svg class='bars' role='img' aria-label='{_E(metric)} per arm' width='{width}' "
        f"height='{h + 10}' viewBox='0 0 {width} {h + 10}'>{axis}{''.join(parts)}</svg>"
    )


def _fmt(e: Mapping[str, Any] | None) -> str:
    if not e:
        return "<td>–</td>"
    return (
        f"<td>{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}] "
        f"<span class='muted'>n={e['n']}×{e['n_seeds']} seeds</span></td>"
    )


def _failed_cell(art: Mapping[str, Any]) -> str:
    """Failed seeds of an arm and their errors (the whole job's error when it failed outright)."""
    if art.get("job_error") is not None:
        error = art["job_error"]
        return f"<td class='lose' title='{_E(error)}'>all (job failed: {_E(error[:120])})</td>"
    n = failed_seeds(art) or 0
    errors = art.get("failed") or []
    if not n and not errors:
        return "<td>0</td>"
    why = "; ".join(f"seed {f['seed']}: {f['error']}" for f in errors)
    return f"<td class='lose' title='{_E(why)}'>{n} — {_E(why[:160])}</td>"


def _table(arms: Mapping[str, dict]) -> str:
    metrics: list[str] = []
    for art in arms.values():
        for m in [art["metric"], *art.get("estimates", {})]:
            if m and m not in metrics:
                metrics.append(m)
    head = "".join(f"<th>{_E(m)}</th>" for m in metrics)
    body = ""
    for a in sorted(arms, key=lambda a: (("interp", "baseline", "oracle").index(arm_kind(a)), a)):
        art = arms[a]
        spent = art.get("spent") or []
        spent_s = f"{sum(spent) / len(spent):.0f}" if spent else "–"
        cls = "" if arm_kind(a) == "interp" else " class='baseline'"
        body += (
            f"<tr{cls}><td class='name'>{_E(a)}</td><td>{arm_kind(a)}</td>"
            + "".join(_fmt(art.get("estimates", {}).get(m)) for m in metrics)
            + f"<td>{spent_s}</td>{_failed_cell(art)}<td>{_E(_chosen(art))}</td></tr>"
        )
    return (
        f"<div class='scroll'><table><tr><th class='name'>arm</th><th>kind</th>{head}"
        f"<th>budget spent (mean/seed)</th><th>failed seeds</th><th>chosen by CV on the budget"
        f"</th></tr>{body}</table></div>"
    )


def _chosen(art: Mapping[str, Any]) -> str:
    """The hyperparameter each seed chose (e.g. "k = 4, 2, 4"), "–" for arms without one."""
    picks = [
        p["selection"]
        for p in (art.get("details") or {}).get("per_seed", [])
        if isinstance(p, Mapping) and p.get("selection")
    ]
    if not picks:
        return "–"
    return f"{picks[0]['param']} = " + ", ".join(
        f"{p['value']:g}" if isinstance(p["value"], float) else str(p["value"]) for p in picks
    )


def section(store: Any) -> str:
    data = collect(store)
    if not data:
        return ""
    cards = []
    for task in sorted(data):
        arms = data[task]
        any_art = next((a for a in arms.values() if a.get("metric")), next(iter(arms.values())))
        v = task_verdict(arms)
        cls = {"better": "v-better", "worse": "v-worse", "no better": "v-nobetter"}.get(
            v["verdict"], ""
        )
        b = any_art.get("budget")
        cards.append(
            f"<div class='card'><h3>{_E(task)}</h3><p>{_E(any_art.get('description', ''))}</p>"
            f"<p class='{cls}'>{_E(sentence(task, v))}</p>"
            f"{_budget(b)}{_bars(arms, any_art['metric']) if any_art.get('metric') else ''}"
            f"{_table(arms)}</div>"
        )
    return (
        f"<style>{_CSS}</style><h2 id='utility'>Downstream utility: interpretability against "
        "baselines</h2><div class='utility'><p class='muted'>Per task: every arm's mean over seeds "
        "with a Student-t 95% interval (n = examples per seed × seeds). Blue: interpretability "
        "arms; grey: non-interpretability baselines and the random control; green: the oracle "
        "(headroom, not the bar). The verdict compares the best interp arm with the best "
        "baseline by their intervals. Every arm with a hyperparameter chose it by the same "
        "protocol: cross-validation on the budget examples only. A seed that failed (raised or "
        "gave no number) is listed and counts against its arm: an interp arm with failed seeds "
        "is never called better, nor is any while a baseline has failed seeds.</p>"
        + "".join(cards)
        + "</div>"
    )


def _budget(b: Mapping[str, Any] | None) -> str:
    if not b:
        return ""
    return (
        f"<p class='muted'>Budget (the same for every arm): {_E(str(b['amount']))} "
        f"{_E(b['kind'].replace('_', ' '))}. {_E(b.get('note', ''))}</p>"
    )


def summary_card(store: Any) -> str:
    """One line per task for the report's opening summary ("" without utility results)."""
    data = collect(store)
    if not data:
        return ""
    rows = ""
    for task in sorted(data):
        v = task_verdict(data[task])
        cls = {"better": "win", "worse": "lose"}.get(v["verdict"], "tie")
        rows += (
            f"<tr><td class='name'>{_E(task)}</td><td>{_E(_metric(data[task]) or '–')}</td>"
            f"<td class='name {cls}'>{_E(sentence(task, v))}</td></tr>"
        )
    return (
        "<div class='card'><b>utility</b> · interp vs the best baseline, per task"
        "<table><tr><th class='name'>task</th><th>metric</th><th class='name'>verdict</th></tr>"
        f"{rows}</table></div>"
    )
