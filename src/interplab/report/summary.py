"""The one-screen summary that opens the report: per track, each method's headline score with a
95% interval and its rank, and the verdict against the track's random baseline.

A track's headline metric is the first of :data:`HEADLINE` it reports. A method's score is the
mean over its (organism, ablation, seed) cells, with a bootstrap interval over those cells. The
rank (1 = best) is over the track's methods only — baselines and self-checks are listed apart,
never ranked. The verdict compares each method with ``random`` on the cells both were run on:
the mean paired difference and its bootstrap interval; "beats random" only when the whole
interval is on the better side, "loses to random" when it is on the worse side, otherwise "not
distinguishable". The same verdict against the track's strongest other baseline (e.g.
``activation_norm``; self-checks excluded) says where interpretability loses to a cheap
non-interpretability control. Everything below the summary (per-organism tables, figures) is collapsible.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Iterable

from interplab.bench.store import ResultsStore
from interplab.report.stats import Interval, bootstrap_mean, bootstrap_ranks

#: headline metric per track, first match wins (any track: the first metric in this order)
HEADLINE = ("edge_auroc", "mmcs", "counterfactual_accuracy_interchange", "replacement_fidelity",
            "feature_f1", "claim_accuracy", "counterfactual_validity", "restoration_rate",
            "attribution_agreement", "lds", "detection_auroc", "worst_group_accuracy")
LOWER_IS_BETTER = frozenset({"cmd", "l0"})
RANDOM = "random"
#: tracks whose arms differ per task and that write their own summary card (report/utility.py)
OWN_SUMMARY = frozenset({"utility"})
#: baselines that check the scorer (right by construction), never the bar a method must clear
SELF_CHECKS = frozenset({"ground_truth", "ground_truth_selfcheck"})

_CSS = """
.summary td,.summary th{padding:3px 8px}.summary .win{color:#1b5e20}.summary .lose{color:#b71c1c}
.summary .tie{color:#555}details>summary{cursor:pointer;font-weight:600;margin:10px 0}
"""


def headline(metrics: Iterable[str]) -> str | None:
    present = set(metrics)
    for m in HEADLINE:
        if m in present:
            return m
    return min(present) if present else None


def track_summary(store: ResultsStore) -> dict[str, dict]:
    """{track: {"metric", "methods": {name: {"score": Interval, "rank": str|None,
    "baseline": bool, "verdict": str}}}} — the data behind :func:`section`."""
    from interplab.report.html import baseline_methods

    track_of = {(j.organism, j.method, j.ablation, j.seed): j.track
                for j in store.jobs() if j.status == "done"}
    cells: dict[str, dict[str, dict[str, dict[tuple, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))
    for r in store.rows():
        if r["value"] is None:
            continue
        unit = (r["organism"], r["method"], r["ablation"], r["seed"])
        t = track_of.get(unit)
        if t is not None:
            cells[t][r["metric"]][r["method"]][(r["organism"], r["ablation"], r["seed"])] = r["value"]
    out: dict[str, dict] = {}
    for t in sorted(cells):
        if t in OWN_SUMMARY:
            continue
        metric = headline(cells[t])
        if metric is None:
            continue
        per = cells[t][metric]
        base = baseline_methods([t])
        better = 1.0 if metric not in LOWER_IS_BETTER else -1.0
        methods = sorted(m for m in per if m not in base)
        scores = {m: bootstrap_mean(list(per[m].values()), seed=i) for i, m in enumerate(sorted(per))}
        common = set.intersection(*(set(per[m]) for m in methods)) if methods else set()
        ranks = (bootstrap_ranks({m: [per[m][u] for u in sorted(common)] for m in methods},
                                 higher_is_better=better > 0) if common else {})
        controls = [m for m in per if m in base and m != RANDOM and m not in SELF_CHECKS]
        strongest = max(controls, key=lambda m: better * scores[m].mean, default=None)
        rows = {}
        for m in sorted(per):
            rows[m] = {"score": scores[m], "baseline": m in base,
                       "rank": ranks[m].fmt() if m in ranks else None,
                       "verdict": _verdict(per, m, better) if m not in base else "baseline",
                       "vs_best_baseline": (_verdict(per, m, better, strongest)
                                            if m not in base and strongest else "")}
        out[t] = {"metric": metric, "methods": rows, "n_common": len(common),
                  "best_baseline": strongest}
    return out


def _verdict(per: dict[str, dict[tuple, float]], method: str, better: float,
             other: str = RANDOM) -> str:
    if other not in per:
        return f"no {other} baseline run"
    shared = sorted(set(per[method]) & set(per[other]))
    if not shared:
        return f"no cells shared with {other}"
    diff = bootstrap_mean([better * (per[method][u] - per[other][u]) for u in shared])
    if diff.n < 2:  # no interval across one cell: never a verdict (see the track's own rows)
        return f"{'above' if diff.mean > 0 else 'below'} {other} on one cell ({diff.mean:+.2f}); no interval"
    if diff.lo > 0:
        return f"beats {other} (+{diff.mean:.2f} [{diff.lo:.2f}, {diff.hi:.2f}], n={diff.n})"
    if diff.hi < 0:
        return f"loses to {other} ({diff.mean:.2f} [{diff.lo:.2f}, {diff.hi:.2f}], n={diff.n})"
    return f"not distinguishable from {other} ({diff.mean:+.2f} [{diff.lo:.2f}, {diff.hi:.2f}], n={diff.n})"


def section(store: ResultsStore) -> str:
    """The summary block (HTML), or "" when there are no results."""
    from interplab.report import utility

    data = track_summary(store)
    own = utility.summary_card(store)
    if not data and not own:
        return ""
    parts = [f"<style>{_CSS}</style><h2>Summary</h2><div class='grid summary'>", own]
    for t, info in data.items():
        rows = []
        order = sorted(info["methods"], key=lambda m: (info["methods"][m]["baseline"],
                                                       _rank_key(info["methods"][m]["rank"]), m))
        for m in order:
            row = info["methods"][m]
            score: Interval = row["score"]
            cls = "baseline" if row["baseline"] else ""
            v = row["verdict"]
            vcls = "win" if v.startswith("beats") else "lose" if v.startswith("loses") else "tie"
            rank = "—" if row["rank"] is None else row["rank"]
            b = row["vs_best_baseline"]
            bcls = "win" if b.startswith("beats") else "lose" if b.startswith("loses") else "tie"
            rows.append(f"<tr class='{cls}'><td class='name'>{escape(m)}</td>"
                        f"<td>{score.fmt()}</td><td>{score.n}</td><td>{rank}</td>"
                        f"<td class='name {vcls}'>{escape(v)}</td>"
                        f"<td class='name {bcls}'>{escape(b)}</td></tr>")
        parts.append(f"<div class='card'><b>{escape(t)}</b> · <code>{escape(info['metric'])}</code>"
                     "<table><tr><th class='name'>method</th><th>mean [95% CI]</th><th>n</th>"
                     "<th>rank [95% CI]</th><th class='name'>vs random</th>"
                     "<th class='name'>vs the strongest other baseline</th></tr>"
                     f"{''.join(rows)}</table></div>")
    parts.append("</div><p class='muted'>Means over (organism, ablation, seed) cells with 95% "
                 "bootstrap intervals; ranks among methods on the cells all of them ran (baselines "
                 "are not ranked); the verdict is the paired difference from random. Details "
                 "follow, collapsed.</p>")
    return "".join(parts)


def _rank_key(rank: str | None) -> int:
    if rank is None:
        return 10**6
    return int(rank.split(" ")[0])


def collapsible(title: str, html: str, open_: bool = False) -> str:
    """``html`` inside a <details> block (nothing when ``html`` is empty)."""
    if not html:
        return ""
    return (f"<details{' open' if open_ else ''}><summary>{escape(title)}</summary>{html}"
            "</details>")
