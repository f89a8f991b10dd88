"""Failures-track report fragment: true vs reconstructed triggers (inline SVG pixel grids) and,
per organism, each method's rates with their 95% intervals and n.

``section(store)`` reads the failures track's rows and artifacts; "" when there are none.
``failure_page(result, views)`` is the ``interplab failure`` page (the real-model pages' style):
the clean and adversarial inputs, the named units beside the planted ones, the restoration
check and its baselines.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

TRACK = "failures"


def pixels_svg(
    values: Sequence[float], shape: Sequence[int] = (8, 8), cell: int = 14, title: str = ""
) -> str:
    """A grey-level image as inline SVG (0 white, 1 black); no external resources."""
    rows, cols = int(shape[0]), int(shape[1])
    rects = []
    for i, v in enumerate(values[: rows * cols]):
        g = int(round(255 * (1 - min(1.0, max(0.0, float(v))))))
        r, c = divmod(i, cols)
        rects.append(
            f"<rect x='{c * cell}' y='{r * cell}' width='{cell}' height='{cell}' "
            f"fill='rgb({g},{g},{g})'/>"
        )
    w, h = cols * cell, rows * cell
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' viewBox='0 0 {w} {h}' "
        f"role='img' aria-label='{html.escape(title)}'><title>{html.escape(title)}</title>"
        f"<rect width='{w}' height='{h}' fill='white' stroke='#999'/>{''.join(rects)}</svg>"
    )


def trigger_card(art: dict[str, Any], organism: str) -> str:
    shape = art.get("shape", (8, 8))
    true = [m * p for m, p in zip(art["true_mask"], art["true_pattern"])]
    rec = [m * p for m, p in zip(art["mask"], art["pattern"])]
    figs = [
        ("true trigger (mask × pattern)", true),
        (f"{art['method']} (mask × pattern)", rec),
        (f"{art['method']} mask", art["mask"]),
    ]
    body = "".join(
        f"<figure style='display:inline-block;margin:6px'>{pixels_svg(v, shape, title=t)}"
        f"<figcaption class='muted'>{html.escape(t)}</figcaption></figure>"
        for t, v in figs
    )
    hit = (
        ""
        if art.get("flagged") is None
        else (" (the true target)" if art["flagged"] == art["target"] else " (not the true target)")
    )
    return (
        f"<div class='card'><b>{html.escape(organism)}</b> · true target {art['target']} · "
        f"flagged and scored class {art.get('flagged')}{hit}<br>{body}</div>"
    )


def _fmt_est(e: dict | None) -> str:
    if not e:
        return "–"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}] n={e['n']}"


def section(store: Any) -> str:
    jobs = [j for j in store.jobs() if j.track == TRACK and j.status == "done"]
    if not jobs:
        return ""
    out = [
        "<h2 id='failures-track'>Failures: attacks, explanations, planted trojans</h2>",
        "<p class='muted'>Rates with Wilson 95% intervals. Restoration: failing examples whose "
        "answer returns when the method's top-k units are patched back to clean values; leftover: "
        "when every other unit is; the SAE columns use the latents of a TopK SAE trained on clean "
        "hidden activations as the units. k is a fixed budget per model kind (16 hidden units, 2 "
        "heads), never the number of true trojan units; the method's own k is the smallest k whose "
        "patch restores 90% on half the triggered inputs, scored on the other half. Localisation "
        "AUROC ranks the units by their mean score over triggered inputs against the verified "
        "trojan units (interval: bootstrap over those inputs). Trigger "
        "reconstructions are scored on the class each method flags. Baselines (random, "
        "activation_change, weight_norm) are controls.</p>",
    ]
    cards, table = [], []
    all_arts = store.artifacts()
    for j in sorted(jobs, key=lambda j: (j.organism, j.method)):
        arts = all_arts.get(j.key, {})
        if "trigger" in arts:
            cards.append(trigger_card(arts["trigger"], j.organism))
        est = arts.get("estimates", {})
        if est:
            table.append(
                f"<tr><td class='name'>{html.escape(j.organism)}</td><td class='name'>"
                f"{html.escape(j.method)}</td>"
                + "".join(
                    f"<td>{_fmt_est(est.get(m))}</td>"
                    for m in (
                        "attack_success",
                        "restoration_rate",
                        "leftover_rate",
                        "restoration_rate_sae",
                        "leftover_rate_sae",
                        "restoration_rate_trigger",
                        "restoration_rate_trigger_at_k_trigger",
                        "trojan_localisation_auroc",
                        "reconstructed_attack_success",
                        "trojan_detection_auroc",
                    )
                )
                + "</tr>"
            )
    if table:
        out.append(
            "<table><tr><th class='name'>organism</th><th class='name'>method</th>"
            "<th>attack success</th><th>restoration</th><th>leftover</th>"
            "<th>restoration (SAE latents)</th><th>leftover (SAE latents)</th>"
            "<th>restoration (trigger)</th><th>restoration (trigger, method's own k)</th>"
            "<th>trojan-unit localisation AUROC (n: triggered inputs)</th>"
            "<th>reconstructed trigger's attack success</th>"
            "<th>detection AUROC</th></tr>" + "".join(table) + "</table>"
        )
    if cards:
        out.append(
            "<h3>True vs reconstructed triggers</h3><div class='grid'>" + "".join(cards) + "</div>"
        )
    sweeps = [a["superposition"] for a in all_arts.values() if "superposition" in a]
    if sweeps:
        out.append(superposition_plots(sweeps[0]))
    return "".join(out)


def superposition_plots(sweep: dict[str, Any]) -> str:
    """Robust radius (smallest L2 budget that flips half the one-feature inputs) against
    sparsity and against dimensions per feature; a radius beyond the grid is drawn at its edge."""
    from interplab.report.plots import line_plot

    cap = max(sweep["eps_grid"])

    def radius(p: dict) -> float:
        return min(float(p["robust_radius"]), cap)

    sp = sweep["by_sparsity"]
    pts = sorted(
        sweep["by_sparsity"] + sweep["by_width"], key=lambda p: p["dimensions_per_feature"]
    )
    left = line_plot(
        {"20 features in 5 dims": ([p["sparsity"] for p in sp], [radius(p) for p in sp])},
        title="robustness vs feature sparsity",
        xlabel="sparsity",
        ylabel="robust radius (L2)",
    )
    right = line_plot(
        {"all models": ([p["dimensions_per_feature"] for p in pts], [radius(p) for p in pts])},
        title="robustness vs dimensions per feature",
        xlabel="dimensions per feature",
        ylabel="robust radius (L2)",
    )
    return (
        "<h3>Superposition and adversarial robustness</h3><p class='muted'>PGD (L2, 20 steps) on "
        f"one-feature inputs of toy superposition models; radii beyond the grid are drawn at {cap}."
        f"</p><div class='grid'><div class='card'>{left}</div><div class='card'>{right}</div></div>"
    )


def _tokens_html(tokens: Sequence[int], other: Sequence[int]) -> str:
    return "".join(
        f"<span class='tok{' changed' if t != o else ''}'>{int(t)}</span>"
        for t, o in zip(tokens, other)
    )


def _against_random(result: dict[str, Any]) -> str:
    """One sentence relating the restoration check to random unit sets of the same size."""
    r = (result.get("baselines") or {}).get("random")
    if not r or not result.get("restored"):
        return ""
    rr = r["restoration_rate"]
    verdict = (
        "so this restoration alone does not single out these units"
        if rr["high"] >= 0.5
        else "so restoring it is specific to the units named"
    )
    return (
        f" Random sets of {result['top_k']} units restore it in {rr['value']:.0%} "
        f"[{rr['low']:.0%}, {rr['high']:.0%}] of {rr['n']} draws, {verdict}."
    )


def _pct(e: dict[str, Any]) -> str:
    return f"{e['value']:.0%} [{e['low']:.0%}, {e['high']:.0%}] (n = {e['n']})"


def failure_page(result: dict[str, Any], views: dict[str, Any]) -> str:
    """The self-contained page of one ``interplab failure`` result (its JSON dict and the raw
    clean / adversarial inputs); no scripts, no external URLs."""
    from interplab.report.real_models import page

    E = html.escape
    clean, adv = views["clean"], views["adv"]
    if result["kind"] == "digits":
        diff = [abs(a - c) * 5 for a, c in zip(adv, clean)]
        figs = "".join(
            f"<figure class='input' style='display:inline-block;margin:8px'>"
            f"{pixels_svg(v, cell=24, title=t)}<figcaption>{E(t)}</figcaption></figure>"
            for t, v in (
                ("clean input", clean),
                ("adversarial input", adv),
                ("|difference| × 5", diff),
            )
        )
    else:
        figs = (
            f"<div class='input'><b>clean input</b> {_tokens_html(clean, adv)}</div>"
            f"<div class='input'><b>adversarial input</b> {_tokens_html(adv, clean)}</div>"
            "<p class='muted'>Changed tokens are outlined; the answer is read at the last "
            "position.</p>"
        )
    summary = (
        f"<p>label {result['label']}, clean prediction {result['clean_pred']}, adversarial "
        f"prediction {result['adv_pred']} ({E(result['attack'])}).</p>"
        f"<section id='inputs'>{figs}</section>"
    )
    truth = set(result.get("truth_units") or [])
    has_truth = "truth_units" in result
    sections = [("Attack", summary)]
    if "units" not in result:
        sections.append(
            (
                "Units that carried it",
                "<p id='restoration'>Not explained: the attack did not flip a correctly "
                "classified input.</p>",
            )
        )
    else:
        rows = "".join(
            f"<tr class='unit{' planted' if u in truth else ''}'><td>{E(u)}</td><td>{sc}</td>"
            + (f"<td>{'✓ planted' if u in truth else ''}</td>" if has_truth else "")
            + "</tr>"
            for u, sc in zip(result["units"], result["scores"])
        )
        left = result["leftover_restored"]
        rest = (
            "there are no other units"
            if left is None
            else f"patching every other unit {'also restores it' if left else 'does not'}"
        )
        check = (
            f"<p id='restoration' class='{'restored' if result['restored'] else 'not-restored'}'>"
            f"Restoration check: patching these {len(result['units'])} units back to their "
            f"clean values {'<b>restores</b>' if result['restored'] else '<b>does not restore</b>'}"
            f" the clean answer; {rest}.{_against_random(result)}</p>"
        )
        units = (
            f"<p class='muted' id='unit-site'>Units: {E(result.get('unit_site', ''))}. Method "
            f"{E(result['method'])}, top k = {result['top_k']} (a fixed budget, never the "
            "number of planted units).</p>"
            "<table id='units'><tr><th>unit</th><th>score</th>"
            + ("<th>planted trojan unit?</th>" if has_truth else "")
            + f"</tr>{rows}</table>{check}"
        )
        sections.append((f"Units that carried it ({result['method']})", units))
        b = result.get("baselines")
        if b:
            a, r = b["activation_change"], b["random"]
            ov = r.get("truth_overlap")
            planted_cols = (
                (
                    f"<td>{result.get('truth_overlap')} of {result['top_k']}</td>",
                    f"<td>{a['truth_overlap']} of {result['top_k']}</td>",
                    f"<td>mean {ov['mean']:.2f}, 95% range {ov['low']}..{ov['high']} "
                    f"(n = {ov['n']})</td>",
                )
                if ov
                else ("", "", "")
            )
            head = "<th>planted units among them</th>" if ov else ""
            sections.append(
                (
                    "Against baselines",
                    "<table id='baselines'><tr><th>units</th><th>patched back: clean answer"
                    f"</th>{head}</tr>"
                    f"<tr><td>{E(result['method'])} top {result['top_k']}</td><td>"
                    f"{'restored' if result['restored'] else 'not restored'}</td>"
                    f"{planted_cols[0]}</tr>"
                    f"<tr class='baseline'><td>baseline: activation_change top {result['top_k']} "
                    f"(units the attack moved most)</td><td>"
                    f"{'restored' if a['restored'] else 'not restored'}</td>{planted_cols[1]}</tr>"
                    f"<tr class='baseline'><td>baseline: {r['n_draws']} random sets of "
                    f"{result['top_k']} units</td><td>{_pct(r['restoration_rate'])} restored "
                    f"(Wilson 95%)</td>{planted_cols[2]}</tr></table>",
                )
            )
    if has_truth:
        t = result["truth_units"]
        target = result.get("truth_target")
        body = (
            f"<p id='truth'>{E(result['truth_note'])}"
            + (f": <b>{E(', '.join(t))}</b>" if t else "")
            + (f"; target class {target}" if target is not None else "")
            + f".</p><p class='muted'>Source: {E(result.get('truth_source', ''))}. Shown for "
            "comparison only: the method, k and the units never read it.</p>"
        )
        if t and "units" in result:
            found = [u for u in result["units"] if u in truth]
            missed = [u for u in t if u not in set(result["units"])]
            body += (
                f"<p id='truth-overlap'>{len(found)} of the {result['top_k']} named units are "
                f"planted trojan units ({E(', '.join(found)) or 'none'}); planted units not "
                f"named: {E(', '.join(missed)) or 'none'}.</p>"
            )
        sections.append(("Planted truth", body))
    return page(f"interplab failure — {result['model']}: input {result['index']}", sections)
