"""`interplab bench` and `interplab report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import check_output_path, json_file_option, to_stdout, write_json
from interplab.errors import ConfigError, InterplabError

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
        "per CPU core this process may use; default: one per such core "
        "(affinity mask, cgroup quota), each on --threads-per-job threads).",
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
    json_out: Path | None = json_file_option("Write a JSON summary (with --list: the job keys)"),
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
    force_new: bool = typer.Option(
        False,
        "--force-new",
        help="Start afresh in --out even if it holds results (of another spec or seed): "
        "they are moved into OUT/previous-<time>/, not deleted.",
    ),
) -> None:
    """Score interpretability methods on model organisms whose mechanism is known.

    Every job (organism × method × ablation) is stored in OUT/results.sqlite as it finishes; run
    the same command again after an interruption (Ctrl-C exits with code 130) and finished jobs
    are skipped. A failing job is recorded with its error and the rest go on; the command then
    exits 1 (0 only when every job succeeded). A folder holds the results of one spec and seed.

    Examples:

      interplab bench --out runs/quick

      interplab bench --suite full --jobs 2 --out runs/full

      interplab bench --spec my_spec.toml --seed 1 --out runs/mine

      interplab bench --suite zoo --cluster tcp://10.0.0.5:8786 --out runs/zoo

      interplab bench --suite zoo --shard 3/8 --out runs/zoo-3   (then: bench merge runs/zoo runs/zoo-*)
    """
    if ctx.invoked_subcommand is not None:
        return
    from interplab.bench.runner import BenchInterrupted, default_jobs, run_bench
    from interplab.bench.spec import load_spec

    check_output_path(json_out, "--json")
    bench_spec = load_spec(spec, seed).sharded(shard)
    for note in bench_spec.notes:
        typer.echo(f"note: {note}", err=True)
    if list_jobs:
        keys = [j.key for j in bench_spec.jobs()]
        if json_out is not None:
            write_json(json_out, keys)
        if not to_stdout(json_out):
            typer.echo("\n".join(keys))
        for job, why in bench_spec.left_out():  # on stderr: stdout stays the list of jobs
            typer.echo(f"left out: {job.key}: {why}", err=True)
        return
    if jobs is None:
        jobs = default_jobs()  # the CPUs this process may use: what the check allows
    try:
        summary = run_bench(
            bench_spec,
            out,
            jobs=jobs,
            threads_per_job=threads_per_job,
            progress=not to_stdout(json_out),
            cluster=cluster,
            force_new=force_new,
        )
    except BenchInterrupted as stop:
        typer.echo(
            f"interrupted after {stop.finished} of {stop.total} jobs; results so far are in "
            f"{out / 'results.sqlite'} — rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(INTERRUPTED_EXIT) from None
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the run started: quietly
        typer.echo(f"interrupted; rerun the same command to resume ({out})", err=True)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    report_path = _report_and_json(
        out,
        no_report,
        json_out,
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
    if to_stdout(json_out):
        _exit_if_failed(summary.failed)
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
    if summary.failed:
        typer.echo(
            f"{summary.failed} of {summary.total} jobs failed (listed above); exit code 1",
            err=True,
        )
    _exit_if_failed(summary.failed)


def _exit_if_failed(failed: int) -> None:
    """`bench` exits 1 when any job of this run failed, 0 only when all succeeded."""
    if failed:
        raise typer.Exit(1)


def merge(
    out: Path = typer.Argument(..., help="New directory for the merged results.sqlite."),
    inputs: list[Path] = typer.Argument(
        ..., help="Result directories (or .sqlite files) of shards of one spec."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing report.html."),
    json_out: Path | None = json_file_option("Write a JSON summary"),
) -> None:
    """Combine the result stores of one spec's shards (`bench --shard i/N`) into OUT.

    Stores written by different specs are refused. A job done in any input is kept done.

    Example: interplab bench merge runs/zoo runs/zoo-1 runs/zoo-2
    """
    from interplab.bench.merge import merge_stores

    check_output_path(json_out, "--json")
    summary = merge_stores(out, list(inputs))
    _report_and_json(
        out,
        no_report,
        json_out,
        {
            "inputs": summary.inputs,
            "jobs": summary.jobs,
            "done": summary.done,
            "failed": summary.failed,
        },
    )
    if to_stdout(json_out):
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
    try:
        path = render_report(out)  # reads a read-only store as it is
    except OSError as exc:
        import os

        if os.access(out, os.W_OK):
            raise
        raise InterplabError(
            f"{out} is read-only: its results were read, but report.html cannot be written "
            f"there ({exc.strerror or exc}); copy the folder to a writable place "
            "(cp -r OUT NEWDIR) and run `interplab report NEWDIR`"
        ) from None
    typer.echo(str(path))


def _report_and_json(
    out: Path, no_report: bool, json_out: Path | None, summary: dict[str, Any]
) -> Path | None:
    """Render OUT/report.html (unless ``no_report``) and, with ``--json``, write ``summary``
    with the paths of results.json and the report (``-``: one JSON line on stdout). Returns
    the report's path (None when it was not rendered)."""
    report_path = None
    if not no_report:
        from interplab.report.html import render_report

        report_path = render_report(out)
    if json_out is not None:
        report = str(report_path) if report_path else None
        write_json(json_out, {**summary, "results": str(out / "results.json"), "report": report})
    return report_path
