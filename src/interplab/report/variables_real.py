"""Report section of the variables_real track (MIB's causal-variable localisation on
SmolLM2-135M): per variable, a table featuriser (and k) × layer of held-out IIA with 95%
Wilson intervals, the random control and the whole-residual patch beside, and a sentence saying
whether MIB's finding (DAS localises best; SAE latents are no better than neurons) holds here.

Reads the track's ``localisation`` artifacts (:mod:`interplab.bench.tracks.variables_real`).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

TRACK = "variables_real"
#: featurisers in the order shown (the random control last, set apart)
ORDER = ("das", "pca", "neurons", "neurons_grad", "sae", "sae_grad", "random")
LABELS = {
    "das": "DAS (learned rotation)",
    "pca": "PCA (top-k components)",
    "neurons": "neurons (|Δ| chosen)",
    "neurons_grad": "neurons (attribution chosen)",
    "sae": "SAE latents (|Δ| chosen)",
    "sae_grad": "SAE latents (attribution chosen)",
    "random": "random directions (control)",
}
DESCRIPTIONS = {
    "io_position": "position of the indirect object among the two names (first vs second); "
    "expected answer after the swap: the base's subject",
    "io_token": "identity of the indirect object; expected answer after the swap: the "
    "source's indirect object",
}


def _fmt(est: Mapping[str, Any] | None) -> str:
    if not est or est.get("n", 0) == 0:
        return "<td>–</td>"
    return (
        f"<td>{est['value']:.2f} <span class='muted'>[{est['low']:.2f}, "
        f"{est['high']:.2f}]</span></td>"
    )


def sentence(variable: str, verdict: Mapping[str, Any]) -> str:
    """One sentence: is MIB's finding reproduced on this variable, and why (not)."""
    means = verdict.get("mean_iia", {})
    if not means:
        return f"{variable}: no featuriser cells, so MIB's finding is not tested."
    if max(means.values(), default=0.0) == 0.0:
        return (
            f"{variable}: no featuriser moves the model at any studied cell (all IIA 0), so "
            "this variable does not test MIB's finding."
        )
    other = verdict.get("best_other", "")
    lead = (
        f"{means.get('das', float('nan')):.3f} vs {other} {means.get(other, float('nan')):.3f}; "
        f"lead {verdict.get('das_lead', float('nan')):+.3f} against a typical interval "
        f"half-width of {verdict.get('das_margin', float('nan')):.3f}; DAS is at least every "
        f"other featuriser in {verdict.get('das_wins_cells', '?')} cells"
    )
    das = (
        f"DAS localises best (mean IIA {lead})"
        if verdict.get("das_best")
        else f"DAS is not clearly the best (mean IIA {lead})"
    )
    sae = (
        f"SAE latents ({verdict['best_sae']}, mean {verdict['sae_mean']:.2f}) are "
        + ("no better than" if verdict.get("sae_no_better_than_neurons") else "better than")
        + f" neurons ({verdict['best_neurons']}, mean {verdict['neurons_mean']:.2f}; margin "
        f"{verdict['margin']:.2f}, SAE's interval wholly above in "
        f"{verdict['sae_above_neurons_cells']} cells)"
        if "best_sae" in verdict
        else "SAE latents and neurons were not both run"
    )
    reproduced = verdict.get("reproduced")
    outcome = (
        "not tested" if reproduced is None else ("reproduced" if reproduced else "not reproduced")
    )
    return f"{variable}: MIB's finding is {outcome}: {das}; {sae}."


def variable_table(art: Mapping[str, Any]) -> str:
    """The featuriser × layer table of one variable's ``localisation`` artifact."""
    cells = art.get("cells", [])
    layers = sorted({int(c["layer"]) for c in cells})
    ks = sorted({int(c["k"]) for c in cells if c["featuriser"] != "full"})
    grid = {(c["featuriser"], int(c["layer"]), int(c["k"])): c["iia"] for c in cells}
    full = {int(c["layer"]): c["iia"] for c in cells if c["featuriser"] == "full"}
    none = {int(k): v for k, v in art.get("no_intervention", {}).items()}
    head = "".join(f"<th>L{layer}</th>" for layer in layers)
    body = []
    for k in ks:
        body.append(f"<tr><th class='name' colspan='{len(layers) + 1}'>k = {k}</th></tr>")
        for f in ORDER:
            if not any((f, layer, k) in grid for layer in layers):
                continue
            cls = " class='control'" if f == "random" else ""
            tds = "".join(_fmt(grid.get((f, layer, k))) for layer in layers)
            body.append(f"<tr{cls}><td class='name'>{escape(LABELS.get(f, f))}</td>{tds}</tr>")
    body.append(
        "<tr class='reference'><td class='name'>whole residual patched</td>"
        + "".join(_fmt(full.get(layer)) for layer in layers)
        + "</tr><tr class='reference'><td class='name'>no intervention</td>"
        + "".join(_fmt(none.get(layer)) for layer in layers)
        + "</tr>"
    )
    return f"<table><tr><th class='name'>featuriser</th>{head}</tr>{''.join(body)}</table>"


def variable_block(art: Mapping[str, Any]) -> str:
    variable = str(art.get("variable", "?"))
    counts = art.get("counts", {})
    secs = art.get("seconds", {})
    n = (
        f"held-out pairs n = {counts.get('n_test', '?')} (of {counts.get('test_drawn', '?')} "
        f"drawn), training pairs {counts.get('n_train', '?')} (of "
        f"{counts.get('train_drawn', '?')}); study wall time {secs.get('total', 0):.0f} s"
    )
    return (
        f"<h3>{escape(variable)}</h3><p class='muted'>{escape(DESCRIPTIONS.get(variable, ''))}"
        f". {escape(n)}.</p><p>{escape(sentence(variable, art.get('verdict', {})))}</p>"
        + variable_table(art)
    )


def collect(store: Any) -> dict[str, Mapping[str, Any]]:
    """variable -> the newest ``localisation`` artifact of this track's done jobs."""
    jobs = {j.key: j for j in store.jobs() if j.track == TRACK and j.status == "done"}
    out: dict[str, Mapping[str, Any]] = {}
    for key, arts in sorted(store.artifacts("localisation").items()):
        if key in jobs and "localisation" in arts:
            art = arts["localisation"]
            out[str(art.get("variable", jobs[key].organism))] = art
    return out


def section(store: Any) -> str:
    """The report's section for the variables_real track ('' when it has no done jobs)."""
    found = collect(store)
    if not found:
        return ""
    return (
        "<h2 id='variables-real'>Localising causal variables in SmolLM2-135M (MIB track 2)</h2>"
        "<p class='muted'>IOI prompts; site: the residual stream entering layer L at the final "
        "position. Each featuriser proposes k coordinates whose base values are replaced by the "
        "source's; IIA = share of held-out pairs where the expected name beats the base's "
        "other name(s), with 95% Wilson intervals. Random orthonormal directions are the "
        "control; the whole-residual patch shows what the site carries (a subspace can beat "
        "it when the residual also carries a competing variable); pairs are kept only where "
        "the model answers both prompts right.</p>"
        + "".join(variable_block(found[v]) for v in sorted(found))
    )
