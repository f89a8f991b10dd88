"""Causal-track report fragment: per organism, hypotheses side by side with their scores.

``causal_section(rows, organism, estimates, omitted)`` returns an HTML string (a ``<section>``):

* the hypotheses that are results (a DAS alignment, a discovered circuit, and the controls:
  a random alignment and the deliberately wrong misaligned/shuffled ones), one row each, with counterfactual-prediction accuracy per pair kind (interchange = IIA,
  ablation, new input: never pooled) and hypothesis loss recovered, each as value [95%
  interval] n=…, or "n/a" with the reason where a kind does not apply; plus a bar chart of them
  (inline SVG via matplotlib's Agg backend, imported lazily);
* one line apart, "scorer self-check (not a result)": the ground-truth hypothesis, right by
  construction (its metrics carry the ``selfcheck_`` prefix), never ranked with the others;
* how the methods chose their hypotheses: DAS's site and k per variable (with its held-out IIA
  at the chosen site) and the size EAP's circuit was cut to by its own recovery rule;
* the other methods (probe, replacement, dictionary replacement) and their metrics.

Rows are the causal track's result rows; ``estimates`` / ``omitted`` / ``settings`` are its
job artifacts by method (``settings``: the ``alignment`` or ``eap_circuit`` artifact; see
:mod:`interplab.bench.tracks.causal`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

#: hypotheses shown as results, in this order (das and circuit_eap are methods; the rest controls)
ORDER = ("das", "circuit_eap", "random", "misaligned", "shuffled")
SHOWN = (
    "counterfactual_accuracy_interchange",
    "counterfactual_accuracy_ablation",
    "counterfactual_accuracy_new_input",
    "hypothesis_loss_recovered",
)
LABELS = {
    "counterfactual_accuracy_interchange": "interchange (IIA)",
    "counterfactual_accuracy_ablation": "ablation",
    "counterfactual_accuracy_new_input": "new input",
    "hypothesis_loss_recovered": "hypothesis loss recovered",
}
SELFCHECK = "selfcheck_"
_BY_KIND_N = {
    "counterfactual_accuracy_interchange": "n_interchange",
    "counterfactual_accuracy_ablation": "n_ablation",
    "counterfactual_accuracy_new_input": "n_new_input",
}

Table = dict[str, dict[str, float]]
PerMethod = Mapping[str, Mapping[str, object]]


def _table(rows: list[Mapping]) -> Table:
    """method [ablation] -> metric -> value (rows without a value are left out)."""
    out: Table = {}
    for r in rows:
        if r.get("value") is None:
            continue
        key = r["method"] + (f" [{r['ablation']}]" if r.get("ablation") else "")
        out.setdefault(key, {})[r["metric"]] = float(r["value"])
    return out


def _cell(
    metric: str,
    values: Mapping[str, float],
    est: Mapping[str, object],
    why: Mapping[str, object],
    prefix: str = "",
) -> str:
    """value [low, high] n=… (or n/a with the reason as a tooltip, or –)."""
    name = prefix + metric
    if name in why:
        return f"<td title='{html.escape(str(why[name]), quote=True)}'>n/a</td>"
    if name not in values:
        return "<td>–</td>"
    text = f"{values[name]:.3f}"
    e = est.get(name)
    if isinstance(e, Mapping) and e.get("low") is not None:
        text += f" [{float(e['low']):.2f}, {float(e['high']):.2f}]"
    n = e.get("n") if isinstance(e, Mapping) else None
    if n is None and metric in _BY_KIND_N:
        n = values.get(prefix + _BY_KIND_N[metric])
    if n is not None:
        text += f" <span class='muted'>n={int(n)}</span>"
    return f"<td>{text}</td>"


def _hypotheses_table(table: Table, estimates: PerMethod, omitted: PerMethod) -> str:
    hyps = [h for h in ORDER if h in table]
    if not hyps:
        return ""
    head = "".join(f"<th>{html.escape(LABELS[m])}</th>" for m in SHOWN)
    body = "".join(
        f"<tr><td class='name'>{html.escape(h)}</td>"
        + "".join(_cell(m, table[h], estimates.get(h, {}), omitted.get(h, {})) for m in SHOWN)
        + "</tr>"
        for h in hyps
    )
    return f"<table><tr><th class='name'>hypothesis</th>{head}</tr>{body}</table>"


def _selfcheck_line(table: Table, estimates: PerMethod, omitted: PerMethod) -> str:
    values = table.get("ground_truth", {})
    why = omitted.get("ground_truth", {})
    if not any(k.startswith(SELFCHECK) for k in values):
        return ""
    cells = "".join(
        _cell(m, values, estimates.get("ground_truth", {}), why, SELFCHECK) for m in SHOWN
    )
    head = "".join(f"<th>{html.escape(LABELS[m])}</th>" for m in SHOWN)
    return (
        "<p class='muted'>Scorer self-check (not a result): the ground-truth hypothesis is "
        "right by construction; anything below 1.0 is a scorer, compiler or training bug."
        f"</p><table class='selfcheck'><tr><th class='name'>self-check</th>{head}</tr>"
        f"<tr><td class='name'>ground_truth</td>{cells}</tr></table>"
    )


def _others_table(table: Table) -> str:
    others = sorted(h for h in table if h not in ORDER and h != "ground_truth")
    if not others:
        return ""
    metrics = sorted({m for h in others for m in table[h]})
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join(
        f"<tr><td class='name'>{html.escape(h)}</td>"
        + "".join(f"<td>{table[h][m]:.3f}</td>" if m in table[h] else "<td>–</td>" for m in metrics)
        + "</tr>"
        for h in others
    )
    return f"<table><tr><th class='name'>method</th>{head}</tr>{body}</table>"


def _settings(settings: PerMethod) -> str:
    """One line per method that chose its hypothesis: DAS's sites and k, EAP's circuit size."""
    items = []
    align = settings.get("das", {}).get("alignment")
    if isinstance(align, Mapping):
        parts = [
            f"{v} @ {c.get('site')} (k={c.get('k')}, held-out IIA there "
            f"{float(c.get('heldout_iia', {}).get(c.get('site'), float('nan'))):.2f})"
            for v, c in sorted(align.items())
            if isinstance(c, Mapping)
        ]
        items.append("das: " + "; ".join(parts))
    eap = settings.get("circuit_eap", {}).get("eap_circuit")
    if isinstance(eap, Mapping):
        recovered = float(eap.get("recovered_at_k", float("nan")))
        nodes = ", ".join(map(str, eap.get("nodes", []))) or "no component"
        items.append(
            f"circuit_eap: top {eap.get('k')} of {eap.get('n_edges')} edges "
            f"({eap.get('rule', '')}; recovered {recovered:.2f}) -> {nodes}"
        )
    if not items:
        return ""
    return (
        "<p class='muted'>How the methods chose (never from the truth):</p><ul class='muted'>"
        + "".join(f"<li>{html.escape(i)}</li>" for i in items)
        + "</ul>"
    )


def _omitted_list(omitted: PerMethod) -> str:
    items = [
        f"<li>{html.escape(method)} · {html.escape(metric)}: {html.escape(str(why))}</li>"
        for method, reasons in sorted(omitted.items())
        if method != "ground_truth"
        for metric, why in sorted(reasons.items())
    ]
    return (
        f"<p class='muted'>Not scored:</p><ul class='muted'>{''.join(items)}</ul>" if items else ""
    )


def _svg(table: Table) -> str:
    from interplab.report.plots import figure_to_svg, pyplot

    hyps = [h for h in ORDER if h in table]
    if not hyps:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    width = 0.8 / len(SHOWN)
    for j, metric in enumerate(SHOWN):
        vals = [table[h].get(metric, float("nan")) for h in hyps]
        ax.bar([i + j * width for i in range(len(hyps))], vals, width, label=LABELS[metric])
    ax.set_xticks([i + width for i in range(len(hyps))], hyps)
    finite = [v for h in hyps for m in SHOWN if (v := table[h].get(m)) is not None and v == v]
    ax.set_ylim(min(0.0, *finite), 1.05)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return figure_to_svg(fig)


def causal_section(
    rows: Iterable[Mapping],
    organism: str,
    estimates: PerMethod | None = None,
    omitted: PerMethod | None = None,
    settings: PerMethod | None = None,
) -> str:
    """HTML fragment for one organism (empty string if it has no causal rows).
    ``estimates``/``omitted``: method -> the job's ``estimates``/``omitted`` artifact;
    ``settings``: method -> {artifact name: artifact} for ``alignment`` / ``eap_circuit``."""
    rows = [r for r in rows if r.get("organism") == organism]
    if not rows:
        return ""
    table = _table(rows)
    estimates, omitted = estimates or {}, omitted or {}
    return (
        f'<section class="causal"><h3>Explanations that predict: {html.escape(organism)}</h3>'
        + _hypotheses_table(table, estimates, omitted)
        + _svg(table)
        + _settings(settings or {})
        + _selfcheck_line(table, estimates, omitted)
        + _others_table(table)
        + _omitted_list(omitted)
        + "</section>"
    )


def _artifacts_by_organism(store, name: str) -> dict[str, dict[str, Mapping]]:
    """organism -> method -> the causal jobs' artifact ``name``."""
    jobs = {j.key: j for j in store.jobs() if j.track == "causal"}
    out: dict[str, dict[str, Mapping]] = {}
    for key, arts in store.artifacts(name).items():
        if key in jobs and name in arts:
            out.setdefault(jobs[key].organism, {})[jobs[key].method] = arts[name]
    return out


