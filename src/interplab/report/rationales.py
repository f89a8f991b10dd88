"""Rationales: the bench report's section and the one-page explanation of a single decision.

``section(store)``: per organism, tables of methods × metrics (attributions and claims;
recourse and the surrogate) (value [95 % interval] n=…): methods first, then oracles (``oracle:…``,
exact values: the headroom), then baselines (``random``, ``nearest_neighbour``, ``permutation``),
each labelled and never highlighted. Claim accuracy is shown beside its unchecked share.

``decision_page(data)``: a self-contained HTML page (no scripts, no external files) a
non-specialist can read, from :meth:`interplab.methods.rationales.Rationale.to_dict`: the
outcome, the factors as bars (each labelled checked, failed or unchecked by the claim about
it), the recourse options, each claim with the check behind it, and
how many candidate claims failed their check and are therefore not shown as facts. A decision
among several classes (``classes`` with more than two names) also shows the explained contrast
("'c' rather than 'r'"), every class's probability, and the class the recourse options lead to.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

TRACK = "rationales"
ATTRIBUTION_METRICS = (
    "top_k_recall",
    "attribution_rank_corr",
    "claim_accuracy_unchecked",
    "claim_accuracy",
    "deletion_auc",
    "insertion_auc",
    "stability",
    "oracle_max_abs_error",
    "error_coverage",
)
RECOURSE_METRICS = (
    "counterfactual_validity",
    "actionability",
    "proximity",
    "sparsity",
    "surrogate_fidelity",
    "majority_fidelity",
)
_E = html.escape


def _cell(est: Mapping[str, Any] | None, reason: str | None) -> str:
    if reason:
        return f"<td title='{_E(reason, quote=True)}'>n/a</td>"
    if not est or est.get("value") is None:
        return "<td>–</td>"
    text = f"{float(est['value']):.3f}"
    if est.get("low") is not None and est.get("high") is not None and est["low"] == est["low"]:
        text += f" [{float(est['low']):.2f}, {float(est['high']):.2f}]"
    if est.get("n") is not None:
        text += f" <span class='muted'>n={int(est['n'])}</span>"
    return f"<td>{text}</td>"


def _group(method: str) -> int:
    """0 a method, 1 an oracle (exact values), 2 a baseline: the order of a table's rows."""
    from interplab.report._page import kind

    return {"method": 0, "oracle": 1}.get(kind(method, [TRACK]), 2)


def _table(
    metrics: tuple[str, ...], estimates: Mapping[str, Mapping], omitted: Mapping[str, Mapping]
) -> str:
    methods = sorted(
        (
            m
            for m in estimates
            if any(k in estimates[m] or k in omitted.get(m, {}) for k in metrics)
        ),
        key=lambda m: (_group(m), m),
    )
    metrics = tuple(
        k for k in metrics if any(k in estimates[m] or k in omitted.get(m, {}) for m in methods)
    )
    if not methods:
        return ""
    head = "".join(f"<th>{_E(m)}</th>" for m in metrics)
    body = ""
    for m in methods:
        label = {0: "", 1: "oracle: exact values, not ranked", 2: "baseline"}[_group(m)]
        cls = " class='baseline'" if label else ""
        tag = f" <span class='tag'>({label})</span>" if label else ""
        body += (
            f"<tr{cls}><td class='name'>{_E(m)}{tag}</td>"
            + "".join(_cell(estimates[m].get(k), omitted.get(m, {}).get(k)) for k in metrics)
            + "</tr>"
        )
    return (
        f"<div class='scroll'><table class='rationales'>"
        f"<tr><th class='name'>method</th>{head}</tr>{body}</table></div>"
    )


def organism_table(
    organism: str, estimates: Mapping[str, Mapping], omitted: Mapping[str, Mapping]
) -> str:
    """Two tables for one organism: attributions and claims; recourse and the surrogate."""
    return (
        f"<h3>{_E(organism)}</h3>"
        + _table(ATTRIBUTION_METRICS, estimates, omitted)
        + _table(RECOURSE_METRICS, estimates, omitted)
    )


