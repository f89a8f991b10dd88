"""`interplab zoo` (list the organisms) and `interplab zoo generate` (verified random programs)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from interplab.cli._common import check_output_path, json_file_option, to_stdout, write_json


def register(app: typer.Typer) -> None:
    zoo_app = typer.Typer(invoke_without_command=True, add_completion=False, rich_markup_mode=None)
    zoo_app.callback()(zoo_list)
    zoo_app.command("generate")(generate)
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
    with no truth), "not yet built" when it never has. Load any of them in Python with
    `interplab.organism(name, seed=0)`: the model, its task data and its truth, verified in the
    weights before it is returned. Listing builds nothing and imports no torch.
    """
    if ctx.invoked_subcommand is not None:
        return
    check_output_path(json_out, "--json")
    from interplab.zoo.loader import truth_kind, verification
    from interplab.zoo.registry import entry, names

    rows = []
    for n in names():
        e = entry(n)
        rows.append(
            {
                "name": n,
                "kind": e.kind,
                "description": e.description,
                "family": e.family.rsplit(".", 1)[-1],
                "tags": sorted(e.tags),
                "truth": "none" if "controls" in e.tags else truth_kind(e.family),
                "verified": verification(n),
            }
        )
    if json_out is not None:
        write_json(json_out, rows)
        if to_stdout(json_out):
            return
    for row in rows:
        typer.echo(f"{row['name']:<28} {row['kind']:<12} {row['description']}")


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
