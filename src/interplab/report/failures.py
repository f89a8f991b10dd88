"""Failures-track report fragment: true vs reconstructed triggers (inline SVG pixel grids) and,
per organism, each method's rates with their 95% intervals and n.

``section(store)`` reads the failures track's rows and artifacts; "" when there are none.
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