def section(store) -> str:
    """The report's causal section: every organism that has causal-track jobs."""
    organisms = sorted(
        {j.organism for j in store.jobs() if j.track == "causal" and j.status == "done"}
    )
    if not organisms:
        return ""
    rows = store.rows()
    estimates = _artifacts_by_organism(store, "estimates")
    omitted = _artifacts_by_organism(store, "omitted")
    settings: dict[str, dict[str, dict]] = {}
    for name in ("alignment", "eap_circuit"):
        for org, by_method in _artifacts_by_organism(store, name).items():
            for method, art in by_method.items():
                settings.setdefault(org, {}).setdefault(method, {})[name] = art
    parts = [
        causal_section(rows, o, estimates.get(o), omitted.get(o), settings.get(o))
        for o in organisms
    ]
    return (
        "<h2 id='causal'>Explanations that predict</h2><p class='muted'>Per organism, a "
        "DAS alignment, a discovered circuit, a random alignment and deliberately wrong "
        "controls: counterfactual-prediction "
        "accuracy per kind of pair (interchange = IIA, ablation, new input; every hypothesis "
        "on the same pairs, 95% Wilson intervals; new inputs are passed by any hypothesis "
        "with the right program) and hypothesis loss recovered. The ground-truth hypothesis "
        "is shown apart, as a scorer self-check, not a result. Replacement fidelity compares "
        "a component rebuilt from its explanation with mean ablation; probe selectivity is "
        "against a (token, position) control task.</p><div class='figure-wrap'>"
        + "".join(parts)
        + "</div>"
    )
