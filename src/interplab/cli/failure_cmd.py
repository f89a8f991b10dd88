"""``interplab failure``: attack one input of a model, explain the failure, write an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    to_stdout,
    write_json,
)

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
    html_out: Path | None = html_file_option("Write a self-contained HTML page here."),
    json_out: Path | None = json_file_option("Write the result as JSON"),
    n_random: int = typer.Option(
        200,
        "--random",
        help="Random unit sets of the same size drawn for the baseline (restoration rate with a "
        "Wilson 95% interval, overlap with the planted units).",
    ),
) -> None:
    """Attack one input, name the units that carry the failure, and check them.

    Digits models: PGD (L-inf) on the image; the units are hidden neurons.

    Token models: the greedy token attack (gradient-ranked swaps, exact
    evaluation) on positions 1-6 of the prompt (the first token is the
    answer); the units are the 4 attention heads.

    The check patches the named units back to their clean values
    (restoration: does the clean answer return?) and, separately, every
    other unit (leftover: it should not). Beside it: two baselines, the
    units the attack moved most (activation_change) and --random random unit
    sets of the same size (restoration rate, Wilson 95% interval), and, where
    the organism has planted trojan units (its truth), how many of the named
    units are planted ones against what random sets of that size give.

    Examples:

        interplab failure trojan-patch-digits --index 3 --html runs/failure.html

        interplab failure twin-patch-digits --eps 0.2 --method activation --json -

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
    if n_random < 1:
        raise ConfigError(f"--random must be at least 1, got {n_random}")
    check_outputs(json_out, html_out)
    quiet = to_stdout(json_out)
    torch.set_num_threads(1)
    if model in DIGIT_MODELS:
        result, views = _digits_failure(model, index, eps, steps, top_k or 16, method, quiet)
    else:
        result, views = _token_failure(model, index, steps, top_k or 2, method, quiet)
    if "units" in result:
        _baselines(result, views, n_random)
    if html_out is not None:
        from interplab.report.failures import failure_page
        from interplab.report.real_models import write

        write(html_out, failure_page(result, views))
        result["html"] = str(html_out)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    if not quiet:
        for line in _summary(public):
            typer.echo(line)
    write_json(json_out, public)


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
    # for the baselines (not in the JSON: underscored keys are dropped before writing)
    result["_run"] = (org_model, clean, bad, units, names, e, output_position)


def _baselines(result: dict, views: dict, n_random: int) -> None:
    """Two baselines at the same k and the planted truth beside the named units.

    activation_change: the k units whose activation the attack moved most (no gradient, no
    model of the failure). random: ``n_random`` seeded random k-subsets of the units, patched
    back the same way; their restoration rate gets a Wilson 95% interval (n = draws), and
    their overlap with the planted units a 2.5-97.5 percentile range. The truth is only read
    here, after the explanation: it never sets k or the units."""
    import dataclasses

    import torch

    from interplab.eval.failures import restoration_rate
    from interplab.methods.failures import explain_failure

    org_model, clean, bad, units, names, e, pos = result.pop("_run")
    k = result["top_k"]
    truth = set(result.get("truth_units") or [])
    base = explain_failure(
        org_model, clean, bad, units=units, method="activation_change", output_position=pos
    )
    b_order = base.scores[0].argsort(descending=True).tolist()[:k]
    gen = torch.Generator().manual_seed(0)
    rand = torch.rand(n_random, len(units), generator=gen)
    rep = (n_random,) + (1,) * (clean.dim() - 1)
    e_rand = dataclasses.replace(
        e,
        scores=rand,
        clean_labels=e.clean_labels.repeat(n_random),
        fail_labels=e.fail_labels.repeat(n_random),
    )
    rate = restoration_rate(org_model, clean.repeat(rep), bad.repeat(rep), e_rand, k)
    picks = rand.argsort(dim=1, descending=True)[:, :k].tolist()
    overlaps = sorted(sum(names[i] in truth for i in row) for row in picks)
    found_units = result["units"]
    result["baselines"] = {
        "activation_change": {
            "units": [names[i] for i in b_order],
            "restored": bool(restoration_rate(org_model, clean, bad, base, k).value == 1.0),
            "truth_overlap": sum(names[i] in truth for i in b_order) if truth else None,
        },
        "random": {
            "n_draws": n_random,
            "restoration_rate": {
                "value": rate.value,
                "low": rate.low,
                "high": rate.high,
                "n": rate.n,
            },
            "truth_overlap": (
                {
                    "mean": sum(overlaps) / len(overlaps),
                    "low": overlaps[int(0.025 * (len(overlaps) - 1))],
                    "high": overlaps[int(round(0.975 * (len(overlaps) - 1)))],
                    "n": len(overlaps),
                }
                if truth
                else None
            ),
        },
    }
    if truth:
        result["truth_overlap"] = sum(u in truth for u in found_units)


