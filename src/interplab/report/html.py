"""The self-contained HTML report of a bench run (works offline: inline CSS and SVG, no CDN).

Reads ``DIR/results.sqlite`` (rows and artifacts); never runs a model.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from interplab.bench.runner import DB_NAME
from interplab.bench.store import ResultsStore
from interplab.core.circuit import Circuit
from interplab.errors import InterplabError, ResultsStoreError
from interplab.models.io import atomic_write_text
from interplab.report.circuit_svg import circuit_svg
from interplab.report.plots import line_plot

#: Extra report sections: functions (store) -> HTML fragment ("" to skip). Tracks add theirs.
SECTIONS: list[Callable[[ResultsStore], str]] = []

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td.name,th.name{text-align:left}.best{font-weight:bold;background:#e8f4e8}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #eee;border-radius:6px;padding:8px}
.baseline{color:#666;font-style:italic;background:#f7f7f7}.baseline .tag{font-size:10px;font-weight:normal}
td.above{background:#fbe9e7}.baseline-note{color:#a33;font-size:12px;margin:-12px 0 14px}
.muted{color:#777;font-size:12px}.scroll{overflow-x:auto}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""

_LOWER_IS_BETTER = {
    "cmd",
    "l0",
    "dead_fraction",
    "forward_passes",
    "method_seconds",
    "deletion_auc",
    "proximity",
    "sparsity",
    "oracle_max_abs_error",
    "claims_dropped",
}
#: Headline metrics, shown first in this order; bookkeeping metrics go to the end.
_METRIC_ORDER = (
    "edge_auroc",
    "edge_auroc_mismatched",
    "cpr",
    "cmd",
    "node_auroc",
    "edge_auroc_pessimistic",
    "mmcs",
    "feature_f1",
    "variance_explained",
    "l0",
    "loss_recovered",
    "counterfactual_accuracy_interchange",
    "counterfactual_accuracy_ablation",
    "counterfactual_accuracy_new_input",
    "hypothesis_loss_recovered",
    "replacement_fidelity",
    "kl_recovered",
    "probe_selectivity",
    "probe_accuracy",
    "mmcs_written_directions",
)
_BOOKKEEPING = (
    "forward_passes",
    "method_seconds",
    "n_pairs",
    "n_interchange",
    "n_ablation",
    "n_new_input",
    "k_chosen",
    "l1_coefficient_chosen",
    "l0_coefficient_chosen",
)
#: Settings, not scores: shown, never judged.
_UNRANKED = frozenset({"k_chosen", "l1_coefficient_chosen", "l0_coefficient_chosen"})
#: Controls and self-checks of a track that does not list its own (a track module's ``BASELINES``).
#: They are shown apart, labelled, and never highlighted as best.
DEFAULT_BASELINES = frozenset(
    {
        "random",
        "weight_norm",
        "activation_norm",
        "misaligned",
        "shuffled",
        "ground_truth",
        "ground_truth_selfcheck",
    }
)
#: Of those, the ones that check the scorer (right by construction) rather than set a floor.
_SELF_CHECKS = frozenset({"ground_truth", "ground_truth_selfcheck"})


def baseline_methods(tracks_used: Iterable[str]) -> frozenset[str]:
    """The baseline, self-check and oracle method names of these tracks: each track module's
    ``BASELINES`` (or :data:`DEFAULT_BASELINES` for a track without one, or one that fails to
    import) and its methods named ``oracle:…`` (exact values: headroom, never a method)."""
    from interplab.bench import tracks
    from interplab.report.summary import is_oracle

    names: set[str] = set()
    for name in set(tracks_used):
        try:
            mod = tracks.track(name)
            listed = getattr(mod, "BASELINES", None)
            names |= {m for m in getattr(mod, "METHODS", ()) if is_oracle(m)}
        except (InterplabError, ImportError):  # a track this process does not know: fall back
            listed = None
        names |= DEFAULT_BASELINES if listed is None else set(listed)
    return frozenset(names)


def _metric_rank(metric: str) -> tuple[int, int, str]:
    if metric in _METRIC_ORDER:
        return (0, _METRIC_ORDER.index(metric), metric)
    return (2 if metric in _BOOKKEEPING else 1, 0, metric)


def render_report(out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` from the stored results; returns its path."""
    out_dir = Path(out_dir)
    db = out_dir / DB_NAME
    if not db.is_file():
        raise ResultsStoreError(
            f"no {DB_NAME} in {out_dir}; run `interplab bench --out {out_dir}` first"
        )
    with ResultsStore(db) as store:
        html = build_html(store, title=f"interplab bench — {out_dir.name}")
    path = out_dir / "report.html"
    atomic_write_text(path, html)
    return path


