"""Helpers that several CLI commands share: loading a language model, picking torch's
thread count and the options a named task needs from the model.

Commands import from here, never from one another, so ``cli/`` has no import circle.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from interplab.errors import ConfigError

LM_ONLY = "this command needs a language model: smollm2-135m"


def load_lm(name: str) -> Any:
    """Load the pretrained language model ``name``, saying on stderr how long it took.

    Raises ConfigError when ``name`` is not a language model, and says what to install
    when its dependencies are missing."""
    from interplab.models.pretrained.registry import get_spec, load, require

    if get_spec(name).kind != "language model":
        raise ConfigError(f"{name} is a {get_spec(name).kind}; {LM_ONLY}")
    require(name)  # one line saying what to install, before any progress output

    typer.echo(
        f"loading {name} (the first load converts the weights and caches them as "
        "safetensors; later loads read the cache) ...",
        err=True,
    )
    start = time.perf_counter()
    model = load(name)
    typer.echo(f"loaded {name} in {time.perf_counter() - start:.1f} s", err=True)
    return model


def default_threads() -> int:
    """torch threads for CPU work: the cores this process may use that are not already busy
    (by the 1-minute load average), between 1 and 4. More threads than free cores make torch
    many times slower on a busy machine (12x on a loaded 2-core machine in our test)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:  # pragma: no cover - no load average
        busy = 0
    return max(1, min(4, n - busy))


def threads_option() -> Any:
    """The ``--threads N`` option: None (the default) means :func:`default_threads`, resolved
    when the command runs (not when the CLI is imported, so --help shows no stale number)."""
    return typer.Option(
        None,
        "--threads",
        help="torch CPU threads (default: the usable cores not already busy, at most 4).",
        show_default=False,
    )


def set_threads(threads: int | None) -> int:
    """Apply ``--threads`` (None: :func:`default_threads`) to torch; a value below 1 is an
    error. Returns the thread count used."""
    import torch

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    n = default_threads() if threads is None else threads
    torch.set_num_threads(n)
    return n


def progress_option(help: str) -> Any:
    """The ``--progress/--no-progress`` option (on by default): progress on stderr."""
    return typer.Option(True, "--progress/--no-progress", help=help)


#: the ``--json`` value that means standard output
STDOUT = "-"


def json_file_option(help: str) -> Any:
    """The ``--json PATH`` option of a command that writes its result as JSON (None: not).

    Every command's ``--json`` takes a path; ``--json -`` prints the JSON on stdout instead
    (and the command's other output then goes to stderr, so stdout is JSON only)."""
    return typer.Option(
        None,
        "--json",
        metavar="PATH",
        help=f"{help.rstrip('.')} (PATH; '-' prints it on stdout).",
    )


def to_stdout(path: Path | str | None) -> bool:
    """True when ``--json`` asks for standard output (``-``)."""
    return path is not None and str(path) == STDOUT


def say(json_out: Path | str | None) -> Callable[[str], None]:
    """The command's echo for human-readable lines: stdout normally, stderr when ``--json -``
    has claimed stdout for the JSON."""
    err = to_stdout(json_out)
    return lambda text: typer.echo(text, err=err)


def check_output_path(path: Path | str | None, option: str) -> None:
    """Fail fast (before any work) with one line when ``path`` cannot be written: its parent
    directory is missing, is not a directory, or is not writable, or ``path`` is a directory
    or an existing read-only file. None and ``-`` (stdout) always pass."""
    if path is None or str(path) == STDOUT:
        return
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give a file path")
    parent = path.parent
    if not parent.exists():
        raise ConfigError(f"{option} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path} exists and is not writable")


def check_outputs(json_out: Path | str | None = None, html_out: Path | str | None = None) -> None:
    """:func:`check_output_path` for a command's ``--json`` and ``--html``."""
    check_output_path(json_out, "--json")
    check_output_path(html_out, "--html")


def write_json(
    path: Path | str | None,
    data: Any,
    *,
    indent: int | None = None,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """Write ``data`` as JSON where ``--json`` says: nothing for None, one document on stdout
    for ``-``, else the file, written atomically, and a ``wrote PATH`` line (on stdout)."""
    if path is None:
        return
    text = json.dumps(data, indent=indent, default=default)
    if to_stdout(path):
        typer.echo(text)
        return
    from interplab.models.io import atomic_write_text

    atomic_write_text(Path(path), text)
    typer.echo(f"wrote {path}")


def html_file_option(help: str) -> Any:
    """The ``--html PATH`` option of a command that writes an HTML page (None: not)."""
    return typer.Option(None, "--html", help=help)


def task_options(task: str, lm: Any) -> dict[str, Any]:
    """Options a named task needs from the model: induction draws tokens from the model's
    vocabulary and starts with a BOS token only where the model file asks for one."""
    options: dict[str, Any] = {}
    tok = getattr(lm, "tokenizer", None)
    if task == "induction":
        vocab = lm.cfg.d_vocab
        options["vocab"] = (min(1000, vocab // 4), min(20000, vocab))
        if tok is not None and getattr(tok, "add_bos", False) and tok.bos_id is not None:
            options["bos"] = tok.bos_id  # only where the model file asks for a start token
    elif task == "ioi" and tok is not None and getattr(tok, "eos_id", None) is not None:
        options["pad_id"] = tok.eos_id
    return options
