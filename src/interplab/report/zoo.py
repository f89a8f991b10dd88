"""Report section of the ``zoo`` track: the circuit methods ranked over generated organisms.

The unit of resampling is the organism: each method's score on an organism is its ``edge_auroc``
averaged over the ablations run; only organisms on which every method has a score are used, so
every comparison is paired. Reported per method: the mean with a 95% bootstrap interval, the
rank (1 = best) with the 95% interval of its rank over bootstrap resamples of the organisms; then
the mean per program depth, width and construct (each with its n), and a plot of the ranking
against depth. Baselines are shown, labelled, and never ranked among the methods.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from typing import Any

from interplab.bench.store import ResultsStore
from interplab.eval.stats import Estimate as Interval
from interplab.eval.stats import RankInterval, bootstrap_ranks
from interplab.eval.stats import bootstrap_interval as bootstrap_mean
from interplab.report._page import baseline_methods

TRACK = "zoo"
METRIC = "edge_auroc"


@dataclass(frozen=True)
class ZooRanking:
    metric: str
    organisms: int  # with every method scored
    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    score: dict[str, Interval]
    rank: dict[str, RankInterval]
    #: {"depth"|"width"|construct name: {value: {method: Interval}}}
    by_shape: dict[str, dict[Any, dict[str, Interval]]] = field(default_factory=dict)


def ranking(
    store: ResultsStore, metric: str = METRIC, kind: str = "compiled", only: set[str] | None = None
) -> ZooRanking | None:
    """The zoo track's ranking over its organisms of ``kind`` ("compiled": generated programs;
    "siit": their SIIT-trained twins), optionally ``only`` the named ones; None without results."""
    zoo_jobs = {j.key: j for j in store.jobs() if j.track == TRACK and j.status == "done"}
    if not zoo_jobs:
        return None
    shapes = _shapes(store, zoo_jobs)
    zoo_jobs = {
        k: j
        for k, j in zoo_jobs.items()
        if shapes.get(j.organism, {}).get("kind", "compiled") == kind
        and (only is None or j.organism in only)
    }
    wanted = {(j.organism, j.method, j.ablation, j.seed) for j in zoo_jobs.values()}
    cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in store.rows():
        if (
            r["metric"] == metric
            and r["value"] is not None
            and (r["organism"], r["method"], r["ablation"], r["seed"]) in wanted
        ):
            cells[r["organism"]][r["method"]].append(r["value"])
    methods_all = sorted({m for per in cells.values() for m in per})
    complete = sorted(o for o, per in cells.items() if all(per.get(m) for m in methods_all))
    if not complete:
        return None
    per_org = {m: [sum(cells[o][m]) / len(cells[o][m]) for o in complete] for m in methods_all}
    base = sorted(baseline_methods([TRACK], methods_all))
    methods = tuple(m for m in methods_all if m not in base)
    score = {m: bootstrap_mean(per_org[m], seed=i) for i, m in enumerate(methods_all)}
    rank = bootstrap_ranks({m: per_org[m] for m in methods})
    by_shape: dict[str, dict[Any, dict[str, Interval]]] = {}
    for key in ("depth", "width"):
        groups: dict[Any, list[int]] = defaultdict(list)
        for i, o in enumerate(complete):
            if o in shapes:
                groups[shapes[o][key]].append(i)
        by_shape[key] = {
            v: {m: bootstrap_mean([per_org[m][i] for i in idx]) for m in methods_all}
            for v, idx in sorted(groups.items())
        }
    constructs: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(complete):
        for c in shapes.get(o, {}).get("constructs", ()):
            constructs[c].append(i)
    by_shape["construct"] = {
        c: {m: bootstrap_mean([per_org[m][i] for i in idx]) for m in methods_all}
        for c, idx in sorted(constructs.items())
    }
    return ZooRanking(metric, len(complete), methods, tuple(base), score, rank, by_shape)


def _shapes(store: ResultsStore, jobs: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, arts in store.artifacts("organism_shape").items():
        if key in jobs:
            out[jobs[key].organism] = arts["organism_shape"]
    return out


def section(store: ResultsStore) -> str:
    r = ranking(store)
    if r is None:
        return ""
    order = sorted(r.methods, key=lambda m: (r.rank[m].rank, m)) + list(r.baselines)
    rows = []
    for m in order:
        is_base = m in r.baselines
        rank = "baseline" if is_base else r.rank[m].fmt()
        cls = " class='baseline'" if is_base else ""
        rows.append(
            f"<tr{cls}><td class='name'>{escape(m)}</td><td>{r.score[m].fmt()}</td>"
            f"<td>{rank}</td></tr>"
        )
    parts = [
        f"<h2>Zoo: circuit methods over {r.organisms} generated organisms</h2>",
        f"<p class='muted'>{escape(r.metric)} per organism (mean over the ablations run), "
        "mean with a 95% bootstrap interval over organisms; rank 1 = best, with the 95% "
        "interval of the rank over bootstrap resamples of the organisms. Baselines are not "
        "ranked.</p>",
        "<table><tr><th class='name'>method</th><th>mean [95% CI]</th><th>rank [95% CI]</th>"
        f"</tr>{''.join(rows)}</table>",
    ]
    for metric, truth in TRUTHS.items():
        ranked = r if metric == r.metric else ranking(store, metric=metric)
        note = _baseline_note(ranked, f"compiled organisms, {truth}") if ranked else ""
        if note:
            parts.append(f"<p class='note'>{escape(note)}</p>")
    parts.append(_plot(r))
    parts.append(_twins(store))
    for key, title in (
        ("depth", "program depth"),
        ("width", "program width"),
        ("construct", "construct used"),
    ):
        groups = r.by_shape.get(key) or {}
        if not groups:
            continue
        head = "".join(f"<th>{escape(m)}</th>" for m in order)
        body = []
        for value, per in groups.items():
            n = next(iter(per.values())).n
            body.append(
                f"<tr><td class='name'>{escape(str(value))}</td><td>{n}</td>"
                + "".join(f"<td>{per[m].mean:.2f}</td>" for m in order)
                + "</tr>"
            )
        parts.append(
            f"<details><summary>mean {escape(r.metric)} by {title}</summary>"
            f"<div class='scroll'><table><tr><th class='name'>{key}</th><th>n</th>{head}"
            f"</tr>{''.join(body)}</table></div></details>"
        )
    return "".join(parts)


#: the trained kinds of organism in the zoo suite, each shown beside its compiled siblings
TRAINED_KINDS = {
    "siit": "SIIT-trained twins",
    "perturbed": "compiled weights perturbed and fine-tuned back",
}
#: what is left unscored, per trained kind (the report's wording)
_UNVERIFIED = {
    "siit": "A twin that failed its verification",
    "perturbed": "A perturbed organism that missed its held-out accuracy or whose truth was refused",
}
TRUTHS = {"edge_auroc": "per-ablation truth", "edge_auroc_designed": "designed truth"}


def _twins(store: ResultsStore) -> str:
    """Each trained kind beside its compiled siblings (the same programs), edge AUROC against
    the per-ablation and the designed truth, baselines in the same table; a note wherever a
    baseline beats every method, with the margin."""
    jobs = {j.key: j for j in store.jobs() if j.track == TRACK and j.status == "done"}
    shapes = _shapes(store, jobs)
    parts = []
    for kind, title in TRAINED_KINDS.items():
        siblings = {
            str(sh["program"])
            for sh in shapes.values()
            if sh.get("kind") == kind and sh.get("program")
        }
        if not siblings:
            continue
        cols = {}
        for metric in TRUTHS:
            cols[(kind, metric)] = ranking(store, metric=metric, kind=kind)
            cols[("compiled", metric)] = ranking(store, metric=metric, only=siblings)
        present = [r for r in cols.values() if r is not None]
        if not present:
            continue
        methods = sorted({m for r in present for m in r.methods})
        baselines = sorted({m for r in present for m in r.baselines})
        head = "".join(
            f"<th>{'trained' if k == kind else 'compiled siblings'}: {TRUTHS[m]}</th>"
            for k, m in cols
        )
        body = []
        for m in methods + baselines:
            cls = " class='baseline'" if m in baselines else ""
            cells = "".join(
                f"<td>{r.score[m].fmt()} (n={r.organisms})</td>"
                if r is not None and m in r.score
                else "<td>–</td>"
                for r in cols.values()
            )
            body.append(f"<tr{cls}><td class='name'>{escape(m)}</td>{cells}</tr>")
        notes = [
            n
            for (k, metric), r in cols.items()
            if r is not None
            for n in [
                _baseline_note(
                    r, ("trained " if k == kind else "compiled siblings, ") + TRUTHS[metric]
                )
            ]
            if n
        ]
        parts.append(
            f"<h3>{escape(title)} beside their compiled siblings</h3><p class='muted'>The same "
            "programs, trained and compiled: mean edge AUROC over organisms with a 95% bootstrap "
            "interval, against the per-ablation truth where its single-edge check in the weights "
            f"passed and against the designed truth. {_UNVERIFIED[kind]} is not scored (see "
            "`interplab zoo`).</p>"
            f"<div class='scroll'><table><tr><th class='name'>method</th>{head}</tr>"
            f"{''.join(body)}</table></div>"
            + "".join(f"<p class='note'>{escape(n)}</p>" for n in notes)
        )
    return "".join(parts)


def _baseline_note(r: ZooRanking, where: str) -> str:
    """A sentence when a baseline's mean beats every method's, with the margin; else ''."""
    if not r.methods or not r.baselines:
        return ""
    best = max(r.methods, key=lambda m: r.score[m].mean)
    top = max(r.baselines, key=lambda m: r.score[m].mean)
    margin = r.score[top].mean - r.score[best].mean
    if margin <= 0:
        return ""
    return (
        f"{where}: the baseline {top} ({r.score[top].mean:.3f}) beats every method; the best "
        f"method, {best}, scores {r.score[best].mean:.3f} (margin {margin:.3f}, n={r.organisms})."
    )


def _plot(r: ZooRanking) -> str:
    try:
        from interplab.report.plots import line_plot
    except ImportError:  # pragma: no cover
        return ""
    from interplab.errors import MissingExtraError

    out = []
    for key in ("depth", "width"):
        groups = r.by_shape.get(key) or {}
        if len(groups) < 2:
            continue
        xs = list(groups)
        series = {
            m: (xs, [groups[x][m].mean for x in xs]) for m in list(r.methods) + list(r.baselines)
        }
        try:
            out.append(
                f"<div class='card'>{line_plot(series, title=f'{r.metric} by program {key}', xlabel=key, ylabel=r.metric, ylim=(0, 1.02))}</div>"
            )
        except MissingExtraError as exc:
            return f"<p class='muted'>{escape(str(exc))}</p>"
    return f"<div class='grid'>{''.join(out)}</div>" if out else ""
