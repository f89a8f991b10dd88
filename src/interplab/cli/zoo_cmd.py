"""`interplab zoo` (list the organisms) and `interplab zoo generate` (verified random programs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from interplab.cli._common import check_output_path, json_file_option, to_stdout, write_json


def register(app: typer.Typer) -> None:
    zoo_app = typer.Typer(invoke_without_command=True, add_completion=False, rich_markup_mode=None)
    zoo_app.callback()(zoo_list)
    zoo_app.command("generate")(generate)
    zoo_app.command("train")(train)
    app.add_typer(zoo_app, name="zoo")


def zoo_list(
    ctx: typer.Context,
    json_out: Path | None = json_file_option("Write the organisms as JSON"),
) -> None:
    """List the built-in model organisms (`interplab zoo generate` makes hundreds more).

    Every family registers into one registry (interplab.zoo.registry): compiled RASP programs,
    trained circuits, SIIT twins, tabular rules, trojans and data-attribution organisms.
    Generated programs are not listed but resolve by name, e.g. `interplab sites generated-0-17`.
    The JSON rows carry each organism's family module, tags, the kind of truth it carries
    (circuit, planted, units, retraining) and `verified`: true or false as recorded when this
    cache last loaded it at seed 0 through `interplab.organism` (false: refused, or a control
    with no truth), "not yet built" when it never has. The shipped SIIT twins
    (`siit-generated-*`, built by `interplab zoo train`) say what their verification found when
    they were trained, until this cache loads them; a twin that failed is listed with its
    numbers and `verified: false`. Load any of them in Python with
    `interplab.organism(name, seed=0)`: the model, its task data and its truth, verified in the
    weights before it is returned. Listing builds nothing and imports no torch.
    """
    if ctx.invoked_subcommand is not None:
        return
    check_output_path(json_out, "--json")
    from interplab.zoo.loader import NOT_BUILT, truth_kind, verification
    from interplab.zoo.registry import entry, names
    from interplab.zoo.twin_shipped import shipped_manifest, shipped_rows

    shipped = shipped_rows()
    rows = []
    for n in names():
        e = entry(n)
        verified = verification(n)
        if verified == NOT_BUILT and n in shipped:  # verified when it was trained and shipped
            verified = bool(shipped[n].get("verified"))
        rows.append(
            {
                "name": n,
                "kind": e.kind,
                "description": e.description,
                "family": e.family.rsplit(".", 1)[-1],
                "tags": sorted(e.tags),
                "truth": "none" if "controls" in e.tags else truth_kind(e.family),
                "verified": verified,
            }
        )
    if json_out is not None:
        write_json(json_out, rows)
        if to_stdout(json_out):
            return
    for row in rows:
        typer.echo(f"{row['name']:<28} {row['kind']:<12} {row['description']}")
    m = shipped_manifest()
    if m.get("attempted"):
        typer.echo(
            f"\nSIIT twins shipped: {m['verified']} of {m['attempted']} attempted verified "
            f"({100 * m['share_verified']:.0f}%); the failed ones are listed with their numbers."
        )


def generate(
    count: int = typer.Option(200, "--count", "-n", min=1, help="How many organisms."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Generator seed: organism i of seed s is always the same program."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write them to."),
    json_out: Path | None = json_file_option("Write the index as JSON"),
) -> None:
    """Generate COUNT random RASP programs, compile them and check each against the evaluator.

    Each program is drawn from a grammar over maps, sequence maps, selects with every comparison,
    categorical and numerical aggregates and selector widths (depth ≤ 4, ≤ 6 operations); it is
    kept only if it compiles, the compiled model agrees with the RASP evaluator on every input
    (or ≥ 2,000 sampled), its output depends on the input, and no kept program behaves the same.
    Writes OUT/generated-<seed>-<i>/ (model.safetensors + model.json with the ground truth) and
    OUT/index.json (shape, constructs, agreement and inputs checked per organism). The same
    names are the `zoo` bench suite's organisms (`interplab bench --suite zoo`).

    Example: interplab zoo generate --count 200 --seed 0 --out runs/zoo200
    """
    from rich.progress import Progress

    from interplab.zoo.generated import write_generated

    check_output_path(json_out, "--json")
    with Progress(disable=to_stdout(json_out)) as bar:
        task = bar.add_task("generating", total=count)
        index = write_generated(out, count, seed, progress=lambda n: bar.update(task, completed=n))
    if json_out is not None:
        write_json(json_out, index)
        if to_stdout(json_out):
            return
    for row in index["organisms"]:
        typer.echo(
            f"{row['name']:<22} depth {row['depth']} width {row['width']} ops {row['n_ops']} "
            f"vocab {len(row['vocab'])} len {row['max_len']}  agreement {row['agreement']:.1f} "
            f"on {row['inputs_checked']} inputs  {','.join(row['constructs'])}"
        )
    typer.echo(
        f"{index['count']} organisms in {index['seconds']} s (rejected: "
        f"{json.dumps(index['rejected'])}); index: {out / 'index.json'}"
    )


def train(
    family: str = typer.Option(
        "siit-generated", "--family", help="Which trained family (only siit-generated so far)."
    ),
    count: int = typer.Option(
        200, "--count", "-n", min=1, help="How many twins to attempt (the first COUNT eligible)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Generator seed of the programs."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the twins and manifest."),
    jobs: int = typer.Option(
        2, "--jobs", "-j", min=1, help="Worker processes (one thread each) without --cluster."
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="'local' (a Dask LocalCluster of --jobs workers) or a scheduler address "
        "tcp://HOST:PORT; needs interplab[dask].",
    ),
    shard: str | None = typer.Option(
        None, "--shard", help="i/N: train only the i-th of N parts (by position in the list)."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Do not copy verified twins into the zoo cache."
    ),
    json_out: Path | None = json_file_option("Write the manifest as JSON"),
) -> None:
    """Train SIIT twins of generated programs, verify each on held-out inputs, record every one.

    The twins attempted are the first COUNT generated programs of --seed that the twin rule
    admits (depth ≤ 2, ≤ 2 layers, no component computing two variables, ≥ 200 inputs); the
    rule is decided before training and never by which twins verify. Each twin is trained from
    random init with strict interchange-intervention training (1,000 steps, one core) on 80% of
    its inputs and verified on pairs whose base input it never saw: every aligned variable's
    interchange accuracy and the task accuracy must reach 0.95. A twin that fails is recorded
    with its numbers, never dropped.

    As each twin finishes, OUT/<name>/ gets its weights (safetensors, with the SHA-256 in the
    sidecar) and ground truth, OUT/records/<name>.json its record, and OUT/manifest.json every
    record so far with the share verified; a verified twin is also copied into the zoo cache,
    where `interplab.organism(name)` finds it. Run it again to resume: a twin with a record is
    never retrained. With --cluster, a worker that dies loses only the twin it was training
    (the scheduler gives it to another worker).

    Examples:
      interplab zoo train --count 200 --out runs/twins --jobs 2
      interplab zoo train --count 200 --out runs/twins --cluster local --jobs 4
      interplab zoo train --count 200 --out runs/twins --cluster tcp://10.0.0.5:8786 --shard 1/2
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from interplab.bench.spec import parse_shard
    from interplab.errors import UnknownNameError
    from interplab.zoo.twin_zoo import done, planned_names, process_pool, train_zoo

    if family != "siit-generated":
        raise UnknownNameError(
            f"unknown trained family {family!r}; the one `zoo train` builds is siit-generated"
        )
    check_output_path(json_out, "--json")
    part = parse_shard(shard) if shard else None
    if cluster is not None:
        from interplab.bench.dask_runner import check_cluster

        check_cluster(cluster)
    quiet = to_stdout(json_out)
    if not quiet:
        typer.echo(f"choosing the first {count} eligible programs of seed {seed} ...", err=True)
    names = planned_names(out, seed, count)
    if part is not None:
        names = names[part[0] - 1 :: part[1]]
    left = [n for n in names if n not in done(out)]
    close = None
    submit: Any = None
    if cluster is not None and left:
        from interplab.bench.dask_runner import calls_submitter

        submit, close = calls_submitter(cluster, jobs)
    else:
        submit = process_pool(jobs) if jobs > 1 and len(left) > 1 else None
    counts = {"verified": 0, "failed": 0}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), disable=quiet) as bar:
            task = bar.add_task("twins", total=len(names), completed=len(names) - len(left))

            def progress(row: dict) -> None:
                counts["verified" if row["verified"] else "failed"] += 1
                bar.update(
                    task,
                    advance=1,
                    description=f"twins ({counts['verified']} verified, {counts['failed']} failed)",
                )

            manifest = train_zoo(
                names, out, seed=0, submit=submit, progress=progress, to_cache=not no_cache
            )
    finally:
        if close is not None:
            close()
    if json_out is not None:
        write_json(json_out, manifest)
        if to_stdout(json_out):
            return
    typer.echo(
        f"{manifest['verified']} of {manifest['attempted']} attempted twins verified "
        f"({100 * (manifest['share_verified'] or 0):.0f}%); manifest: {out / 'manifest.json'}"
    )
