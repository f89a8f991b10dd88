"""Benchmark specs: which organisms × methods × ablations to run, per track.

A spec is a built-in suite name ("quick", "full") or a TOML file::

    seed = 0                      # optional
    [circuits]
    organisms = ["compiled-reverse", "compiled-frac_prevs"]
    methods = ["acdc", "eap"]
    ablations = ["zero", "resample"]
    [features]
    organisms = ["synthetic-features-64x128"]
    methods = ["sae-topk"]

Every problem in a file is reported with its line number.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from interplab.bench.tracks import TRACK_MODULES, Job, track
from interplab.errors import SpecError, unknown_name

SUITES = ("quick", "full")
#: Tracks that built-in suites draw from (tests may register others).
DEFAULT_TRACKS = ("circuits", "features", "causal")


@dataclass(frozen=True)
class TrackSpec:
    track: str
    organisms: tuple[str, ...]
    methods: tuple[str, ...]
    ablations: tuple[str | None, ...]


@dataclass(frozen=True)
class BenchSpec:
    name: str
    tracks: tuple[TrackSpec, ...]
    seed: int = 0

    def jobs(self) -> list[Job]:
        return [Job(t.track, o, m, a, self.seed)
                for t in self.tracks for o in t.organisms for m in t.methods for a in t.ablations]


def suite(name: str, seed: int = 0) -> BenchSpec:
    """A built-in suite: the union of each track's suite of that name."""
    if name not in SUITES:
        raise unknown_name("suite", name, SUITES)
    tracks = []
    for track_name in TRACK_MODULES:
        if track_name not in DEFAULT_TRACKS:
            continue
        parts = track(track_name).SUITES.get(name) or []
        for part in [parts] if isinstance(parts, dict) else parts:  # one block or several
            tracks.append(TrackSpec(track_name, tuple(part["organisms"]), tuple(part["methods"]),
                                    tuple(part.get("ablations", (None,)))))
    return BenchSpec(name, tuple(tracks), seed)


def load_spec(name_or_path: str, seed: int | None = None) -> BenchSpec:
    """A suite name or the path of a TOML spec file."""
    path = Path(name_or_path)
    if name_or_path in SUITES:
        return suite(name_or_path, seed or 0)
    if not path.suffix == ".toml" and not path.exists():
        raise unknown_name("suite", name_or_path, SUITES + ("<path/to/spec.toml>",))
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist")
    return parse_spec(path.read_text("utf-8"), str(path), seed)


def parse_spec(text: str, source: str = "<spec>", seed: int | None = None) -> BenchSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    problems: list[str] = []
    lines = text.splitlines()

    def where(key: str, value: object = None) -> str:
        needle = re.compile(rf"\b{re.escape(str(value if value is not None else key))}\b")
        for i, line in enumerate(lines, 1):
            if needle.search(line):
                return f"{source}:{i}"
        return source

    file_seed = data.pop("seed", 0)
    if not isinstance(file_seed, int):
        problems.append(f"{where('seed')}: seed must be an integer, got {file_seed!r}")
        file_seed = 0
    tracks = []
    for track_name, body in data.items():
        if track_name not in TRACK_MODULES:
            problems.append(f"{where(track_name)}: unknown section [{track_name}]; "
                            f"sections are {', '.join(TRACK_MODULES)}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{where(track_name)}: [{track_name}] must be a table")
            continue
        mod = track(track_name)
        valid = {"organisms": mod.ORGANISMS, "methods": mod.METHODS, "ablations": mod.ABLATIONS}
        values: dict[str, tuple] = {}
        for key in sorted(set(body) - set(valid)):
            problems.append(f"{where(key)}: unknown key {key!r} in [{track_name}]; "
                            f"keys are organisms, methods, ablations")
        for key, allowed in valid.items():
            given = body.get(key)
            if given is None:
                if key == "ablations":
                    values[key] = tuple(a for a in allowed)
                    continue
                problems.append(f"{source}: [{track_name}] needs {key} = [...]; valid: "
                                f"{', '.join(str(a) for a in allowed)}")
                continue
            if not isinstance(given, list) or not given:
                problems.append(f"{where(key)}: {key} must be a non-empty list")
                continue
            for item in given:
                if item not in allowed:
                    problems.append(f"{where(key, item)}: unknown {key[:-1]} {item!r} in "
                                    f"[{track_name}]; valid: {', '.join(str(a) for a in allowed)}")
            values[key] = tuple(given)
        if len(values) == 3:
            tracks.append(TrackSpec(track_name, values["organisms"], values["methods"], values["ablations"]))
    if problems:
        raise SpecError("invalid bench spec:\n  " + "\n  ".join(problems))
    if not tracks:
        raise SpecError(f"{source}: the spec names no track; add a section such as [circuits]")
    return BenchSpec(Path(source).stem, tuple(tracks), seed if seed is not None else file_seed)
