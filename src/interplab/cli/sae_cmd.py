"""``interplab sae``: train a TopK SAE or a transcoder on a language model's activations.

Mounted by ``cli/main.py`` with ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import (
    check_outputs,
    html_file_option,
    json_file_option,
    say,
    write_json,
)
from interplab.errors import ConfigError, unknown_name


def sae(
    model: str = typer.Argument("smollm2-135m", help="Pretrained language model."),
    site: str = typer.Option(
        "L6.resid_post",
        "--site",
        help="Where to read activations, e.g. L6.resid_post; for --kind transcoder "
        "an L<n>.mlp_in (the target is L<n>.mlp_out).",
    ),
    kind: str = typer.Option(
        "topk", "--kind", help="topk (a TopK SAE) or transcoder (TopK, mlp_in -> mlp_out)."
    ),
    d_latent: int = typer.Option(
        2304, "--d-latent", help="Dictionary size (4 x d_model by default)."
    ),
    k: int = typer.Option(32, "--k", help="Active latents per token."),
    steps: int = typer.Option(300, "--steps", help="Training steps (one model forward each)."),
    batch_tokens: int = typer.Option(1024, "--batch-tokens", help="Tokens per step."),
    ctx: int = typer.Option(64, "--ctx", help="Tokens per window."),
    corpus: Path | None = typer.Option(
        None,
        "--corpus",
        help="Text file or directory (.txt/.md/.rst/.py); default: the "
        "docstrings of the installed Python standard library.",
    ),
    max_windows: int = typer.Option(4000, "--max-windows", help="Windows read from the corpus."),
    checkpoint_dir: Path | None = typer.Option(
        None,
        "--checkpoint-dir",
        help="Checkpoints (resumed from when present); default under the interplab cache.",
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the newest checkpoint."
    ),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(
        None, "--threads", help="torch CPU threads (default: free cores, at most 4)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    json_out: Path | None = json_file_option("Write the measures and dashboards as JSON."),
    html_out: Path | None = html_file_option("Write feature dashboards (offline, searchable)."),
) -> None:
    """Train a sparse dictionary on a language model's activations from an offline corpus.

    Streams activations (one model forward per step, nothing stored), writes resumable
    checkpoints, then reports on held-out windows: variance explained, loss recovered with the
    dictionary spliced into the model (against zero ablation), dead fraction, L0 and throughput,
    and writes feature dashboards. Cost on 2 cores: about one SmolLM2 forward of --batch-tokens
    tokens per step (seconds), so --steps 300 takes minutes to tens of minutes.

    Example: interplab sae smollm2-135m --site L6.resid_post --steps 300 --html sae.html
    """
    import torch

    from interplab import _config
    from interplab.cli._common import default_threads, load_lm
    from interplab.core.sites import Component, Site, parse_site
    from interplab.eval.lm_dictionaries import evaluate_lm_dictionary, feature_dashboards
    from interplab.methods.dictionaries import corpus as text
    from interplab.methods.dictionaries.config import DictionaryConfig
    from interplab.methods.dictionaries.train import train_dictionary
    from interplab.models.weights_cache import digest

    check_outputs(json_out, html_out)
    echo = say(json_out)  # with --json -, stdout carries the JSON only
    if kind not in ("topk", "transcoder"):
        raise unknown_name("dictionary kind", kind, ("topk", "transcoder"))
    for name, value in (
        ("--d-latent", d_latent),
        ("--k", k),
        ("--steps", steps),
        ("--batch-tokens", batch_tokens),
        ("--max-windows", max_windows),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    where = parse_site(site)
    target = None
    if kind == "transcoder":
        if where.component is not Component.MLP_IN:
            raise ConfigError(
                f"a transcoder reads an MLP's input: give --site L<n>.mlp_in, got {site}"
            )
        target = Site(Component.MLP_OUT, where.layer)
    texts = text.read_corpus(corpus) if corpus is not None else text.stdlib_docstrings()
    torch.set_num_threads(threads or default_threads())
    lm = load_lm(model)
    lm.check_site(where)  # SiteError naming the sites the model has
    if ctx > lm.cfg.n_ctx:
        raise ConfigError(f"--ctx {ctx} is longer than {model}'s context of {lm.cfg.n_ctx}")
    tok = lm.tokenizer
    windows = text.token_windows(tok, texts, ctx, sep=tok.eos_id, max_windows=max_windows)
    train, held = text.split(windows, 0.1, seed)
    typer.echo(
        f"corpus: {len(texts)} texts -> {windows.shape[0]} windows of {ctx} tokens "
        f"({train.shape[0]} train, {held.shape[0]} held out)",
        err=True,
    )
    d_in = lm.cfg.d_model
    config = DictionaryConfig(
        d_in=d_in,
        d_latent=d_latent,
        activation="topk",
        k=k,
        d_out=d_in if target is not None else None,
        batch_size=batch_tokens,
        steps=steps,
        lr=1e-3,
        checkpoint_every=max(1, min(50, steps)),
        log_every=max(1, min(25, steps)),
        seed=seed,
    )
    key = digest(
        [
            "skip-first-position",
            model,
            site,
            kind,
            d_latent,
            k,
            batch_tokens,
            ctx,
            seed,
            str(corpus),
            max_windows,
        ]
    )
    root = checkpoint_dir or (_config.cache_dir() / "dictionaries" / key)
    source = text.WindowSource(lm, where, train, target_site=target, seed=seed, skip=1)
    trained = train_dictionary(
        source, config, checkpoint_dir=root, resume=resume, progress=progress
    )
    if trained.resumed_from is not None:
        typer.echo(f"resumed from step {trained.resumed_from} in {root}", err=True)
    measures = evaluate_lm_dictionary(
        lm, trained.dictionary, where, held, target_site=target, skip=1
    )
    measures["tokens_per_second"] = trained.samples_per_second
    measures["train_seconds"] = trained.seconds
    dash = feature_dashboards(
        lm, trained.dictionary, where, held, tok, unembed=lm.model.W_U, skip=1
    )
    for name in (
        "variance_explained",
        "loss_recovered",
        "dead_fraction",
        "l0",
        "tokens_per_second",
    ):
        echo(f"{name:>20} {measures[name]:.4g}")
    data: dict[str, Any] = {
        "model": model,
        "site": str(where),
        "target_site": str(target) if target else None,
        "kind": kind,
        "config": config.to_json(),
        "checkpoints": str(root),
        "steps": trained.steps,
        "history": trained.history,
        "measures": measures,
        "features": dash,
    }
    write_json(json_out, data, default=str)
    if html_out is not None:
        from interplab.report.real_models import write
        from interplab.report.viewer import viewer_page

        rows = "".join(f"<tr><td>{k}</td><td>{v:.4g}</td></tr>" for k, v in measures.items())
        intro = (
            f"<p>{kind} dictionary ({d_latent} latents, k = {k}) on <b>{model}</b> at "
            f"<b>{where}</b>{' -> ' + str(target) if target else ''}, {trained.steps} steps of "
            f"{batch_tokens} tokens; measured on {measures['n_windows']} held-out windows "
            "(loss recovered is against zero ablation of the site; the first position of "
            "each window, the attention sink, is left out of training, measures and "
            "dashboards and keeps its own activation when the dictionary is spliced in).</p>"
            f"<table><tr><th>measure</th><th>value</th></tr>{rows}</table>"
        )
        page = viewer_page(f"interplab sae: {model} {where}", intro, features=dash)
        echo(f"wrote {write(html_out, page)}")


def register(app: typer.Typer) -> None:
    """Add ``sae`` to ``app``."""
    app.command("sae")(sae)
