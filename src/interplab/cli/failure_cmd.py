"""``interplab failure``: attack one input of a model, explain the failure, write an HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, cast

import typer

DIGIT_MODELS = (
    "trojan-patch-digits",
    "twin-patch-digits",
    "trojan-blend-digits",
    "twin-blend-digits",
    "trojan-decoy-digits",
    "twin-decoy-digits",
)
TOKEN_MODELS = ("trojan-token", "twin-token")
MODELS = DIGIT_MODELS + TOKEN_MODELS
N_TOKEN_ROWS = 300  # the token models' score split: rows of seed SCORE_SEED


def failure(
    model: str = typer.Argument(
        "trojan-patch-digits", help=f"A trojan organism: {', '.join(MODELS)}."
    ),
    index: int = typer.Option(
        0, "--index", help="Which input of the held-out score split (0-299)."
    ),
    eps: float = typer.Option(
        0.1, "--eps", help="Digits: L-inf budget in pixel units (inputs lie in [0, 1])."
    ),
    steps: int = typer.Option(
        20, "--steps", help="PGD steps (digits) or greedy token swaps (token models)."
    ),
    top_k: int | None = typer.Option(
        None,
        "--top-k",
        help="Units the explanation names (patched back to check it); "
        "default 16 hidden neurons (digits), 2 heads (token models).",
    ),
    method: str = typer.Option(
        "attribution",
        "--method",
        help="activation | attribution | activation_change | random",
    ),
    html_out: Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML page here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Attack one input, name the units that carry the failure, and check them.

    Digits models: PGD (L-inf) on the image; the units are hidden neurons.

    Token models: the greedy token attack (gradient-ranked swaps, exact
    evaluation) on positions 1-6 of the prompt (the first token is the
    answer); the units are the 4 attention heads.

    The check patches the named units back to their clean values
    (restoration: does the clean answer return?) and, separately, every
    other unit (leftover: it should not).

    Examples:

        interplab failure trojan-patch-digits --index 3 --html runs/failure.html

        interplab failure twin-patch-digits --eps 0.2 --method activation --json

        interplab failure trojan-token --index 5 --html runs/token.html
    """
    import torch

    from interplab.errors import ConfigError, unknown_name
    from interplab.methods.failures import explainers

    if model not in MODELS:
        raise unknown_name("trojan organism", model, MODELS)
    if method not in explainers():
        raise unknown_name("failure explainer", method, explainers())
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    torch.set_num_threads(1)
    if model in DIGIT_MODELS:
        result, views = _digits_failure(model, index, eps, steps, top_k or 16, method, as_json)
    else:
        result, views = _token_failure(model, index, steps, top_k or 2, method, as_json)
    if html_out is not None:
        from interplab.models.io import atomic_write_text

        atomic_write_text(html_out, _page(result, views))
        result["html"] = str(html_out)
    typer.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))


def _check(
    result: dict,
    org_model: Any,
    clean: Any,
    bad: Any,
    units: list,
    names: list[str],
    method: str,
    k: int,
    output_position: int | None,
) -> None:
    """Explain the (clean, bad) pair with ``units`` and check the top ``k`` by patching."""
    from interplab.eval.failures import leftover_rate, restoration_rate
    from interplab.methods.failures import explain_failure

    e = explain_failure(
        org_model, clean, bad, units=units, method=method, output_position=output_position
    )
    k = min(k, len(units))
    order = e.scores[0].argsort(descending=True).tolist()
    result.update(
        method=method,
        top_k=k,
        units=[names[i] for i in order[:k]],
        scores=[round(float(e.scores[0, i]), 4) for i in order[:k]],
        other_units=[names[i] for i in order[k:]],
        restored=bool(restoration_rate(org_model, clean, bad, e, k).value == 1.0),
        leftover_restored=(
            bool(leftover_rate(org_model, clean, bad, e, k).value == 1.0)
            if k < len(units)
            else None
        ),
    )


def _digits_failure(
    model: str, index: int, eps: float, steps: int, top_k: int, method: str, as_json: bool
) -> tuple[dict, dict]:
    from interplab.errors import ConfigError
    from interplab.methods.attacks import pgd
    from interplab.models.trojans import DigitMLP, digits
    from interplab.zoo import trojans

    x, y = digits("score")
    if not 0 <= index < len(x):
        raise ConfigError(f"--index must lie in [0, {len(x)}), got {index}")
    org = trojans.load(model)
    xi, yi = x[index : index + 1], y[index : index + 1]
    r = pgd(org.model, xi, yi, eps=eps, steps=steps, restarts=3, progress=not as_json)
    result = {
        "model": model,
        "kind": "digits",
        "index": index,
        "label": int(yi),
        "clean_pred": int(r.clean_pred),
        "adv_pred": int(r.adv_pred),
        "attack": f"PGD L∞ ε = {eps}",
        "eps": eps,
        "success": bool(r.success[0]),
    }
    if bool(r.success[0]) and int(r.clean_pred) == int(yi):
        width = cast(DigitMLP, org.model.module).out.in_features
        _check(
            result,
            org.model,
            xi,
            r.x_adv,
            [(trojans.ACT_SITE, i) for i in range(width)],
            [f"act[{i}]" for i in range(width)],
            method,
            top_k,
            None,
        )
    return result, {"clean": xi[0].tolist(), "adv": r.x_adv[0].tolist()}