def build_html(store: ResultsStore, title: str) -> str:
    rows = store.rows()
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
        f"<p class='muted'>Generated {_dt.datetime.now().isoformat(timespec='seconds')} · "
        f"{len(rows)} result rows · {len(store.jobs())} jobs</p>",
    ]
    from interplab.report import summary, zoo  # issue 15: one-screen summary, zoo ranking

    parts += [summary.section(store), zoo.section(store)]
    detail = zoo.without_zoo(store)  # per-organism tables and figures: not for 200 organisms
    parts.append(
        summary.collapsible(
            "Leaderboard: every organism and ablation",
            leaderboard_section(detail.rows(), baseline_methods(j.track for j in store.jobs())),
        )
    )
    parts.append(summary.collapsible("ROC curves", roc_section(detail)))
    parts.append(summary.collapsible("Faithfulness curves", faithfulness_section(detail)))
    parts.append(summary.collapsible("Recovered circuits", circuits_section(detail)))
    from interplab.report import (
        causal,
        circuit_explorer,  # issue 16: interactive, offline viewer
        data_attribution,
        features,
        rationales,
    )

    for section in [
        features.section,
        causal.section,
        rationales.section,
        data_attribution.section,
        *SECTIONS,
    ]:
        parts.append(section(store))
    parts.append(circuit_explorer.section(detail))  # zoo circuits left out: 200 would be megabytes
    from interplab.report import failures as failures_track  # issue 12: the failures track

    parts.append(failures_track.section(store))
    from interplab.report import utility  # issue 13: interpretability against baselines

    parts.append(utility.section(store))
    parts.append(failures_section(store))
    parts.append("</body></html>")
    return "".join(parts)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def leaderboard_section(rows: list[dict], baselines: Iterable[str] = DEFAULT_BASELINES) -> str:
    """One table per metric: rows (organism, ablation), columns methods; best per row bold.

    ``baselines`` (controls, self-checks) get their own labelled columns after the methods and
    are never highlighted; where one beats every method, a note under the table says so."""
    baselines = frozenset(baselines)
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
        "highlighted (higher is better except for " + ", ".join(sorted(_LOWER_IS_BETTER)) + "). "
        "Baselines and self-checks (grey, italic, after the methods) are never highlighted; where one "
        "beats every method, a red note under the table says so.</p>"
    ]
    for metric in sorted(by_metric, key=_metric_rank):
        table = by_metric[metric]
        present_methods = {m for cells in table.values() for m in cells}
        # Methods first, then the baselines and self-checks, set apart and never "best".
        methods = sorted(present_methods - baselines) + sorted(present_methods & baselines)
        out.append(
            f"<h3>{escape(metric)}</h3><div class='scroll'><table class='leaderboard' data-metric='{escape(metric)}'>"
            "<tr><th class='name'>organism</th><th class='name'>ablation</th>"
            + "".join(_method_header(m, baselines) for m in methods)
            + "</tr>"
        )
        notes = []
        for (organism, ablation), cells in sorted(table.items()):
            verdict = _judge(metric, cells, baselines)
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

    def css(self, method: str, baselines: frozenset[str]) -> str:
        if method in baselines:
            return "baseline above" if any(b == method for b, _ in self.above) else "baseline"
        return "best" if method in self.best else ""

    def notes(self, metric: str, organism: str, ablation: str) -> list[str]:
        where = escape(organism) + ("" if ablation == "–" else f" · {escape(ablation)}")
        methods = ", ".join(sorted(self.best))
        return [
            f"{where}: {_kind(b)} <b>{escape(b)}</b> ({_fmt(v)}) scores better than every method on "
            f"{escape(metric)} (best method: {escape(methods)}, {_fmt(self.best_value)})."
            for b, v in self.above
        ]


def _judge(metric: str, cells: dict[str, float | None], baselines: frozenset[str]) -> _Verdict:
    """Best among the methods only (a value that is None or NaN never counts); baselines that beat
    them are reported, not highlighted. Unranked metrics (chosen hyperparameters) judge nothing."""
    if metric in _UNRANKED:
        return _Verdict(frozenset(), None, ())
    scored = {m: v for m, v in cells.items() if v is not None and v == v}
    methods = {m: v for m, v in scored.items() if m not in baselines}
    # an oracle (exact values) beats every method by design: its headroom is no warning
    controls = {m: v for m, v in scored.items() if m in baselines and _kind(m) != "oracle"}
    lower = metric in _LOWER_IS_BETTER
    better = (lambda a, b: a < b) if lower else (lambda a, b: a > b)
    if not methods:
        return _Verdict(frozenset(), None, ())
    best_value = min(methods.values()) if lower else max(methods.values())
    best = (
        frozenset(m for m, v in methods.items() if v == best_value)
        if len(scored) > 1
        else frozenset()
    )
    above = tuple(sorted((b, v) for b, v in controls.items() if better(v, best_value)))
    return _Verdict(best, best_value, above)


