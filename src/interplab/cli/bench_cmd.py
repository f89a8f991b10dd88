"""`interplab bench` and `interplab report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from interplab.errors import ConfigError

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(
        invoke_without_command=True, add_completion=False, rich_markup_mode=None
    )
    bench_app.callback()(bench)
    bench_app.command("merge")(merge)
    app.add_typer(bench_app, name="bench")
    app.command("report")(report)


def bench(
    ctx: typer.Context,
    spec: str = typer.Option(
        "quick",
        "--suite",
        "--spec",
        "-s",
        help="A suite name (quick: ≤5 min on 2 cores; full: every organism, "
        "method and ablation; zoo: 210 generated organisms × the circuit "
        "methods × 3 ablations) or the path of a TOML spec file.",
    ),
    out: Path = typer.Option(
        Path("runs/bench"),
        "--out",
        "-o",
        help="Directory for results.sqlite, results.json and report.html.",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="Run this many jobs in parallel processes (at most one "
        "per CPU core; default: one per core, each on "
        "--threads-per-job threads).",
    ),
    threads_per_job: int = typer.Option(
        1,
        "--threads-per-job",
        min=1,
        help="Torch threads each job uses (default 1: on a shared "
        "machine more threads per job are often slower).",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        help="Seed for every job (organism training, sampling); "
        "overrides the spec file's `seed` (default: the "
        "file's seed, else 0).",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing report.html."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
    list_jobs: bool = typer.Option(False, "--list", help="Only list the jobs the spec expands to."),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Run on Dask (pip install 'interplab[dask]'): "
        "'local' starts a LocalCluster with --jobs workers; "
        "tcp://HOST:PORT submits to a running scheduler.",
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="Run only part i of N (e.g. 2/8), split by organism, "
        "for array jobs; combine with `interplab bench merge`.",
    ),
) -> None:
    """Score interpretability methods on model organisms whose mechanism is known.

    Every job (organism × method × ablation) is stored in OUT/results.sqlite as it finishes; run
    the same command again after an interruption (Ctrl-C exits with code 130) and finished jobs
    are skipped. A failing job is recorded with its error and the rest go on.

    Examples:

      interplab bench --out runs/quick

      interplab bench --suite full --jobs 2 --out runs/full

      interplab bench --spec my_spec.toml --seed 1 --out runs/mine

      interplab bench --suite zoo --cluster tcp://10.0.0.5:8786 --out runs/zoo

      interplab bench --suite zoo --shard 3/8 --out runs/zoo-3   (then: bench merge runs/zoo runs/zoo-*)
    """
    if ctx.invoked_subcommand is not None:
        return
    from interplab.bench.runner import BenchInterrupted, run_bench
    from interplab.bench.spec import load_spec

    bench_spec = load_spec(spec, seed).sharded(shard)
    if list_jobs:
        keys = [j.key for j in bench_spec.jobs()]
        typer.echo(json.dumps(keys) if as_json else "\n".join(keys))
        for job, why in bench_spec.left_out():  # on stderr: stdout stays the list of jobs
            typer.echo(f"left out: {job.key}: {why}", err=True)
        return
    if jobs is None:
        import os

        jobs = max(1, os.cpu_count() or 1)
    try:
        summary = run_bench(
            bench_spec,
            out,
            jobs=jobs,
            threads_per_job=threads_per_job,
            progress=not as_json,
            cluster=cluster,
        )
    except BenchInterrupted as stop:
        typer.echo(
            f"interrupted after {stop.finished} of {stop.total} jobs; results so far are in "
            f"{out / 'results.sqlite'} — rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(INTERRUPTED_EXIT) from None
    report_path = _report_and_json(
        out,
        no_report,
        as_json,
        {
            "suite": bench_spec.name,
            "seed": bench_spec.seed,
            "total": summary.total,
            "skipped": summary.skipped,
            "done": summary.done,
            "failed": summary.failed,
            "seconds": round(summary.seconds, 2),
        },
    )
    if as_json:
        return
    typer.echo(
        f"{summary.done} jobs run, {summary.skipped} already done, {summary.failed} failed "
        f"in {summary.seconds:.1f} s"
    )
    for key, err in summary.failures:
        typer.echo(f"  failed: {key}: {err}")
    typer.echo(f"results: {out / 'results.json'}")
    if report_path:
        typer.echo(f"report:  {report_path}")


def merge(
    out: Path = typer.Argument(..., help="New directory for the merged results.sqlite."),
    inputs: list[Path] = typer.Argument(
        ..., help="Result directories (or .sqlite files) of shards of one spec."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing report.html."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Combine the result stores of one spec's shards (`bench --shard i/N`) into OUT.

    Stores written by different specs are refused. A job done in any input is kept done.

    Example: interplab bench merge runs/zoo runs/zoo-1 runs/zoo-2
    """
    from interplab.bench.merge import merge_stores

    summary = merge_stores(out, list(inputs))
    _report_and_json(
        out,
        no_report,
        as_json,
        {
            "inputs": summary.inputs,
            "jobs": summary.jobs,
            "done": summary.done,
            "failed": summary.failed,
        },
    )
    if as_json:
        return
    typer.echo(
        f"merged {summary.inputs} stores: {summary.jobs} jobs ({summary.done} done, "
        f"{summary.failed} failed) into {out / 'results.sqlite'}"
    )


def report(
    out: Path = typer.Argument(..., help="A directory written by `interplab bench --out`."),
) -> None:
    """Re-render DIR/report.html from the stored results (no model is run)."""
    from interplab.report.html import render_report

    if not out.is_dir():
        raise ConfigError(
            f"{out} is not a directory; pass the --out directory of an `interplab bench` run"
        )
    typer.echo(str(render_report(out)))


def _report_and_json(
    out: Path, no_report: bool, as_json: bool, summary: dict[str, Any]
) -> Path | None:
    """Render OUT/report.html (unless ``no_report``) and, with ``as_json``, print ``summary``
    with the paths of results.json and the report as one JSON line. Returns the report's path
    (None when it was not rendered)."""
    report_path = None
    if not no_report:
        from interplab.report.html import render_report

        report_path = render_report(out)
    if as_json:
        report = str(report_path) if report_path else None
        typer.echo(json.dumps({**summary, "results": str(out / "results.json"), "report": report}))
    return report_path
