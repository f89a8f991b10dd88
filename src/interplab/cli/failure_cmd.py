"""``interplab failure``: attack one input of a model, explain the failure, write an HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Optional

import typer

DIGIT_MODELS = ("trojan-patch-digits", "twin-patch-digits", "trojan-blend-digits", "twin-blend-digits")


def failure(model: str = typer.Argument("trojan-patch-digits", help=f"A digits organism: {', '.join(DIGIT_MODELS)}."),
            index: int = typer.Option(0, "--index", help="Which input of the held-out score split (0-299)."),
            eps: float = typer.Option(0.1, "--eps", help="L-inf budget in pixel units (inputs lie in [0, 1])."),
            steps: int = typer.Option(20, "--steps", help="PGD steps."),
            top_k: int = typer.Option(16, "--top-k", help="Units the explanation names (patched back to check it)."),
            method: str = typer.Option("attribution", "--method",
                                       help="activation | attribution | baseline:activation_change | random"),
            html_out: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML page here."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Attack one input with PGD, name the hidden units that carry the failure, and check them.

    The check patches the named units back to their clean values (restoration: does the clean
    answer return?) and, separately, every other unit (leftover: it should not).

    Examples:

        interplab failure trojan-patch-digits --index 3 --html runs/failure.html

        interplab failure twin-patch-digits --eps 0.2 --method activation --json
    """
    import torch

    from interplab.errors import ConfigError, unknown_name
    from interplab.eval.failures import leftover_rate, restoration_rate
    from interplab.methods.attacks import pgd
    from interplab.methods.failures import explain_failure
    from interplab.models.trojans import digits
    from interplab.zoo import trojans

    if model not in DIGIT_MODELS:
        raise unknown_name("digits organism", model, DIGIT_MODELS)
    x, y = digits("score")
    if not 0 <= index < len(x):
        raise ConfigError(f"--index must lie in [0, {len(x)}), got {index}")
    torch.set_num_threads(1)
    org = trojans.load(model)
    xi, yi = x[index:index + 1], y[index:index + 1]
    r = pgd(org.model, xi, yi, eps=eps, steps=steps, restarts=3, progress=not as_json)
    result = {"model": model, "index": index, "label": int(yi), "clean_pred": int(r.clean_pred),
              "adv_pred": int(r.adv_pred), "eps": eps, "success": bool(r.success[0])}
    if bool(r.success[0]) and int(r.clean_pred) == int(yi):
        units = [(trojans.ACT_SITE, i) for i in range(org.model.module.out.in_features)]
        e = explain_failure(org.model, xi, r.x_adv, units=units, method=method)
        top = e.scores[0].topk(min(top_k, len(units))).indices.tolist()
        result.update(method=method, units=[f"act[{i}]" for i in top],
                      scores=[round(float(e.scores[0, i]), 4) for i in top],
                      restored=bool(restoration_rate(org.model, xi, r.x_adv, e, top_k).value == 1.0),
                      leftover_restored=bool(leftover_rate(org.model, xi, r.x_adv, e, top_k).value == 1.0))
    if html_out is not None:
        from interplab.models.io import atomic_write_text

        atomic_write_text(html_out, _page(result, xi[0].tolist(), r.x_adv[0].tolist()))
        result["html"] = str(html_out)
    typer.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))


def _page(result: dict, clean: list, adv: list) -> str:
    from interplab.report.failures import pixels_svg

    diff = [abs(a - c) * 5 for a, c in zip(adv, clean)]
    figs = "".join(f"<figure style='display:inline-block;margin:8px'>{pixels_svg(v, cell=24, title=t)}"
                   f"<figcaption>{html.escape(t)}</figcaption></figure>"
                   for t, v in (("clean input", clean), ("adversarial input", adv), ("|difference| × 5", diff)))
    rows = "".join(f"<tr><td>{html.escape(u)}</td><td>{s}</td></tr>"
                   for u, s in zip(result.get("units", []), result.get("scores", [])))
    check = ("<p>Not explained: the attack did not flip a correctly classified input.</p>"
             if "units" not in result else
             f"<p>Restoration check: patching these {len(result['units'])} units back to their clean "
             f"values {'<b>restores</b>' if result['restored'] else '<b>does not restore</b>'} the clean "
             f"answer; patching every other unit {'also restores it' if result['leftover_restored'] else 'does not'}.</p>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>interplab failure — "
            f"{html.escape(result['model'])}</title></head><body style='font-family:sans-serif'>"
            f"<h1>{html.escape(result['model'])}: input {result['index']}</h1>"
            f"<p>label {result['label']}, clean prediction {result['clean_pred']}, adversarial prediction "
            f"{result['adv_pred']} (L∞ ε = {result['eps']})</p>{figs}"
            f"<h2>Units that carried it ({html.escape(result.get('method', '–'))})</h2>"
            f"<table border='1' cellpadding='4'><tr><th>unit</th><th>score</th></tr>{rows}</table>{check}"
            "</body></html>")


def register(app: typer.Typer) -> None:
    app.command("failure")(failure)