def _kind(method: str) -> str:
    from interplab.report.summary import is_oracle

    return "self-check" if method in _SELF_CHECKS else "oracle" if is_oracle(method) else "baseline"


def _method_header(method: str, baselines: frozenset[str]) -> str:
    if method not in baselines:
        return f"<th>{escape(method)}</th>"
    kind = _kind(method)
    article = "an" if kind[0] in "aeiou" else "a"
    return (
        f"<th class='baseline' title='{article} {kind}, not a method: never counted as best'>{escape(method)}"
        f"<br><span class='tag'>{kind}</span></th>"
    )


def _group_artifacts(store: ResultsStore, name: str) -> dict[tuple[str, str], dict[str, dict]]:
    """{(organism, ablation): {method: artifact}} for circuits-track artifacts called ``name``."""
    jobs = {j.key: j for j in store.jobs()}
    grouped: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for key, arts in store.artifacts(name).items():
        job = jobs.get(key)
        if job is not None:
            grouped[(job.organism, job.ablation or "–")][job.method] = arts[name]
    return grouped


def roc_section(store: ResultsStore) -> str:
    grouped = _group_artifacts(store, "roc")
    if not grouped:
        return ""
    out = [
        "<h2 id='roc'>Edge ROC curves</h2><p class='muted'>Edge scores against the ground-truth "
        "circuit that matches the ablation used (area in the legend).</p><div class='grid'>"
    ]
    for (organism, ablation), by_method in sorted(grouped.items()):
        series = {
            f"{m} ({a.get('auc', float('nan')):.2f})": (a["fpr"], a["tpr"])
            for m, a in sorted(by_method.items())
        }
        out.append(
            "<div class='card figure'>"
            + line_plot(
                series,
                title=f"{organism} · {ablation}",
                xlabel="false positive rate",
                ylabel="true positive rate",
                diagonal=True,
                ylim=(0, 1.02),
            )
            + "</div>"
        )
    out.append("</div>")
    return "".join(out)


def faithfulness_section(store: ResultsStore) -> str:
    grouped = _group_artifacts(store, "faithfulness")
    if not grouped:
        return ""
    out = [
        "<h2 id='faithfulness'>Faithfulness curves</h2><p class='muted'>f(C) = (m(C) − m(∅)) / "
        "(m(N) − m(∅)) keeping the top-scored edges; CPR is the area under f, CMD the area "
        "under |1 − f|.</p><div class='grid'>"
    ]
    for (organism, ablation), by_method in sorted(grouped.items()):
        series = {m: (a["percent"], a["f"]) for m, a in sorted(by_method.items())}
        out.append(
            "<div class='card figure'>"
            + line_plot(
                series,
                title=f"{organism} · {ablation}",
                xlabel="% of edges kept",
                ylabel="faithfulness f",
                xlog=True,
            )
            + "</div>"
        )
    out.append("</div>")
    return "".join(out)


def circuits_section(store: ResultsStore) -> str:
    truths = _group_artifacts(store, "true_circuit")
    found = _group_artifacts(store, "circuit")
    if not truths:
        return ""
    out = [
        "<h2 id='circuits'>True and recovered circuits</h2><p class='muted'>Left: the ground "
        "truth for the ablation. Then each method's top edges (as many as the truth has): "
        "red dashed = not in the truth, grey dotted = missed.</p>"
    ]
    for (organism, ablation), by_method in sorted(truths.items()):
        truth = Circuit.from_json(next(iter(by_method.values())))
        cards = [circuit_svg(truth, title="ground truth")]
        for method, body in sorted(found.get((organism, ablation), {}).items()):
            cards.append(circuit_svg(Circuit.from_json(body), title=method, highlight=truth))
        out.append(
            f"<h3>{escape(organism)} · {escape(ablation)}</h3><div class='grid'>"
            + "".join(f"<div class='card figure'>{c}</div>" for c in cards)
            + "</div>"
        )
    return "".join(out)


def failures_section(store: ResultsStore) -> str:
    failed = [j for j in store.jobs() if j.status == "failed"]
    if not failed:
        return ""
    items = "".join(
        f"<li><code>{escape(j.key)}</code>: {escape((j.error or '').strip().splitlines()[-1])}</li>"
        for j in failed
    )
    return (
        f"<h2 id='failures'>Failed jobs</h2><ul>{items}</ul><p class='muted'>Rerun the same "
        "command to retry them; finished jobs are not recomputed.</p>"
    )
