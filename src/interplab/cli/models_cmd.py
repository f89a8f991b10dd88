"""``interplab models``, ``induction``, ``patch`` and ``attribute``: real pretrained models.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from interplab.cli import _common
from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    say,
    set_threads,
    task_options,
    threads_option,
    to_stdout,
    write_json,
)
from interplab.errors import ConfigError, unknown_name

#: what a patching score is (both methods share the normalisation of head_patching.py)
PATCH_UNIT = (
    "fraction of the clean-corrupted logit-difference gap restored: (LD_patched - LD_corrupted)"
    " / (LD_clean - LD_corrupted), LD = logit(right answer) - logit(wrong answer) in logits"
    " (nats of odds); 1 = the head alone restores the clean behaviour, negative = it pushes"
    " further towards the corrupted answer"
)


def _positive(*pairs: tuple[str, int]) -> None:
    bad = [f"{name} must be at least 1, got {value}" for name, value in pairs if value < 1]
    if bad:
        raise ConfigError("; ".join(bad))


def _emit(data: dict, json_out: Path | None, html_out: Path | None, html: Any) -> None:
    write_json(json_out, data, indent=None if to_stdout(json_out) else 1)
    if html_out is not None:
        from interplab.report.real_models import write

        say(json_out)(f"wrote {write(html_out, html())}")


def rank_heads(scores: Any, gap: float) -> list[dict[str, Any]]:
    """Every head of a [layer, head] score matrix, largest |score| first: its name, signed
    score (fraction of the gap restored), the sign, and the change in logit difference it
    stands for (score x gap, in logits). Ranking by |score| keeps a head that pushes the
    wrong way as visible as one that helps."""
    n_heads = scores.shape[1]
    flat = [float(v) for v in scores.flatten()]
    order = sorted(range(len(flat)), key=lambda i: -abs(flat[i]))
    return [
        {
            "rank": r + 1,
            "head": f"L{i // n_heads}.H{i % n_heads}",
            "layer": i // n_heads,
            "head_index": i % n_heads,
            "score": flat[i],
            "sign": "+" if flat[i] > 0 else "-" if flat[i] < 0 else "0",
            "logit_diff_change": flat[i] * gap,
        }
        for r, i in enumerate(order)
    ]


def _print_ranked(echo: Callable[[str], None], ranked: list[dict[str, Any]], top_k: int) -> None:
    echo(f"  {'head':<8} {'sign':>4} {'fraction of gap':>16} {'Δ logit diff':>13}")
    for h in ranked[:top_k]:
        echo(
            f"  {h['head']:<8} {h['sign']:>4} {h['score']:>+16.3f} {h['logit_diff_change']:>+13.3f}"
        )


def models(
    list_: bool = typer.Option(True, "--list", help="List zoo organisms and pretrained models."),
    json_out: Path | None = json_file_option("Write the model lists as JSON"),
) -> None:
    """List every model interplab can load, with source, size and install state.

    Shows the built-in zoo organisms (compiled, trained, toy) and the pretrained models shipped
    inside PyPI packages (loaded offline), whether each source is installed and how to install it.
    """
    from interplab.models.pretrained.registry import list_models
    from interplab.zoo.registry import entry, names

    check_outputs(json_out)
    rows = list_models()
    zoo_rows = [
        {
            "name": n,
            "kind": entry(n).kind,
            "source": "built-in zoo",
            "installed": True,
            "description": entry(n).description,
        }
        for n in names()
    ]
    if json_out is not None:
        write_json(json_out, {"pretrained": rows, "zoo": zoo_rows}, indent=1)
        if to_stdout(json_out):
            return
    typer.echo("Pretrained models (PyPI packages, loaded offline):")
    for r in rows:
        state = "installed" if r["installed"] else f"missing: {r['install']}"
        typer.echo(
            f"  {r['name']:<14} {r['kind']:<17} {r['params']:>6}  {r['size_mb']:6.1f} MB  "
            f"{r['source']}  [{state}]"
        )
    typer.echo("Zoo organisms (built here; see `interplab zoo`):")
    for r in zoo_rows:
        typer.echo(f"  {r['name']:<28} {r['kind']:<12} {r['description']}")


def induction(
    model: str = typer.Argument("smollm2-135m", help="Pretrained language model."),
    seq_len: int = typer.Option(
        40,
        help="Length of the random sequence (repeated once); "
        "2 x seq_len (+1 with a start token) must fit the context.",
    ),
    n_seqs: int = typer.Option(8, help="Number of sequences."),
    seed: int = typer.Option(0),
    top_k: int = typer.Option(
        5,
        "--top-k",
        help="Heads printed and listed (JSON always keeps the full [layer, head] score matrix).",
    ),
    bos: bool | None = typer.Option(
        None,
        "--bos/--no-bos",
        help="Prepend the start token (default: as the model file says; SmolLM2's says not to).",
    ),
    threads: int | None = threads_option(),
    json_out: Path | None = json_file_option("Write the results as JSON"),
    html_out: Path | None = html_file_option("Write an HTML report here."),
) -> None:
    """Find induction heads: per-head attention to the token after the previous occurrence."""

    from interplab.methods.attribution.induction_heads import detect_induction_heads
    from interplab.report.real_models import induction_report

    check_outputs(json_out, html_out)
    echo = say(json_out)
    _positive(("--n-seqs", n_seqs), ("--top-k", top_k))
    if seq_len < 2:
        raise ConfigError(
            f"--seq-len must be at least 2 (a repeat needs a token before it), got {seq_len}"
        )
    set_threads(threads)
    lm = _common.load_lm(model)  # looked up at call time: tests replace it
    add = lm.tokenizer.add_bos if bos is None else bos
    start = lm.tokenizer.bos_id if add else None
    need = 2 * seq_len + (start is not None)
    if need > lm.cfg.n_ctx:
        raise ConfigError(
            f"--seq-len {seq_len} needs {need} tokens, more than {model}'s context of "
            f"{lm.cfg.n_ctx}; use --seq-len {(lm.cfg.n_ctx - 1) // 2} or less"
        )
    typer.echo(
        f"start token: {f'prepended (id {start})' if start is not None else 'none'} "
        f"({'as the model file says' if bos is None else 'as asked'})",
        err=True,
    )
    res = detect_induction_heads(
        lm,
        lm.cfg.n_layers,
        lm.cfg.n_heads,
        seq_len=seq_len,
        n_seqs=n_seqs,
        bos=start,
        seed=seed,
        top_k=top_k,
    )
    data = {**res.to_dict(), "start_token": start}
    echo(f"loss first half {res.loss_first:.3f}, repeated half {res.loss_repeat:.3f}")
    echo("top heads by induction score (mean attention to the token after the earlier copy):")
    for layer, head, score in res.top:
        echo(f"  L{layer}.H{head}  {score:.3f}")
    _emit(data, json_out, html_out, lambda: induction_report(model, data))


def patch(
    model: str = typer.Argument("smollm2-135m", help="Pretrained language model."),
    n_prompts: int = typer.Option(32, help="Clean/corrupted prompt pairs."),
    task: str = typer.Option(
        "ioi",
        "--task",
        help="Token task: ioi or induction (see "
        "interplab.tasks; the logit lens and DLA need one "
        "scored position per prompt, i.e. ioi).",
    ),
    exact: bool = typer.Option(
        True,
        help="Also run activation patching over every head (270 "
        "patched runs on SmolLM2: ~1-5 min on 2 cores); "
        "--no-exact keeps the first-order estimate only.",
    ),
    seed: int = typer.Option(0),
    top_k: int = typer.Option(
        5,
        "--top-k",
        help="Heads printed, largest |effect| first (JSON keeps every head, ranked).",
    ),
    threads: int | None = threads_option(),
    json_out: Path | None = json_file_option("Write the results as JSON"),
    html_out: Path | None = html_file_option("Write an HTML report here."),
) -> None:
    """Patch every head on a token task (IOI by default) and attribute the logit difference.

    IOI: clean vs corrupted prompts from name templates, metric logit(IO) - logit(S); induction:
    repeated random tokens. Per-head activation patching and attribution patching (the same
    generic methods for any task), and for IOI the logit lens and direct logit attribution.

    Each head's score is the fraction of the clean-corrupted logit-difference gap it restores
    when its clean attn_z is patched into the corrupted run (1 = all of it; negative = it
    pushes further towards the corrupted answer). Heads are listed by |score| with the sign
    and the change in logit difference (score x gap, in logits).

    Cost: the first-order estimate (attribution patching, one forward/backward) comes first and
    takes seconds; exact activation patching then runs one patched forward per head (270 on
    SmolLM2), about 1-5 minutes on 2 idle cores and much longer on a busy machine.

    Example: interplab patch smollm2-135m --n-prompts 32 --html runs/ioi.html
    """

    from interplab.methods.attribution import (
        activation_patching,
        attribution_patching,
        logit_lens_and_dla,
    )
    from interplab.report.real_models import patching_report
    from interplab.tasks import TASKS, make_task

    check_outputs(json_out, html_out)
    echo = say(json_out)
    _positive(("--n-prompts", n_prompts), ("--top-k", top_k))
    set_threads(threads)
    lm = _common.load_lm(model)  # looked up at call time: tests replace it
    if task not in TASKS:
        raise unknown_name("task", task, tuple(TASKS))
    ds = make_task(task, lm.tokenizer, n=n_prompts, seed=seed, **task_options(task, lm))
    L, H = lm.cfg.n_layers, lm.cfg.n_heads
    approx = attribution_patching(lm, ds)
    gap = approx.clean_ld - approx.corrupt_ld
    data: dict[str, Any] = {
        "task": task,
        "task_description": ds.description,
        "n_prompts": len(ds),
        "examples": list(ds.texts[:3]),
        "clean_logit_diff": approx.clean_ld,
        "corrupt_logit_diff": approx.corrupt_ld,
        "gap": gap,
        "score_unit": PATCH_UNIT,
        "attribution_patching": {
            **approx.to_dict(),
            "ranked_heads": rank_heads(approx.scores, gap),
        },
    }
    if ds.positions.shape[1] == 1:
        data["lens"] = logit_lens_and_dla(lm, ds).to_dict()
    echo(
        f"logit difference (logit right - logit wrong, mean over {len(ds)} prompts): clean "
        f"{approx.clean_ld:.3f}, corrupted {approx.corrupt_ld:.3f}, gap {gap:.3f} logits"
    )
    echo(
        "score = fraction of that gap a head restores when its clean attn_z is patched into "
        "the corrupted run (negative: pushes towards the corrupted answer); "
        "Δ logit diff = score x gap"
    )
    echo(f"first-order estimate (attribution patching); top {top_k} heads by |score|:")
    _print_ranked(echo, data["attribution_patching"]["ranked_heads"], top_k)
    if exact:
        typer.echo(
            f"activation patching {L * H} heads (one patched run each; --no-exact skips it)",
            err=True,
        )
        res = activation_patching(lm, ds, progress=True)
        data["activation_patching"] = {
            **res.to_dict(),
            "ranked_heads": rank_heads(res.scores, res.clean_ld - res.corrupt_ld),
        }
        echo(
            f"activation patching over {L * H} heads: {res.seconds:.1f} s; "
            f"top {top_k} heads by |score|:"
        )
        _print_ranked(echo, data["activation_patching"]["ranked_heads"], top_k)
    _emit(data, json_out, html_out, lambda: patching_report(model, data))


ATTRIBUTE_MODELS = ("mnist-mlp", "minilm-l6")


def _require_attribute_model(model: str) -> None:
    """One line naming the install when ``model``'s weights are not here: neither pretrained
    model of ``attribute`` comes with the default `bash scripts/install.sh` (only with
    ``--dev``), so say both ways to get it before any loading starts."""
    from interplab import _config
    from interplab.errors import MissingExtraError
    from interplab.models.pretrained.registry import get_spec, is_installed

    if is_installed(model):
        return
    how = get_spec(model).install.replace("{cache}", str(_config.cache_dir()))
    raise MissingExtraError(
        f"attribute {model} needs weights that `bash scripts/install.sh` does not fetch: run "
        f"`bash scripts/install.sh --dev`, or `{how}` (in the venv)"
    )


def attribute(
    model: str = typer.Argument("mnist-mlp", help="mnist-mlp or minilm-l6."),
    n: int = typer.Option(4, help="Examples to attribute."),
    steps: int = typer.Option(64, help="Integrated-gradients steps."),
    json_out: Path | None = json_file_option("Write the results as JSON"),
    html_out: Path | None = html_file_option("Write an HTML report here."),
) -> None:
    """Integrated gradients and input x gradient, with the completeness check.

    Completeness: the sum of attributions against the output difference from the all-zero
    baseline. Example: interplab attribute mnist-mlp --html runs/mnist.html
    """
    from interplab.eval.attribute_models import attribute_minilm, attribute_mnist
    from interplab.report.real_models import attribution_report

    check_outputs(json_out, html_out)
    if model not in ATTRIBUTE_MODELS:
        raise unknown_name("attribute model", model, ATTRIBUTE_MODELS)
    _require_attribute_model(model)
    if model == "mnist-mlp":
        data = attribute_mnist(n, steps)
    elif model == "minilm-l6":
        data = attribute_minilm(steps=steps)
    else:
        raise unknown_name("attribute model", model, ("mnist-mlp", "minilm-l6"))
    for row in data["completeness"]:
        say(json_out)(
            "  "
            + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    _emit(data, json_out, html_out, lambda: attribution_report(model, data))


def register(app: typer.Typer) -> None:
    """Add the real-model commands to ``app``."""
    app.command("models")(models)
    app.command("induction")(induction)
    app.command("patch")(patch)
    app.command("attribute")(attribute)