def _summary(result: dict) -> list[str]:
    """The text lines ``interplab failure`` prints (the JSON holds the same and more)."""
    lines = [
        f"{result['model']} input {result['index']}: label {result['label']}, clean "
        f"prediction {result['clean_pred']}, adversarial {result['adv_pred']} "
        f"({result['attack']}; {'flipped' if result['success'] else 'not flipped'})"
    ]
    if "units" not in result:
        lines.append("not explained: the attack did not flip a correctly classified input")
        return lines
    lines.append(f"units ({result['unit_site']}):")
    lines.append(
        f"  {result['method']} top {result['top_k']}: {', '.join(result['units'])} -> "
        f"patched back {'RESTORES' if result['restored'] else 'does not restore'} the clean answer"
    )
    b = result["baselines"]
    a, r = b["activation_change"], b["random"]
    rr = r["restoration_rate"]
    lines.append(
        f"  baseline activation_change top {result['top_k']}: "
        f"{'restores' if a['restored'] else 'does not restore'}; random {result['top_k']} units: "
        f"restore {rr['value']:.0%} [{rr['low']:.0%}, {rr['high']:.0%}] of {r['n_draws']} draws"
    )
    if "truth_units" in result:
        t = result["truth_units"]
        if not t:
            lines.append(f"  planted truth: {result['truth_note']}")
        else:
            ro = r["truth_overlap"]
            lines.append(
                f"  planted trojan units ({len(t)}): {', '.join(t)}; {result['truth_overlap']} "
                f"of the {result['top_k']} named are planted (random sets: mean "
                f"{ro['mean']:.2f}, 95% range {ro['low']}..{ro['high']}; activation_change: "
                f"{a['truth_overlap']})"
            )
    return lines


def _digits_failure(
    model: str, index: int, eps: float, steps: int, top_k: int, method: str, quiet: bool
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
    r = pgd(org.model, xi, yi, eps=eps, steps=steps, restarts=3, progress=not quiet)
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
    net = cast(DigitMLP, org.model.module)
    width = net.out.in_features
    result["unit_site"] = (
        f"L0.mlp[i] = hidden neuron i of the MLP's only hidden layer, read at site "
        f"{trojans.ACT_SITE} (the ReLU after {net.hidden.in_features} -> {width})"
    )
    names = [digit_unit_name(i) for i in range(width)]
    _truth(result, model, lambda site, i: digit_unit_name(i))
    if bool(r.success[0]) and int(r.clean_pred) == int(yi):
        _check(
            result,
            org.model,
            xi,
            r.x_adv,
            [(trojans.ACT_SITE, i) for i in range(width)],
            names,
            method,
            top_k,
            None,
        )
    return result, {"clean": xi[0].tolist(), "adv": r.x_adv[0].tolist()}


def _token_failure(
    model: str, index: int, steps: int, top_k: int, method: str, quiet: bool
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
        progress=not quiet,
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
    result["unit_site"] = (
        "L0.H<h>.attn_z = the output (z) of attention head h of layer 0, site L0.attn_z"
    )
    _truth(result, model, head_unit_name)
    if bool(r.success[0]) and int(r.clean_pred) == int(yi):
        site = Site(Component.ATTN_Z, 0)
        heads = [(site, h) for h in range(tt.CFG.n_heads)]
        names = [head_unit_name(site, h) for h in range(tt.CFG.n_heads)]
        _check(result, org.model, xi, r.tokens_adv, heads, names, method, top_k, -1)
        result["true_trojan_heads"] = [head_unit_name(site, i) for _, i in org.truth_units]
    return result, {"clean": xi[0].tolist(), "adv": r.tokens_adv[0].tolist()}


def digit_unit_name(i: int) -> str:
    """A digits model's hidden neuron ``i``, named by layer: ``L0.mlp[i]`` (the model has one
    hidden layer; its activation is the site ``module:act``)."""
    return f"L0.mlp[{i}]"


def head_unit_name(site: Any, head: int) -> str:
    """Head ``head`` at an ``attn_z`` site, in the site-string form ``L<layer>.H<head>.attn_z``."""
    return f"L{site.layer}.H{head}.{site.component.value}"


def _truth(result: dict, model: str, name: Any) -> None:
    """The organism's planted truth (``interplab.organism(model).truth``, the zoo contract):
    the units that carry the trojan, the target class, or, for a twin, that none is planted.
    Read for display only, after the method's settings are fixed."""
    from interplab.zoo.loader import organism

    truth = organism(model).truth
    units = [name(site, i) for site, i in getattr(truth, "units", ())]
    result["truth_units"] = units
    result["truth_target"] = getattr(truth, "target", None)
    result["truth_source"] = getattr(truth, "source", "")
    result["truth_note"] = (
        f"{len(units)} units carry the planted trojan (verified by ablation at build time)"
        if units
        else "no trojan units: this organism is a clean twin (trained without poison), or its "
        "carriers are not named"
    )


def register(app: typer.Typer) -> None:
    app.command("failure")(failure)