def _token_failure(
    model: str, index: int, steps: int, top_k: int, method: str, as_json: bool
) -> tuple[dict, dict]:
    import torch

    from interplab.core.sites import Component, Site
    from interplab.errors import ConfigError
    from interplab.methods.attacks import gcg
    from interplab.models import trojan_tokens as tt
    from interplab.zoo import trojans

    if not 0 <= index < N_TOKEN_ROWS:
        raise ConfigError(f"--index must lie in [0, {N_TOKEN_ROWS}), got {index}")
    x = tt.clean_batch(N_TOKEN_ROWS, torch.Generator().manual_seed(tt.SCORE_SEED))
    org = trojans.load(model)
    xi = x[index : index + 1]
    yi = tt.labels(xi)
    # swaps anywhere but the first token (the answer) and the last (the output position)
    r = gcg(
        org.model,
        xi,
        labels=yi,
        positions=range(1, tt.LENGTH - 1),
        steps=steps,
        seed=0,
        progress=not as_json,
    )
    result = {
        "model": model,
        "kind": "tokens",
        "index": index,
        "label": int(yi),
        "clean_pred": int(r.clean_pred),
        "adv_pred": int(r.adv_pred),
        "attack": f"greedy token swaps (≤ {steps}, positions 1–{tt.LENGTH - 2})",
        "swaps": int(r.n_swaps[0]),
        "trigger_inserted": bool((r.tokens_adv[0] == tt.TRIGGER).any()),
        "success": bool(r.success[0]),
    }
    if bool(r.success[0]) and int(r.clean_pred) == int(yi):
        heads = [(Site(Component.ATTN_Z, 0), h) for h in range(tt.CFG.n_heads)]
        names = [f"L0H{h}" for h in range(tt.CFG.n_heads)]
        _check(result, org.model, xi, r.tokens_adv, heads, names, method, top_k, -1)
        result["true_trojan_heads"] = [f"L0H{i}" for _, i in org.truth_units]
    return result, {"clean": xi[0].tolist(), "adv": r.tokens_adv[0].tolist()}


def _tokens_html(tokens: list, other: list) -> str:
    return "".join(
        f"<span class='tok{' changed' if t != o else ''}'>{int(t)}</span>"
        for t, o in zip(tokens, other)
    )


def _page(result: dict, views: dict) -> str:
    from interplab.report.failures import pixels_svg

    clean, adv = views["clean"], views["adv"]
    if result["kind"] == "digits":
        diff = [abs(a - c) * 5 for a, c in zip(adv, clean)]
        figs = "".join(
            f"<figure class='input' style='display:inline-block;margin:8px'>"
            f"{pixels_svg(v, cell=24, title=t)}<figcaption>{html.escape(t)}</figcaption></figure>"
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
            "<p class='muted'>Changed tokens are outlined; the answer is read at the last position.</p>"
        )
    rows = "".join(
        f"<tr class='unit'><td>{html.escape(u)}</td><td>{s}</td></tr>"
        for u, s in zip(result.get("units", []), result.get("scores", []))
    )
    if "units" not in result:
        check = "<p id='restoration'>Not explained: the attack did not flip a correctly classified input.</p>"
    else:
        left = result["leftover_restored"]
        rest = (
            "there are no other units"
            if left is None
            else f"patching every other unit {'also restores it' if left else 'does not'}"
        )
        check = (
            f"<p id='restoration' class='{'restored' if result['restored'] else 'not-restored'}'>"
            f"Restoration check: patching these {len(result['units'])} units back to their clean "
            f"values {'<b>restores</b>' if result['restored'] else '<b>does not restore</b>'} the clean "
            f"answer; {rest}.</p>"
        )
    truth = (
        ""
        if "true_trojan_heads" not in result
        else f"<p>Trojan heads (read off attention to the trigger): "
        f"{html.escape(', '.join(result['true_trojan_heads']) or 'none')}</p>"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>interplab failure — "
        f"{html.escape(result['model'])}</title><style>body{{font-family:sans-serif;margin:16px}}"
        ".tok{display:inline-block;min-width:1.6em;text-align:center;margin:2px;padding:2px;"
        "border:1px solid #ccc}.tok.changed{border:2px solid #c00}.muted{color:#666}</style></head><body>"
        f"<h1>{html.escape(result['model'])}: input {result['index']}</h1>"
        f"<p>label {result['label']}, clean prediction {result['clean_pred']}, adversarial prediction "
        f"{result['adv_pred']} ({html.escape(result['attack'])})</p><section id='inputs'>{figs}</section>"
        f"<h2>Units that carried it ({html.escape(result.get('method', '–'))})</h2>"
        f"<table id='units' border='1' cellpadding='4'><tr><th>unit</th><th>score</th></tr>{rows}</table>"
        f"{truth}{check}</body></html>"
    )


def register(app: typer.Typer) -> None:
    app.command("failure")(failure)
