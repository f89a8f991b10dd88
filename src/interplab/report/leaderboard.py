"""The leaderboard: one table per metric over every track kept on the per-organism tables; rows
organism × ablation, columns methods, the best method per row highlighted.

Which way a metric is better, the order of the tables and which methods are baselines,
self-checks or oracles come from the registered tracks' declarations (:mod:`._page`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from interplab.report._page import baseline_methods, kind, lower_is_better, metric_rank, unranked


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def leaderboard_section(
    rows: list[dict], baselines: Iterable[str] | None = None, tracks: Iterable[str] = ()
) -> str:
    """One table per metric: rows (organism, ablation), columns methods; best per row bold.

    ``baselines`` (controls, self-checks, oracles; default: those the ``tracks`` declare among
    the rows' methods) get their own labelled columns after the methods and are never
    highlighted; where one beats every method, a note under the table says so."""
    tracks = tuple(tracks)
    baselines = frozenset(
        baseline_methods(tracks, {r["method"] for r in rows}) if baselines is None else baselines
    )
    if not rows:
        return "<h2>Leaderboard</h2><p>No results yet.</p>"
    by_metric: dict[str, dict[tuple, dict[str, float | None]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    reasons: dict[tuple, str] = {}  # (metric, row, method) -> why the value is missing
    several_seeds = len({r.get("seed") for r in rows}) > 1
    for r in rows:
        organism = f"{r['organism']} · seed {r.get('seed')}" if several_seeds else r["organism"]
        row = (organism, r["ablation"] or "–")
        by_metric[r["metric"]][row][r["method"]] = r["value"]
        if r["value"] is None:
            reasons[(r["metric"], row, r["method"])] = r.get("reason") or "no value"
    out = [
        "<h2 id='leaderboard'>Leaderboard</h2><p class='muted'>Each table is one metric; rows "
        "are organism × ablation, columns are methods; the best value per row among the methods is "
        "highlighted (higher is better except for "
        + ", ".join(sorted({r["metric"] for r in rows if lower_is_better(r["metric"])}) or ["none"])
        + "). "
        "Baselines and self-checks (grey, italic, after the methods) are never highlighted; where one "
        "beats every method, a red note under the table says so.</p>"
    ]
    for metric in sorted(by_metric, key=metric_rank):
        table = by_metric[metric]
        present_methods = {m for cells in table.values() for m in cells}
        # Methods first, then the baselines and self-checks, set apart and never "best".
        methods = sorted(present_methods - baselines) + sorted(present_methods & baselines)
        out.append(
            f"<h3>{escape(metric)}</h3><div class='scroll'><table class='leaderboard' data-metric='{escape(metric)}'>"
            "<tr><th class='name'>organism</th><th class='name'>ablation</th>"
            + "".join(_method_header(m, baselines, tracks) for m in methods)
            + "</tr>"
        )
        notes = []
        for (organism, ablation), cells in sorted(table.items()):
            verdict = _judge(metric, cells, baselines, tracks)
            tds = "".join(
                f"<td class='missing' title='{escape(reasons[(metric, (organism, ablation), m)])}'>—</td>"
                if (metric, (organism, ablation), m) in reasons
                else f"<td class='{verdict.css(m, baselines)}'>{_fmt(cells.get(m))}</td>"
                for m in methods
            )
            out.append(
                f"<tr><td class='name'>{escape(organism)}</td><td class='name'>{escape(ablation)}</td>{tds}</tr>"
            )
            notes += verdict.notes(metric, organism, ablation)
        out.append(
            "</table>" + "".join(f"<p class='baseline-note'>{n}</p>" for n in notes) + "</div>"
        )
    return "".join(out)


@dataclass(frozen=True)
class _Verdict:
    """One leaderboard row judged: the best methods, and the baselines that beat all of them."""

    best: frozenset[str]
    best_value: float | None
    above: tuple[tuple[str, float], ...]  # (baseline, value) strictly better than every method
    tracks: tuple[str, ...] = ()

    def css(self, method: str, baselines: frozenset[str]) -> str:
        if method in baselines:
            return "baseline above" if any(b == method for b, _ in self.above) else "baseline"
        return "best" if method in self.best else ""

    def notes(self, metric: str, organism: str, ablation: str) -> list[str]:
        where = escape(organism) + ("" if ablation == "–" else f" · {escape(ablation)}")
        methods = ", ".join(sorted(self.best))
        return [
            f"{where}: {_label(b, self.tracks)} <b>{escape(b)}</b> ({_fmt(v)}) scores better than every method on "
            f"{escape(metric)} (best method: {escape(methods)}, {_fmt(self.best_value)})."
            for b, v in self.above
        ]


def _judge(
    metric: str,
    cells: dict[str, float | None],
    baselines: frozenset[str],
    tracks: tuple[str, ...] = (),
) -> _Verdict:
    """Best among the methods only (a value that is None or NaN never counts); baselines that beat
    them are reported, not highlighted. Unranked metrics (chosen hyperparameters) judge nothing."""
    if unranked(metric):
        return _Verdict(frozenset(), None, (), tracks)
    scored = {m: v for m, v in cells.items() if v is not None and v == v}
    methods = {m: v for m, v in scored.items() if m not in baselines}
    # an oracle (exact values) beats every method by design: its headroom is no warning
    controls = {m: v for m, v in scored.items() if m in baselines and kind(m, tracks) != "oracle"}
    lower = lower_is_better(metric)
    better = (lambda a, b: a < b) if lower else (lambda a, b: a > b)
    if not methods:
        return _Verdict(frozenset(), None, (), tracks)
    best_value = min(methods.values()) if lower else max(methods.values())
    best = (
        frozenset(m for m, v in methods.items() if v == best_value)
        if len(scored) > 1
        else frozenset()
    )
    above = tuple(sorted((b, v) for b, v in controls.items() if better(v, best_value)))
    return _Verdict(best, best_value, above, tracks)


def _method_header(method: str, baselines: frozenset[str], tracks: tuple[str, ...]) -> str:
    if method not in baselines:
        return f"<th>{escape(method)}</th>"
    label = _label(method, tracks)
    article = "an" if label[0] in "aeiou" else "a"
    return (
        f"<th class='baseline' title='{article} {label}, not a method: never counted as best'>{escape(method)}"
        f"<br><span class='tag'>{label}</span></th>"
    )


def _label(method: str, tracks: tuple[str, ...]) -> str:
    """How a listed baseline is labelled: its declared kind (a name the tracks call a method
    but the caller listed as a baseline: "baseline")."""
    label = kind(method, tracks)
    return "baseline" if label == "method" else label