def section(store: Any) -> str:
    jobs = {j.key: j for j in store.jobs() if j.track == TRACK and j.status == "done"}
    if not jobs:
        return ""
    est: dict[str, dict[str, Mapping]] = {}
    omit: dict[str, dict[str, Mapping]] = {}
    for key, arts in store.artifacts().items():
        if key in jobs:
            j = jobs[key]
            est.setdefault(j.organism, {})[j.method] = arts.get("estimates", {})
            omit.setdefault(j.organism, {})[j.method] = arts.get("omitted", {})
    tables = "".join(organism_table(o, est[o], omit.get(o, {})) for o in sorted(est))
    return (
        "<h2 id='rationales'>Decision rationales</h2><p class='muted'>Top-k recall (the "
        "headline): share of the true deciding features (credit-rule: the scorecard; "
        "digits-rule: the planted pixels; credit-linear: each row's 4 largest exact Shapley "
        "values; credit-tiers, three classes: the scorecard, for each row's predicted class "
        "rather than its runner-up) among the k largest attributions, k = ⌈d/4⌉ of the d features (5 of German "
        "credit's 20, 16 of the 64 digit pixels), never the truth's size: random scores about "
        "0.25. Claim accuracy: share of the "
        "shown claims that hold when re-tested on fresh interventions — high by construction, "
        "since shown claims already passed a check; beside it, unchecked: every candidate "
        "claim before that check, as a tool without checks would state them. Deletion AUC: "
        "lower is more faithful. Counterfactual validity: share of recourse options that "
        "really flip the decision (1.0 by construction for recourse, which keeps only options "
        "it verified; with three classes: that make the model predict the runner-up class, "
        "re-checked on the three-class model). 95% intervals (Wilson for shares), n = rows, claims or options. "
        "Oracles (exact values: the headroom) and baselines are in grey, never ranked.</p>" + tables
    )


