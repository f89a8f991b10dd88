"""``interplab compile``: compile a library RASP program into transformer weights + ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from interplab.cli._common import check_output_path, json_file_option, to_stdout, write_json
from interplab.errors import ConfigError

HELP = """Compile a RASP program from the library into a transformer whose ground truth ships with it.

\b
  interplab compile --list                 the programs
  interplab compile reverse --out DIR      write weights + ground truth
  interplab compile sort --check --json -  compare with the RASP evaluator
  interplab compile frac_prevs --causal    a decoder (attention masked to earlier positions)
  interplab compile reverse --vocab a,b,c,d --max-len 8     another vocabulary / length

--causal compiles a decoder; programs whose selects can look forward (length, reverse, sort, ...) are rejected with a message naming them. The library's causal variants are also listed as causal-<name>.

--vocab takes comma-separated tokens: integers when every token is one (--vocab 0,1,2), else strings. A program that needs something of its vocabulary (frac_prevs counts 'x', sort adds numbers) says what is missing.

--check runs the compiled model on every input of the declared vocabulary and lengths (a seeded sample of 10,000 where there are more) and compares each output position with the RASP evaluator (numerical outputs within 1e-4).

--json PATH writes (--json - prints on stdout, as one line) the results: program, inputs_checked, agreement, layers, heads, d_model, params and compile_seconds (inputs_checked 0 and agreement null without --check).

The sidecar model.json holds (under "extra.compiled"), for every RASP variable, the site that computes it and its residual subspace, and the true circuit with the ablations (zero, mean, resample) under which each edge matters. Load it with interplab.compile.load_compiled(DIR).
"""


def register(app: typer.Typer) -> None:
    """Add the ``compile`` command to ``app``."""
    app.command(name="compile", help=HELP)(compile_command)


def compile_command(
    program: str | None = typer.Argument(None, help="Library program name (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the library programs and exit."),
    out: Path | None = typer.Option(None, "--out", help="Directory to write weights + sidecar."),
    check: bool = typer.Option(False, "--check", help="Compare with the reference evaluator."),
    json_out: Path | None = json_file_option(
        "Write the results (or, with --list, the programs) as JSON"
    ),
    limit: int = typer.Option(10_000, "--limit", help="Inputs to check when there are more."),
    show_truth: bool = typer.Option(
        False, "--show-truth", help="Print where each variable lives and the true circuit."
    ),
    causal: bool = typer.Option(
        False, "--causal", help="Compile a decoder: attention masked to earlier positions."
    ),
    vocab: str | None = typer.Option(
        None, "--vocab", help="Comma-separated tokens (integers if all are)."
    ),
    max_len: int | None = typer.Option(None, "--max-len", help="Longest input."),
) -> None:
    from interplab.compile.programs import LIBRARY, get_program

    check_output_path(json_out, "--json")
    if list_:
        if json_out is not None:
            write_json(
                json_out,
                [
                    {
                        "program": s.name,
                        "vocab": list(s.vocab),
                        "max_len": s.max_len,
                        "description": s.description,
                    }
                    for s in LIBRARY.values()
                ],
            )
            if to_stdout(json_out):
                return
        width = max(len(n) for n in LIBRARY)
        for spec in LIBRARY.values():
            vocab = " ".join(map(str, spec.vocab))
            typer.echo(
                f"{spec.name:<{width}}  max_len={spec.max_len}  vocab={{{vocab}}}  "
                f"{spec.description}"
            )
        return
    if program is None:
        raise ConfigError(
            "name a program to compile (e.g. `interplab compile reverse`), or pass "
            "--list to see them"
        )
    spec = get_program(program)
    if causal or vocab is not None or max_len is not None:
        spec = spec.with_options(
            vocab=None if vocab is None else parse_vocab(vocab),
            max_len=max_len,
            causal=True if causal else None,
        )
    pairs = spec.task_pairs(64, seed=0)
    start = time.perf_counter()
    model = spec.compile(pairs=pairs)
    seconds = time.perf_counter() - start
    result = {
        "program": spec.name,
        "inputs_checked": 0,
        "agreement": None,
        "layers": model.cfg.n_layers,
        "heads": model.cfg.n_heads,
        "d_model": model.cfg.d_model,
        "params": model.n_params,
        "compile_seconds": round(seconds, 4),
    }
    if check:
        from interplab.compile.agreement import check_agreement

        report = check_agreement(model, model.program, spec.inputs(limit=limit, seed=0))
        result["inputs_checked"], result["agreement"] = report.inputs_checked, report.agreement
    if out is not None:
        from interplab.compile.compiled import save_compiled

        save_compiled(out, model)
    if json_out is not None:
        write_json(json_out, result)
        if to_stdout(json_out):
            return
    typer.echo(
        f"{spec.name}: {result['layers']} layers, {result['heads']} heads/layer, "
        f"d_model={result['d_model']}, {result['params']} params, compiled in "
        f"{seconds:.3f} s"
    )
    if check:
        typer.echo(
            f"  checked {result['inputs_checked']} inputs: agreement {result['agreement']:.4f}"
        )
    circuit = model.ground_truth.circuit
    counts = ", ".join(f"{a} {len(circuit.for_ablation(a))}" for a in ("zero", "mean", "resample"))
    typer.echo(
        f"  ground truth: {len(model.ground_truth.variables)} variables; circuit edges "
        f"that matter under {counts}"
    )
    if show_truth:
        _show_truth(model)
    if out is not None:
        typer.echo(f"  wrote {out}/model.safetensors and {out}/model.json")


def parse_vocab(text: str) -> list:
    """``"a,b,c"`` -> ["a", "b", "c"]; ``"0,1,2"`` -> [0, 1, 2] (integers when all tokens are)."""
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip() or any(t == "" for t in tokens):
        raise ConfigError(
            f"--vocab {text!r} has an empty token; pass comma-separated tokens, "
            "e.g. --vocab a,b,c or --vocab 0,1,2"
        )
    try:
        return [int(t) for t in tokens]
    except ValueError:
        return tokens


def _show_truth(model) -> None:
    truth = model.ground_truth
    typer.echo("  variables (label: computed at -> readable from, residual dims):")
    for var in truth.variables.values():
        where = ", ".join(str(s) for s in var.sites)
        typer.echo(
            f"    {var.label}: {where} -> {var.resid_site}, {len(var.dims)} dims "
            f"[{var.encoding}, {var.construction}]"
        )
    typer.echo("  circuit edges (ablations under which each matters):")
    for edge in truth.circuit:
        flags = sorted(truth.circuit.edge_ablations.get(edge, ("zero", "mean", "resample")))
        typer.echo(f"    {edge}  {'/'.join(flags)}")
