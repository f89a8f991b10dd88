"""How long `interplab zoo` takes, against importing torch; prints ONE JSON line.

    python benchmarks/zoo_listing.py [--repeats 5]

Each command runs in a fresh interpreter (a subprocess), as a user's shell runs it, round-robin
so that load on the machine hits every command alike; ``*_seconds`` are the medians of
``--repeats`` runs' wall time, ``*_cpu_seconds`` the medians of the child's user + system CPU
time (on a shared, busy machine the wall time runs ahead of the CPU time; on an idle one they
agree). Commands:

    listing          interplab zoo                 (the table)
    listing_json     interplab zoo --json -        (family, tags, truth and verified per row)
    help             interplab --help              (the CLI's own start-up: typer, its imports)
    import_torch     python -c "import torch"      (what listing must not pay)
    python           python -c pass                (the interpreter alone)

``ratio_to_import_torch`` is listing / import_torch (wall, same run). ``torch_imported``: whether
the listing's interpreter had imported torch when it finished (it must not have). The issue's
target: listing ≤ 0.5 s on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

_CLI = (
    "import sys; from interplab.cli.main import run; sys.argv = ['interplab', *sys.argv[1:]]; run()"
)
_TORCH_AFTER = (
    "import io, sys, contextlib\n"
    "from interplab.cli.main import app\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        app(['zoo', '--json', '-'], standalone_mode=False)\n"
    "    except SystemExit:\n"
    "        pass\n"
    "print('torch' in sys.modules)"
)

COMMANDS: dict[str, list[str]] = {
    "listing": [sys.executable, "-c", _CLI, "zoo"],
    "listing_json": [sys.executable, "-c", _CLI, "zoo", "--json", "-"],
    "help": [sys.executable, "-c", _CLI, "--help"],
    "import_torch": [sys.executable, "-c", "import torch"],
    "python": [sys.executable, "-c", "pass"],
}


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run of ``argv``; fails loudly if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[3:] or argv} failed: {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for argv in COMMANDS.values():  # warm the file cache once
        _run(argv)
    wall: dict[str, list[float]] = {k: [] for k in COMMANDS}
    cpu: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            w, c = _run(argv)
            wall[name].append(w)
            cpu[name].append(c)
    torch_after = subprocess.run(
        [sys.executable, "-c", _TORCH_AFTER], capture_output=True, text=True, check=True
    ).stdout.strip()
    out: dict[str, object] = {"benchmark": "zoo_listing", "repeats": args.repeats}
    for name in COMMANDS:
        out[f"{name}_seconds"] = round(statistics.median(wall[name]), 3)
        out[f"{name}_cpu_seconds"] = round(statistics.median(cpu[name]), 3)
    out["ratio_to_import_torch"] = round(
        statistics.median(wall["listing"]) / statistics.median(wall["import_torch"]), 3
    )
    out["torch_imported"] = torch_after == "True"
    out["target_seconds"] = 0.5
    out["machine"] = {
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
