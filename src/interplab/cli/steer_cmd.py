"""``interplab steer``: find a behaviour's direction by difference in means, then steer and ablate it.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    progress_option,
    say,
    write_json,
)
from interplab.errors import ConfigError, unknown_name

CONCEPTS = ("sentiment",)
BASE_MODEL_NOTE = (
    "SmolLM2-135M here is the BASE model (the -Instruct model does not ship offline), "
    "so the behaviour is sentiment of the next word, not refusal."
)


def _alphas(text: str) -> tuple[float, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError("--alpha needs at least one positive number, e.g. --alpha 1,2")
    out = []
    for p in parts:
        try:
            a = float(p)
        except ValueError:
            raise ConfigError(
                f"--alpha takes positive numbers separated by commas, got {p!r}"
            ) from None
        if not a > 0 or a == float("inf"):
            raise ConfigError(
                f"--alpha must be positive and finite (the step is taken both ways, +alpha "
                f"and -alpha), got {p}"
            )
        out.append(a)
    return tuple(dict.fromkeys(out))


N_SAMPLES = 3  # eval prompts continued greedily per condition
N_NEW = 10  # tokens per greedy continuation
N_HELD_OUT = 24  # held-out sentences the perplexity is measured on


def _groups(seqs: list[list[int]]) -> list[list[int]]:
    """Indices of ``seqs`` grouped by length (one batch each: no padding enters the model)."""
    by: dict[int, list[int]] = {}
    for i, q in enumerate(seqs):
        by.setdefault(len(q), []).append(i)
    return list(by.values())


def _logits(lm: Any, seqs: list[list[int]], ivs: list) -> list[Any]:
    """Full next-token logits [len, vocab] (float64) of every sequence under ``ivs``."""
    import torch

    out: list[Any] = [None] * len(seqs)
    for idx in _groups(seqs):
        tokens = torch.tensor([seqs[i] for i in idx], dtype=torch.long)
        with torch.no_grad():
            logits = lm.run_with(tokens, ivs).double()
        for j, i in enumerate(idx):
            out[i] = logits[j]
    return out


def _mean_ci(xs: list[float]) -> dict[str, float]:
    import math
    from statistics import fmean, stdev

    m = fmean(xs)
    half = 1.96 * stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return {"value": m, "low": m - half, "high": m + half, "n": len(xs)}


def held_out_text(tokenizer: Any, n: int = N_HELD_OUT, seed: int = 0) -> list[str]:
    """Neutral English the steering never saw, shipped with interplab: the IOI task's
    sentences completed with their answer ("When Mary and John went to the store, John gave
    a drink to Mary"); no sentiment word, so a perplexity change is damage, not sentiment."""
    from interplab.tasks import make_task

    ds = make_task("ioi", tokenizer, n=n, seed=seed + 1)
    texts = list(ds.texts)
    decode = getattr(tokenizer, "decode", None)
    if ds.labels is None or decode is None:
        return texts
    answers = [int(a) for a in ds.labels[:, 0]]
    return [t + decode([a]) for t, a in zip(texts, answers)]


def fluency_check(
    lm: Any,
    task: Any,
    layer: int,
    gap: float,
    alphas: tuple[float, ...],
    *,
    seed: int = 0,
    progress: Any = None,
) -> dict[str, Any]:
    """Does the steered model still write sensible text? Per condition of the learned
    direction (none, ablate, +-alpha x gap) and, for KL, one random direction of the same step:

        kl            KL(steered || unsteered) of the next-token distribution, nats, mean over
                      every position of the eval prompts (interval over prompts)
        perplexity    exp(mean next-token NLL) of held-out neutral sentences
                      (:func:`held_out_text`), with the ratio to the unsteered perplexity
        samples       greedy continuations (N_NEW tokens) of the first N_SAMPLES eval prompts

    The direction is refit exactly as the check fits it (same fit sentences, same site) and
    its gap must match the check's."""
    import torch

    from interplab.core.sites import Component, Site
    from interplab.methods.steering.directions import diff_in_means
    from interplab.methods.steering.intervene import (
        Steering,
        last_token_activations,
        random_direction,
        steering_intervention,
    )

    site = lm.check_site(Site(Component.RESID_POST, layer))
    direction = diff_in_means(
        last_token_activations(lm, site, task.fit_positive),
        last_token_activations(lm, site, task.fit_negative),
    )
    if abs(float(direction.gap) - gap) > 1e-4 * max(1.0, abs(gap)):
        raise RuntimeError(f"refit direction's gap {float(direction.gap)} differs from {gap}")
    rand = random_direction(direction, seed + 10_000)
    steps = [Steering("ablate")] + [Steering("add", s * a) for a in alphas for s in (1, -1)]
    prompts = [list(p) for p in task.eval_prompts]
    tok = lm.tokenizer
    texts = held_out_text(tok, seed=seed)
    held = [list(tok.encode(t)) for t in texts]
    held = [h for h in held if len(h) >= 2]

    def ivs(d: Any, st: Steering) -> list:
        iv = steering_intervention(site, d, st)
        return [] if iv is None else [iv]

    def nll(ivl: list) -> list[float]:
        out = []
        for seq, lg in zip(held, _logits(lm, held, ivl)):
            logp = torch.log_softmax(lg[:-1], -1)
            target = torch.tensor(seq[1:])
            out.append(float(-logp[torch.arange(len(target)), target].mean()))
        return out

    def greedy(ivl: list) -> list[str]:
        outs = []
        for p in prompts[:N_SAMPLES]:
            seq = list(p)
            for _ in range(N_NEW):
                if len(seq) >= lm.cfg.n_ctx:
                    break
                seq.append(int(_logits(lm, [seq], ivl)[0][-1].argmax()))
            new = seq[len(p) :]
            dec = getattr(tok, "decode", None)
            outs.append(dec(new) if dec is not None else " ".join(map(str, new)))
        return outs

    base_logp = [torch.log_softmax(lg, -1) for lg in _logits(lm, prompts, [])]
    base_nll = nll([])
    base_ppl = float(torch.tensor(base_nll).mean().exp())
    rows = [
        {
            "label": "none",
            "kind": "none",
            "alpha": 0.0,
            "kl": {"value": 0.0, "low": 0.0, "high": 0.0, "n": len(prompts)},
            "kl_random": None,
            "perplexity": base_ppl,
            "perplexity_ratio": 1.0,
            "nll": _mean_ci(base_nll),
            "samples": greedy([]),
        }
    ]
    if progress:
        progress("fluency: unsteered")

    def kl(ivl: list) -> dict[str, float]:
        per = []
        for lp0, lg in zip(base_logp, _logits(lm, prompts, ivl)):
            lp = torch.log_softmax(lg, -1)
            per.append(float((lp.exp() * (lp - lp0)).sum(-1).mean()))
        return _mean_ci(per)

    for st in steps:
        learned = ivs(direction, st)
        n = nll(learned)
        ppl = float(torch.tensor(n).mean().exp())
        rows.append(
            {
                "label": f"learned {st.label}",
                "kind": st.kind,
                "alpha": st.alpha,
                "kl": kl(learned),
                "kl_random": kl(ivs(rand, st)),
                "perplexity": ppl,
                "perplexity_ratio": ppl / base_ppl,
                "nll": _mean_ci(n),
                "samples": greedy(learned),
            }
        )
        if progress:
            progress(f"fluency: {st.label}")
    return {
        "site": str(site),
        "held_out_text": "IOI sentences with their answers (interplab.tasks.ioi), neutral",
        "n_held_out": len(held),
        "held_out_examples": texts[:3],
        "n_kl_prompts": len(prompts),
        "n_new_tokens": N_NEW,
        "sample_prompts": list(task.eval_texts[:N_SAMPLES]),
        "random_seed": seed + 10_000,
        "rows": rows,
    }


def monotonicity_notes(summary: dict[str, Any]) -> list[str]:
    """Plain-words notes where the learned direction's effect is not monotonic in alpha: a
    larger step that moves the mean log-odds less than a smaller one (same sign)."""
    add = {
        r["alpha"]: r["mean_log_odds"]
        for r in summary["rows"]
        if r["kind"] == "add" and r["mean_log_odds"]
    }
    notes = []
    for sign, side in ((1, "lower"), (-1, "higher")):
        steps = sorted((a for a in add if a * sign > 0), key=abs)
        for small, big in zip(steps, steps[1:]):
            s, b = add[small]["value"], add[big]["value"]
            if (b - s) * sign < 0:
                lo_b, hi_b = add[big]["low"], add[big]["high"]
                overlap = lo_b <= add[small]["high"] and add[small]["low"] <= hi_b
                notes.append(
                    f"Not monotonic in alpha: {big:+g} x gap gives mean log-odds {b:+.2f}, "
                    f"{side} than {small:+g} x gap's {s:+.2f}, so the bigger push is the weaker "
                    "effect here" + (" (the 95% intervals overlap)" if overlap else "") + "."
                )
    return notes


def steer(
    model: str = typer.Argument(
        "smollm2-135m", help="Pretrained language model (see `interplab models`)."
    ),
    concept: str = typer.Option("sentiment", "--concept", help="The behaviour: sentiment."),
    layer: int | None = typer.Option(
        None,
        "--layer",
        help="Layer whose resid_post is read and steered (default: the middle one).",
    ),
    alpha: str = typer.Option(
        "1,2",
        "--alpha",
        help="Step sizes in units of the direction's gap, comma-separated; each is "
        "taken as +alpha and -alpha.",
    ),
    n_prompts: int = typer.Option(48, "--n-prompts", help="Held-out eval prompts (at most 64)."),
    n_fit: int = typer.Option(64, "--n-fit", help="Fit sentences per polarity."),
    n_random: int = typer.Option(3, "--random", help="Random directions in the control."),
    seed: int = typer.Option(0, "--seed", help="Word split, prompt sample and random directions."),
    threads: int | None = typer.Option(
        None, "--threads", help="torch CPU threads (default: free cores, at most 4)."
    ),
    fluency: bool = typer.Option(
        True,
        "--fluency/--no-fluency",
        help="Also check the steered model still writes sensible text: KL to the unsteered "
        "next-token distribution, held-out perplexity and greedy continuations.",
    ),
    progress: bool = progress_option("Progress lines on stderr."),
    json_out: Path | None = json_file_option("Write per-prompt scores and the summary as JSON."),
    html_out: Path | None = html_file_option("Write the page (self-contained, offline)."),
) -> None:
    """Steer a language model along a difference-in-means direction, against random directions.

    Fits positive-minus-negative sentiment at the last token of template sentences (VADER lexicon words, FIT half), then on held-out neutral prompts ("I thought the movie was") measures the next-token sentiment log-odds (held-out EVAL words) with no change, with the direction ablated, and with +/- alpha x gap added at every position, beside seeded random directions of the same step size. Reports the positive rate (Wilson 95%), the mean log-odds and the share of prompts moved the predicted way, and says so when a larger alpha moves the log-odds less than a smaller one.

    Fluency (--no-fluency skips it): per step of the learned direction, KL(steered || unsteered) of the next-token distribution (nats, mean over every eval-prompt position; beside it one random direction of the same step), the perplexity of held-out neutral sentences (the IOI task's, answers included) against the unsteered perplexity, and greedy continuations of 3 eval prompts, so a high positive rate bought with broken text shows.

    Cost on SmolLM2-135M, 1 thread: load ~8 s, fitting ~3 s, then one batch of --n-prompts short prompts per condition, 1 + (1 + 2 x alphas) x (1 + --random) conditions; the defaults (21 conditions, 48 prompts) took 38 s of CPU on one thread (45 s wall with the load). The fluency check adds 2 + 2 x alphas runs (each: KL on the eval prompts for the learned and one random direction, perplexity of 24 sentences, 30 greedy steps); on a busy 2-core machine (load average about 6, 1 thread) the whole default run took 576 s, about 280 s of it the fluency check.

    Example: interplab steer smollm2-135m --concept sentiment --layer 15 --alpha 4 --html s.html
    """

    import torch

    from interplab.cli._common import default_threads, load_lm
    from interplab.methods.steering.sentiment import sentiment_steering_check
    from interplab.report.steering import summarise
    from interplab.tasks.sentiment import EVAL_FRAMES, EVAL_SUBJECTS, sentiment_task

    if concept not in CONCEPTS:
        raise unknown_name("concept", concept, CONCEPTS)
    alphas = _alphas(alpha)
    most = len(EVAL_SUBJECTS) * len(EVAL_FRAMES)
    problems = [
        f"{name} must be at least {low}, got {value}"
        for name, value, low in (
            ("--n-prompts", n_prompts, 1),
            ("--n-fit", n_fit, 1),
            ("--random", n_random, 1),
            ("--threads", 1 if threads is None else threads, 1),
            ("--layer", 0 if layer is None else layer, 0),
        )
        if value < low
    ]
    if n_prompts > most:
        problems.append(
            f"--n-prompts must be at most {most} (eval subjects x frames), got {n_prompts}"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    check_outputs(json_out, html_out)
    echo = say(json_out)
    torch.set_num_threads(threads or default_threads())
    lm = load_lm(model)
    n_layers = lm.cfg.n_layers
    layer = n_layers // 2 if layer is None else layer
    if layer >= n_layers:
        raise ConfigError(f"--layer {layer} is out of range: {model} has layers 0..{n_layers - 1}")
    if getattr(lm, "tokenizer", None) is None:
        raise ConfigError(f"{model} has no tokenizer; steering prompts are text")
    task = sentiment_task(lm.tokenizer, n_fit=n_fit, n_eval=n_prompts, seed=seed)
    n_cond = 1 + (1 + 2 * len(alphas)) * (1 + n_random) + (2 + 2 * len(alphas)) * fluency
    typer.echo(
        f"{concept}: {len(task.fit_positive)}+{len(task.fit_negative)} fit sentences, "
        f"{len(task.eval_prompts)} eval prompts, L{layer}.resid_post, alphas {list(alphas)}, "
        f"{n_random} random directions ({n_cond} conditions)",
        err=True,
    )
    done = [0]
    start = time.perf_counter()

    def tick(label: str) -> None:
        done[0] += 1
        if progress:
            typer.echo(
                f"  [{done[0]}/{n_cond}] {label} ({time.perf_counter() - start:.0f} s)", err=True
            )

    check = sentiment_steering_check(
        lm, task, layer, alphas=alphas, n_random=n_random, seed=seed, progress=tick
    )
    note = BASE_MODEL_NOTE if model.startswith("smollm2") else ""
    result: dict[str, Any] = {
        "model": model,
        "concept": concept,
        "model_note": note,
        "seed": seed,
        "seconds": time.perf_counter() - start,
        **check.to_dict(),
    }
    summary = summarise(result)
    result["summary"] = summary
    if fluency:
        result["fluency"] = fluency_check(
            lm, task, layer, check.gap, alphas, seed=seed, progress=tick
        )
        result["seconds"] = time.perf_counter() - start
    pos, neg = check.fit_means
    first, last = check.eval_projection
    side = (
        "toward the positive side"
        if max(first, last) < 0
        else "toward the negative side"
        if min(first, last) > 0
        else "one way at the first token and the other at the last"
    )
    notes = [
        f"Ablation sets the projection on the direction to 0 at every position, which is not a neutral "
        f"point: the eval prompts project to {first:.3g} at their first token and {last:.3g} at their "
        f"last (positive fit sentences {pos:.3g}, negative {neg:.3g}, at the word), so ablating "
        f"moves them {side}."
    ]
    result["notes"] = notes
    notes += monotonicity_notes(summary)
    if summary["rows"][0]["positive_rate"]["value"] >= 0.9:
        notes += [
            "The unsteered positive rate is already near its ceiling (the held-out positive "
            "words draw more probability than the negative ones), so +alpha can raise it "
            "little; read the mean log-odds and the moved share."
        ]
    if note:
        echo(f"note: {note}")
    for r in summary["rows"]:
        e, m = r["positive_rate"], r["mean_log_odds"]
        moved = (
            ""
            if r["moved_share"] is None
            else f"  moved {r['moved']} {r['moved_share']['value']:.0%}"
        )
        echo(
            f"{r['label']:>16}  positive {e['value']:.0%} [{e['low']:.0%}, {e['high']:.0%}]  "
            f"log-odds {m['value']:+.2f}{moved}"
        )
    for c in summary["control"]:
        step = "ablate" if c["kind"] == "ablate" else f"add {c['alpha']:+g}"
        echo(
            f"{'random ' + step:>16}  "
            f"positive {c['positive_rate']['mean']:.0%} ({c['positive_rate']['min']:.0%}.."
            f"{c['positive_rate']['max']:.0%})  log-odds {c['mean_log_odds']['mean']:+.2f}  "
            f"moved {c['moved_share']['mean']:.0%} (max {c['moved_share']['max']:.0%})"
        )
    for v in summary["verdicts"]:
        lo, rlo = v["learned_mean_log_odds"], v["random_mean_log_odds"]
        echo(
            f"add {v['alpha']:+g}: log-odds {lo['value']:+.2f} [{lo['low']:+.2f}, {lo['high']:+.2f}] vs "
            f"random {rlo['min']:+.2f}..{rlo['max']:+.2f}: "
            f"{'beyond' if v['beyond_random'] else 'NOT beyond'} the random control"
        )
    if fluency:
        _echo_fluency(echo, result["fluency"])
    for n in notes:
        echo(f"note: {n}")
    write_json(json_out, result)
    if html_out is not None:
        from interplab.report.real_models import write
        from interplab.report.steering import steering_report

        echo(f"wrote {write(html_out, steering_report(result, summary))}")


def _echo_fluency(echo: Any, f: dict[str, Any]) -> None:
    echo(
        f"fluency (learned direction; KL = KL(steered || unsteered) next-token, nats, mean over "
        f"{f['n_kl_prompts']} prompts' positions; perplexity of {f['n_held_out']} held-out "
        "neutral sentences):"
    )
    for r in f["rows"]:
        k, kr = r["kl"], r["kl_random"]
        rand = "" if kr is None else f" (random dir {kr['value']:.3f})"
        echo(
            f"{r['label']:>16}  KL {k['value']:.3f} [{k['low']:.3f}, {k['high']:.3f}]{rand}  "
            f"perplexity {r['perplexity']:.1f} (x{r['perplexity_ratio']:.2f})"
        )
    for r in f["rows"]:
        echo(f"{r['label']:>16}  {f['sample_prompts'][0]!r} -> {r['samples'][0]!r}")


def register(app: typer.Typer) -> None:
    """Add ``steer`` to ``app``."""
    app.command("steer")(steer)
