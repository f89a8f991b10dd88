"""The one-screen summary that opens the report: per track, each method's headline score with a
95% interval and its rank, whether the best method clears random by a margin, and the verdicts.

Headline. A track's headline metric is the first of its declared headline metrics
(``Metric(..., headline=True)``, in the track's order) that the run reports (a track that
declares none: its first declared metric reported, else the first by name; a track this process
does not know: the first of :data:`FALLBACK`). Each is chosen so that random sits far from the best
possible score (rationales: ``top_k_recall``, ≈ 0.25 for random and 1.0 for exact attributions;
not ``claim_accuracy``, whose shown claims already passed a check, nor ``counterfactual_validity``,
1.0 by construction). A method's score is the mean over its own (organism, ablation, seed) cells,
with a bootstrap interval over those cells.

Separation. Each track's card opens with one line: the best method (the largest mean paired
difference from ``random`` on the cells both ran) and whether it beats random by at least
:data:`MARGIN` (0.2 in the headline's units, better side up), or, plainly, that no method does.

Ranking rule. Methods are ranked over every cell each one ran on, not only the cells all of them
share (a method that applies to fewer organisms is neither dropped nor ranked on one organism):
on each cell, a method scores the share of the *other ranked methods on that cell* that it beats
(a tie counts half; a cell with one ranked method compares nothing and is skipped); its rank
score is the mean of that share over its cells; rank 1 = the highest. The rank interval is the
95% range of ranks over bootstrap resamples of the cells. Only methods are ranked: baselines
(the method registry's kind), self-checks (a track's ``self_checks``: right by construction) and
oracles (method names starting ``oracle:``: exact values such as linear SHAP on a linear model,
the headroom above every method) are shown apart, never ranked. The verdict compares each method with
``random`` on the cells both were run on: the mean paired difference and its bootstrap interval;
"beats random" only when the whole interval is on the better side, "loses to random" when it is
on the worse side, otherwise "not distinguishable". The same verdict against the track's
strongest other baseline (e.g. ``activation_norm``; self-checks and oracles excluded) says where
interpretability loses to a cheap non-interpretability control. Everything below the summary
(per-organism tables, figures) is collapsible.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from html import escape

import numpy as np

from interplab.bench.store import ResultsStore
from interplab.eval.stats import N_BOOT, RankInterval
from interplab.eval.stats import Estimate as Interval
from interplab.eval.stats import bootstrap_interval as bootstrap_mean
from interplab.report import _page

#: a track this process does not know: the first of these it reports (else its first metric)
FALLBACK = (
    "edge_auroc",
    "mmcs",
    "counterfactual_accuracy_interchange",
    "replacement_fidelity",
    "feature_f1",
    "restoration_rate",
    "top_k_recall",
    "lds",
    "detection_auroc",
    "worst_group_accuracy",
)
RANDOM = "random"
#: how far (in the headline's units, better side up) the best method must clear random
MARGIN = 0.2

_CSS = """
.summary td,.summary th{padding:3px 8px}.summary .win{color:#1b5e20}.summary .lose{color:#b71c1c}
.summary .tie{color:#555}details>summary{cursor:pointer;font-weight:600;margin:10px 0}
.summary .oracle{color:#37474f;background:#eef3f7}.summary .sep{margin:2px 0 6px}
"""


def headline(metrics: Iterable[str], track: str | None = None) -> str | None:
    """The headline metric among ``metrics`` for ``track`` (see the module docstring)."""
    present = set(metrics)
    t = _page.track(track) if track is not None else None
    if t is not None:
        if any(m.headline for m in t.metrics):  # it declares headlines: only those count
            return t.headline(present)
        declared = [m.name for m in t.metrics if m.name in present]
        return declared[0] if declared else (min(present) if present else None)
    for m in FALLBACK:
        if m in present:
            return m
    return min(present) if present else None


def track_summary(store: ResultsStore) -> dict[str, dict]:
    """{track: {"metric", "separation": str, "separates": bool|None, "methods": {name: {"score":
    Interval, "rank": str|None, "kind": "method"|"baseline"|"oracle", "baseline": bool,
    "verdict": str, "vs_best_baseline": str}}, "n_cells", "best_baseline"}} — the data behind
    :func:`section`."""
    track_of = {
        (j.organism, j.method, j.ablation, j.seed): j.track
        for j in store.jobs()
        if j.status == "done"
    }
    cells: dict[str, dict[str, dict[str, dict[tuple, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )
    for r in store.rows():
        if r["value"] is None or r["value"] != r["value"]:  # missing or NaN: not a score
            continue
        unit = (r["organism"], r["method"], r["ablation"], r["seed"])
        t = track_of.get(unit)
        if t is not None:
            cells[t][r["metric"]][r["method"]][(r["organism"], r["ablation"], r["seed"])] = r[
                "value"
            ]
    out: dict[str, dict] = {}
    for t in sorted(cells):
        known = _page.track(t)
        if known is not None and known.summary_card is not None:
            continue
        metric = headline(cells[t], t)
        if metric is None:
            continue
        out[t] = _track(cells[t][metric], metric, t)
    return out


def _track(per: dict[str, dict[tuple, float]], metric: str, track: str) -> dict:
    better = -1.0 if _page.lower_is_better(metric) else 1.0
    kinds = {m: _page.kind(m, [track]) for m in per}
    kind = {m: "baseline" if k == "self-check" else k for m, k in kinds.items()}
    methods = sorted(m for m in per if kind[m] == "method")
    scores = {m: bootstrap_mean(list(per[m].values()), seed=i) for i, m in enumerate(sorted(per))}
    ranks = cell_ranks({m: per[m] for m in methods}, higher_is_better=better > 0)
    controls = [m for m in per if kinds[m] == "baseline" and m != RANDOM]
    strongest = max(controls, key=lambda m: better * scores[m].mean, default=None)
    rows = {}
    for m in sorted(per):
        verdict = {
            "method": lambda: _verdict(per, m, better),  # noqa: B023 (called before the loop moves on)
            "baseline": lambda: "baseline",
            "oracle": lambda: "oracle: exact values, the headroom; not ranked",
        }[kind[m]]()
        rows[m] = {
            "score": scores[m],
            "kind": kind[m],
            "baseline": kind[m] != "method",
            "rank": ranks[m].fmt() if m in ranks else None,
            "verdict": verdict,
            "vs_best_baseline": (
                _verdict(per, m, better, strongest) if kind[m] == "method" and strongest else ""
            ),
        }
    separates, line = separation(per, methods, metric, better)
    return {
        "metric": metric,
        "methods": rows,
        "best_baseline": strongest,
        "separates": separates,
        "separation": line,
        "n_cells": len({u for m in methods for u in per[m]}),
    }


def separation(
    per: dict[str, dict[tuple, float]], methods: list[str], metric: str, better: float
) -> tuple[bool | None, str]:
    """(whether the best method clears random by MARGIN, the line that says so). The best method
    is the one with the largest mean paired difference from random (better side up) on the
    cells both ran; None when there is no random run or no method shares a cell with it."""
    if RANDOM not in per:
        return (
            None,
            f"no {RANDOM} baseline run: cannot say whether any method clears it on {metric}",
        )
    diffs = {}
    for m in methods:
        shared = sorted(set(per[m]) & set(per[RANDOM]))
        if shared:
            diffs[m] = bootstrap_mean([better * (per[m][u] - per[RANDOM][u]) for u in shared])
    if not diffs:
        return None, f"no method shares a cell with {RANDOM} on {metric}"
    best = max(sorted(diffs), key=lambda m: diffs[m].mean)
    d = diffs[best]
    where = (
        "on the one cell both ran, no interval"
        if d.n < 2
        else f"[{d.lo:.2f}, {d.hi:.2f}] over {d.n} cells"
    )
    if d.mean >= MARGIN:
        return True, (f"{best} beats {RANDOM} by ≥ {MARGIN:g} on {metric}: {d.mean:+.2f} ({where})")
    return False, (
        f"no method beats {RANDOM} by ≥ {MARGIN:g} on {metric}; the best, {best}, "
        f"is {d.mean:+.2f} ({where})"
    )


def cell_ranks(
    per: dict[str, dict[tuple, float]],
    higher_is_better: bool = True,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict[str, RankInterval]:
    """Ranks of methods over every cell each ran on (the module docstring's ranking rule):
    ``per[method][cell]`` -> value. A method with no cell it shares with another gets no rank
    (a track's only method: rank 1)."""
    if len(per) == 1:
        return {m: RankInterval(1, 1, 1) for m in per if per[m]}
    sign = 1.0 if higher_is_better else -1.0
    units = sorted({u for m in per for u in per[m]}, key=repr)
    names = sorted(per)
    win = np.full((len(names), len(units)), np.nan)  # [method, cell] share of rivals beaten
    for j, u in enumerate(units):
        here = [i for i, m in enumerate(names) if u in per[names[i]]]
        if len(here) < 2:
            continue
        vals = np.array([sign * per[names[i]][u] for i in here])
        for a, i in enumerate(here):
            beaten = (vals[a] > vals).sum() + 0.5 * ((vals[a] == vals).sum() - 1)
            win[i, j] = beaten / (len(here) - 1)
    present = ~np.isnan(win)
    ranked = [i for i in range(len(names)) if present[i].any()]
    if not ranked:
        return {}
    win, present = win[ranked], present[ranked]
    filled = np.where(present, win, 0.0)

    def ranks(counts: np.ndarray) -> np.ndarray:  # counts [..., cell] -> ranks [..., method]
        n = (present[None] * counts[:, None, :]).sum(-1)
        total = (filled[None] * counts[:, None, :]).sum(-1)
        score = np.where(n > 0, total / np.maximum(n, 1), -np.inf)
        # ties share the better rank; a method with no cell in a resample ranks last in it
        return (score[..., :, None] < score[..., None, :]).sum(-1) + 1

    point = ranks(np.ones((1, len(units))))[0]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(units), size=(n_boot, len(units)))
    counts = np.zeros((n_boot, len(units)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    boot = ranks(counts)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        names[i]: RankInterval(int(point[a]), int(np.floor(lo[a])), int(np.ceil(hi[a])))
        for a, i in enumerate(ranked)
    }


def _verdict(
    per: dict[str, dict[tuple, float]], method: str, better: float, other: str = RANDOM
) -> str:
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
    data = track_summary(store)
    own = "".join(
        card(store)
        for card in dict.fromkeys(_page.resolve(t.summary_card) for t in _page.tracks_in(store))
        if card is not None
    )
    if not data and not own:
        return ""
    parts = [f"<style>{_CSS}</style><h2>Summary</h2><div class='grid summary'>", own]
    for t, info in data.items():
        rows = []
        group = {"method": 0, "oracle": 1, "baseline": 2}
        order = sorted(
            info["methods"],
            key=lambda m: (
                group[info["methods"][m]["kind"]],
                _rank_key(info["methods"][m]["rank"]),
                m,
            ),
        )
        for m in order:
            row = info["methods"][m]
            score: Interval = row["score"]
            cls = {"method": "", "oracle": "oracle", "baseline": "baseline"}[row["kind"]]
            v = row["verdict"]
            vcls = "win" if v.startswith("beats") else "lose" if v.startswith("loses") else "tie"
            rank = "—" if row["rank"] is None else row["rank"]
            b = row["vs_best_baseline"]
            bcls = "win" if b.startswith("beats") else "lose" if b.startswith("loses") else "tie"
            rows.append(
                f"<tr class='{cls}'><td class='name'>{escape(m)}</td>"
                f"<td>{score.fmt()}</td><td>{score.n}</td><td>{rank}</td>"
                f"<td class='name {vcls}'>{escape(v)}</td>"
                f"<td class='name {bcls}'>{escape(b)}</td></tr>"
            )
        sep = {True: "win", False: "lose", None: "tie"}[info["separates"]]
        parts.append(
            f"<div class='card' data-track='{escape(t, quote=True)}'><b>{escape(t)}</b> · "
            f"<code>{escape(info['metric'])}</code><p class='sep {sep}'>"
            f"{escape(info['separation'])}</p><table><tr><th class='name'>method</th>"
            "<th>mean [95% CI]</th><th>n</th>"
            "<th>rank [95% CI]</th><th class='name'>vs random</th>"
            "<th class='name'>vs the strongest other baseline</th></tr>"
            f"{''.join(rows)}</table></div>"
        )
    parts.append(
        "</div><p class='muted'>Means over each method's own (organism, ablation, seed) "
        "cells with 95% bootstrap intervals. Rank: on every cell a method ran, the share "
        "of the other methods there that it beats (ties count half), averaged over its "
        "cells — so a method is ranked on every organism it applies to; baselines and "
        "oracles (exact values: the headroom) are shown apart and never ranked. The line "
        f"under each track's name says whether the best method clears random by ≥ {MARGIN:g} "
        "on the headline (mean paired difference). The verdict is the paired difference "
        "from random. Details follow, collapsed.</p>"
    )
    return "".join(parts)


def _rank_key(rank: str | None) -> int:
    if rank is None:
        return 10**6
    return int(rank.split(" ")[0])