# ----------------------------------------------------------------------------- one decision
_PAGE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:860px;margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
.outcome{font-size:1.5em;padding:12px 16px;border-radius:8px;margin:12px 0}
.good{background:#e6f4ea;border:1px solid #9ccfa8}.bad{background:#fdecea;border:1px solid #f1a9a0}
.factor{display:flex;align-items:center;gap:10px;margin:4px 0;font-size:14px}
.fname{width:300px;text-align:right}.track{flex:1;position:relative;height:16px;background:#f4f4f4;border-radius:3px}
.bar{position:absolute;top:0;height:16px;border-radius:3px}.pos{background:#4caf50}.neg{background:#e57373}
.factor.failed .bar,.factor.unchecked .bar{opacity:.45;background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(255,255,255,.7) 4px 7px)}
.status{width:130px;font-size:12px}.status.passed{color:#2e7d32;font-weight:bold}.status.failed{color:#c62828;font-weight:bold}.status.unchecked{color:#8a6d00;font-style:italic}
.factor-status{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 12px;font-size:13px}
.mid{position:absolute;left:50%;top:-2px;height:20px;border-left:1px solid #999}
.claim{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
.claim .check{color:#555;font-size:13px}.ok{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.option{border-left:4px solid #4caf50;padding:4px 12px;margin:8px 0;background:#fafafa}
.muted{color:#777;font-size:13px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
"""


def factor_checks(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per feature name, the check behind its attribution bar: the ``direction`` claim about
    it ("X counted towards ...") with ``status`` 'passed' (shown as fact) or 'failed'; a
    feature with no such claim is 'unchecked'. Only a passed claim makes a bar a fact."""
    out: dict[str, dict[str, Any]] = {}
    for status, claims in (("passed", data.get("claims", [])), ("failed", data.get("dropped", []))):
        for c in claims:
            if c.get("kind") == "direction" and "feature" in c.get("params", {}):
                out[c["params"]["feature"]] = {"status": status, "evidence": c.get("evidence", "")}
    return out


_STATUS_TEXT = {
    "passed": "✓ checked",
    "failed": "✗ failed its check",
    "unchecked": "unchecked",
}


def _factors(data: Mapping[str, Any]) -> str:
    a = data["attributions"]
    vals = a["values"]
    feats = data["features"]
    checks = factor_checks(data)
    order = sorted(range(len(vals)), key=lambda j: -abs(vals[j]))[:10]
    top = max(abs(vals[j]) for j in order) or 1.0
    pos, neg = data["outcomes"][1], data["outcomes"][0]
    rows = []
    counts = {"passed": 0, "failed": 0, "unchecked": 0}
    for j in order:
        f, v = feats[j], vals[j]
        status = checks.get(f["name"], {}).get("status", "unchecked")
        counts[status] += 1
        width = 50 * abs(v) / top
        left = 50 if v >= 0 else 50 - width
        label = f"{f['label'] or f['name']}: {data['row'][f['name']]}"
        err = a["error"][j] if a.get("error") else None
        tip = f"{v:+.2f}" + (f" ± {err:.2f}" if err is not None else "")
        evidence = checks.get(f["name"], {}).get("evidence", "")
        title = f"{tip} · {_STATUS_TEXT[status]}" + (f": {evidence}" if evidence else "")
        rows.append(
            f"<div class='factor {status}' data-feature='{_E(f['name'], quote=True)}' "
            f"data-status='{status}'><div class='fname'>{_E(label)}</div><div class='track' "
            f"title='{_E(title, quote=True)}'><div class='mid'></div>"
            f"<div class='bar {'pos' if v >= 0 else 'neg'}' style='left:{left:.1f}%;width:{width:.1f}%'>"
            f"</div></div><div class='muted val'>{tip}</div>"
            f"<div class='status {status}'>{_STATUS_TEXT[status]}</div></div>"
        )
    note = (
        "Bars to the right pushed towards <b>"
        + _E(pos)
        + "</b>, to the left towards <b>"
        + _E(neg)
        + f"</b> (method: {_E(a['method'])}; units: change in the model's score against the "
        "average applicant's)."
    )
    status_note = (
        f"<p class='factor-status'>These bars are the attribution method's estimates, not "
        f'facts. A bar is marked <b>✓ checked</b> only when the statement "this feature '
        f'counted towards …" passed its test below ({counts["passed"]} of {len(order)} shown); '
        f"<b>✗ failed its check</b> ({counts['failed']}): the test contradicted it; "
        f"<b>unchecked</b> ({counts['unchecked']}): no test was run on it. Failed and "
        "unchecked bars are drawn faded and hatched.</p>"
    )
    return (
        "<h2>What the attribution method says counted</h2><p class='muted'>"
        + note
        + "</p>"
        + status_note
        + "".join(rows)
    )


def _several(data: Mapping[str, Any]) -> bool:
    """Whether the page shows a decision among more than two classes."""
    return len(data.get("classes", ())) > 2


def _recourse(data: Mapping[str, Any]) -> str:
    feats = {f["name"]: f for f in data["features"]}
    to = data.get("recourse_to", "")
    head = (
        f"<h2>What would make the model predict '{_E(to)}'</h2>"
        if _several(data)
        else "<h2>What would change the outcome</h2>"
    )
    if not data["recourse"]:
        return head + "<p>No change to the features you can act on was found.</p>"
    items = []
    for k, opt in enumerate(data["recourse"], 1):
        parts = []
        for c in opt["changes"]:
            f = feats[c["feature"]]
            show = (
                (lambda v, f=f: f["values"][int(round(v))])
                if f["kind"] != "numeric"
                else (lambda v, f=f: f"{v:g} {f['unit']}".strip())
            )
            parts.append(
                f"{_E(f['label'] or f['name'])}: {_E(show(c['before']))} → <b>{_E(show(c['after']))}</b>"
            )
        if not opt["valid"]:
            status = "check failed"
        elif _several(data):
            status = f"checked: the model predicts '{to}'"
        else:
            status = "checked: the model gives the other outcome"
        items.append(
            f"<div class='option'>Option {k}: "
            + "; ".join(parts)
            + f" <span class='muted'>({status}; effort {opt['cost']:.2f})</span></div>"
        )
    return (
        head + "<p class='muted'>The smallest changes found, "
        "never touching what you cannot change (age, sex, nationality).</p>" + "".join(items)
    )


def _claims(data: Mapping[str, Any]) -> str:
    shown = "".join(
        f"<div class='claim passed'><span class='ok'>✓ checked</span> {_E(c['text'])}."
        f"<div class='check'>How it was checked: {_E(c['test'])}. Result: {_E(c['evidence'])}.</div></div>"
        for c in data["claims"]
    )
    n_drop = len(data["dropped"])
    dropped = "".join(
        f"<li>{_E(c['text'])} <span class='muted'>({_E(c['evidence'])})</span></li>"
        for c in data["dropped"]
    )
    tail = (
        (
            f"<h3>Not shown as facts</h3><p><span class='fail'>{n_drop}</span> of "
            f"{data['n_claims_tested']} candidate statements failed their check and are not "
            f"claimed:</p><ul class='dropped'>{dropped}</ul>"
        )
        if n_drop
        else f"<p class='muted'>All {data['n_claims_tested']} candidate statements passed their checks.</p>"
    )
    return "<h2>Statements about this decision, each checked</h2>" + shown + tail


def decision_page(data: Mapping[str, Any], title: str = "Why this decision") -> str:
    """The self-contained HTML page for one explained decision (see the module docstring)."""
    good = data["decision"] == data["outcomes"][1]
    details = "".join(
        f"<tr><td>{_E(f['label'] or f['name'])}</td><td>{_E(data['row'][f['name']])}</td></tr>"
        for f in data["features"]
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width, initial-scale=1'><title>{_E(title)}</title><style>{_PAGE_CSS}</style>"
        f"</head><body><h1>{_E(title)}</h1>"
        f"<div class='outcome {'good' if good else 'bad'}' id='outcome'>Outcome: <b>{_E(data['decision'])}</b> "
        f"<span class='muted'>(model's probability of '{_E(data['outcomes'][1])}': "
        f"{data['probability']:.0%})</span></div>"
        + _classes(data)
        + _factors(data)
        + _recourse(data)
        + _claims(data)
        + f"<h2>The data used</h2><table>{details}</table>"
        + _footer(data)
        + "</body></html>"
    )


def _classes(data: Mapping[str, Any]) -> str:
    """Several classes: the contrast explained and every class's probability (else nothing)."""
    if not _several(data):
        return ""
    probs = "".join(
        f"<tr><td>{_E(c)}</td><td>{p:.0%}</td></tr>" for c, p in data["probabilities"].items()
    )
    return (
        f"<p id='contrast'>The model chooses between {len(data['classes'])} classes. This page "
        f"explains why it scored class {_E(data['contrast'])} "
        "(the bars and statements below are about that comparison).</p>"
        f"<table class='probabilities'><tr><th>class</th><th>probability</th></tr>{probs}</table>"
    )


def _footer(data: Mapping[str, Any]) -> str:
    """What was and was not tested, counted from the data (so it is true for this page)."""
    checks = factor_checks(data)
    n_bars = min(10, len(data["attributions"]["values"]))
    n_passed = sum(c["status"] == "passed" for c in checks.values())
    return (
        "<p class='muted' id='footer'>Generated by interplab explain. The statements under "
        f'"Statements about this decision" marked ✓ ({len(data["claims"])}) passed a test '
        f"that ran the model on new inputs; {len(data['dropped'])} failed and are listed as not "
        "shown as facts. The attribution bars are the method's estimates: "
        f"{n_passed} of the {n_bars} bars shown have a passed test behind them, the rest are "
        "labelled unchecked or failed. Recourse options are labelled with their own check.</p>"
    )
