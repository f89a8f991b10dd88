"""The ``interplab`` command: a thin typer shell over the library.

Errors are turned into exit codes in one place, :class:`_Commands`: an InterplabError prints
one ``error: ...`` line on stderr and exits with its ``exit_code`` (2 for usage errors: an
unknown name, a bad option value or spec file; 1 for runtime failures), as does an OSError
(exit 1). Click's own usage errors exit 2. Ctrl-C in ``bench`` exits 130.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from interplab.cli._common import check_output_path, json_file_option, to_stdout, write_json
from interplab.errors import InterplabError


class _Commands(TyperGroup):
    """The command group: maps InterplabError / OSError to one line on stderr and an exit code."""

    # ctx: the context TyperGroup.invoke takes (click's, or the click that typer ≥ 0.2x vendors)
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except InterplabError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Commands,
    name="interplab",
    help=(
        "Mechanistic interpretability whose explanations are checked against ground truth.\n\n"
        "Start with `interplab bench --out runs/quick` (scores circuit discovery, sparse "
        "dictionaries and causal explanations on the built-in zoo of organisms whose mechanism is "
        "known, and writes results.json + report.html), then "
        "`interplab report runs/quick` to re-render. `interplab sites MODEL` lists where you can "
        "read or intervene in a model."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from interplab import __version__

        typer.echo(f"interplab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool | None = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """interplab command-line interface."""


@app.command()
def sites(
    model: str = typer.Argument(..., help="A zoo model name (see `interplab zoo`)."),
    json_out: Path | None = json_file_option("Write the JSON list of site strings"),
) -> None:
    """List the typed sites of a zoo model: the addresses you can cache, patch or ablate.

    Site strings read [L<layer>.][H<head>.]<component>, e.g. L0.resid_pre or L1.H3.attn_z;
    per-head sites (add H<n>.) exist for every attn_* component.
    """
    from interplab import zoo
    from interplab.core.model import HookedModel

    check_output_path(json_out, "--json")
    organism = zoo.get(model)
    hooked = organism if isinstance(organism, HookedModel) else organism.model
    if not hasattr(hooked, "sites"):
        from interplab.errors import ConfigError

        if "tabular" not in zoo.registry.entry(model).tags:
            raise ConfigError(
                f"{model} is a small classifier, not a hooked model, and has no typed sites"
            )
        raise ConfigError(
            f"{model} is a decision model on tabular rows and has no typed sites; "
            f"explain its decisions with `interplab explain {model} --row N`"
        )
    names = [str(s) for s in hooked.sites]
    if json_out is not None:
        write_json(json_out, names)
        if to_stdout(json_out):
            return
    typer.echo(f"{hooked.name}: {len(names)} sites")
    for name in names:
        typer.echo(f"  {name}")


from interplab.cli import bench_cmd, compile_cmd, models_cmd, zoo_cmd  # noqa: E402

bench_cmd.register(app)
compile_cmd.register(app)
models_cmd.register(app)
from interplab.cli import circuit_cmd, sae_cmd, steer_cmd  # noqa: E402

circuit_cmd.register(app)
sae_cmd.register(app)
steer_cmd.register(app)
zoo_cmd.register(app)

from interplab.cli import explain_cmd  # noqa: E402

explain_cmd.register(app)

from interplab.cli import trace_data_cmd  # noqa: E402

trace_data_cmd.register(app)

from interplab.cli import failure_cmd  # noqa: E402

failure_cmd.register(app)


def run() -> None:
    """Console entry point (errors become exit codes in :class:`_Commands`)."""
    app()
