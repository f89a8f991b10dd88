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
from collections import (
    Counter,
)  # the standard library's (Python >= 3.11, as pyproject.toml requires)
from dataclasses import dataclass, field
from pathlib import Path

from interplab.bench.tracks import TRACKS, Job, Track, suite_tracks
from interplab.errors import SpecError, unknown_name

#: The built-in suites. A track contributes to a suite only if it names it (the zoo track has
#: only "zoo"); a registered track may add a suite of its own (:func:`suite_names`).
SUITES = ("quick", "full", "zoo")


def suite_names() -> tuple[str, ...]:
    """:data:`SUITES` and any other suite a registered track names."""
    from interplab.bench.tracks import registered

    extra = [s for t in registered().values() for s in t.suites if s not in SUITES]
    return SUITES + tuple(dict.fromkeys(extra))


@dataclass(frozen=True)
class TrackSpec:
    track: str
    organisms: tuple[str, ...]
    methods: tuple[str, ...]
    ablations: tuple[str | None, ...]


@dataclass(frozen=True)
class BenchSpec:
    """What to run. ``shard`` = (i, n): only the i-th of n deterministic parts (see :meth:`jobs`)."""

    name: str
    tracks: tuple[TrackSpec, ...]
    seed: int = 0
    shard: tuple[int, int] | None = None
    #: remarks on the spec that are not errors (e.g. a name listed twice, run once)
    notes: tuple[str, ...] = field(default=(), compare=False)

    def all_jobs(self) -> list[Job]:
        """Every job of the spec, ignoring ``shard``. A track whose methods depend on the
        organism (:meth:`Track.applies`, e.g. a utility task's arms, or an oracle that exists
        only for linear models) keeps only the pairs that apply, and a track whose truth is
        refused for some (organism, ablation) (:meth:`Track.refused`, e.g. a circuit truth that
        disagrees with the weights) leaves those out;
        :meth:`left_out` lists the others with the reason."""
        return [j for j, why in self._expanded() if why is None]

    def left_out(self) -> list[tuple[Job, str]]:
        """The jobs the spec names but does not expand, each with why (:meth:`Track.why_not`,
        :meth:`Track.refused`). Never sharded: every shard lists them all."""
        return [(j, why) for j, why in self._expanded() if why is not None]

    def _expanded(self) -> list[tuple[Job, str | None]]:
        """Every (job, why not) once: a job named twice (a repeated entry) expands once."""
        out: dict[str, tuple[Job, str | None]] = {}
        for t in self.tracks:
            track = TRACKS[t.track]
            for o in dict.fromkeys(t.organisms):
                for m in dict.fromkeys(t.methods):
                    why = track.why_not(o, m)
                    for a in dict.fromkeys(t.ablations):
                        job = Job(t.track, o, m, a, self.seed)
                        if job.key not in out:
                            out[job.key] = (job, why or track.refused(o, a))
        return list(out.values())

    def jobs(self) -> list[Job]:
        """The jobs to run: all of them, or this shard's. Shards split by organism — the
        (track, organism) groups in order of first appearance are dealt round-robin — so a
        shard loads each organism it needs and no other shard loads it; every job is in
        exactly one shard."""
        jobs = self.all_jobs()
        if self.shard is None:
            return jobs
        i, n = self.shard
        groups: dict[tuple[str, str], int] = {}
        for j in jobs:
            groups.setdefault((j.track, j.organism), len(groups))
        return [j for j in jobs if groups[(j.track, j.organism)] % n == i - 1]

    def fingerprint(self) -> str:
        """Identifies the whole (unsharded) spec: a hash of its job keys. Stores written by
        shards of one spec share it, and ``interplab bench merge`` requires that they do."""
        import hashlib

        keys = "\n".join(sorted(j.key for j in self.all_jobs()))
        return hashlib.sha256(keys.encode()).hexdigest()[:16]

    def sharded(self, shard: str | tuple[int, int] | None) -> BenchSpec:
        """This spec restricted to ``shard`` ("i/N" or (i, N), 1 <= i <= N); None: unchanged."""
        import dataclasses

        if shard is None:
            return self
        return dataclasses.replace(self, shard=parse_shard(shard))


def parse_shard(shard: str | tuple[int, int]) -> tuple[int, int]:
    """ "i/N" (1 <= i <= N) -> (i, N); a clear SpecError otherwise."""
    text = shard if isinstance(shard, str) else f"{shard[0]}/{shard[1]}"
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise SpecError(f"--shard must read i/N (e.g. 1/4: the first of 4 parts), got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise SpecError(
            f"--shard {text}: need 1 <= i <= N (parts are numbered 1..N), got "
            f"i={i}, N={n}" + (f"; the last part of {n} is {n}/{n}" if n >= 1 else "")
        )
    return i, n


def suite(name: str, seed: int = 0) -> BenchSpec:
    """A built-in suite: the union of each track's suite of that name."""
    if name not in suite_names():
        raise unknown_name("suite", name, suite_names())
    tracks = []
    for track_name in suite_tracks():
        for part in TRACKS[track_name].suite(name):
            tracks.append(
                TrackSpec(
                    track_name,
                    tuple(part["organisms"]),
                    tuple(part["methods"]),
                    tuple(part.get("ablations", (None,))),
                )
            )
    return BenchSpec(name, tuple(tracks), seed)


def load_spec(name_or_path: str, seed: int | None = None) -> BenchSpec:
    """A suite name or the path of a TOML spec file. ``seed`` (when given) overrides the
    file's ``seed``; a suite's seed defaults to 0."""
    path = Path(name_or_path)
    if name_or_path in suite_names():
        return suite(name_or_path, 0 if seed is None else _check_seed(seed, "seed"))
    if not path.suffix == ".toml" and not path.exists():
        raise unknown_name("suite", name_or_path, suite_names() + ("<path/to/spec.toml>",))
    if not path.is_file():
        raise SpecError(
            f"spec file {path} does not exist (or is not a file); pass a suite name "
            f"({', '.join(suite_names())}) or the path of a TOML spec file"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path} ({exc})") from None
    return parse_spec(text, str(path), seed)


def _check_seed(seed: object, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise SpecError(f"{where}: seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    return seed


class _Lines:
    """Line numbers of sections, keys and values in a TOML text, for error messages. A key is
    looked up inside its own section, so a key that repeats across sections (``organisms`` in
    [circuits] and in [features]) points to the right line."""

    _HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]")
    _KEY = re.compile(r"^\s*[\"']?([A-Za-z0-9_-]+)[\"']?\s*=")

    def __init__(self, text: str, source: str):
        self.source = source
        self.lines = text.splitlines()
        # section name -> (first line index, end index); None is the top-level table
        self.sections: dict[str | None, tuple[int, int]] = {}
        name: str | None = None
        begin = 0
        for i, line in enumerate(self.lines):
            m = self._HEADER.match(line)
            if m and not line.lstrip().startswith("[["):
                self.sections.setdefault(name, (begin, i))
                name, begin = m.group(1).strip("\"' "), i
        self.sections.setdefault(name, (begin, len(self.lines)))

    def _at(self, index: int | None) -> str:
        return self.source if index is None else f"{self.source}:{index + 1}"

    def section(self, section: str | None) -> str:
        span = self.sections.get(section)
        return self._at(span[0] if span is not None and section is not None else None)

    def _key_index(self, section: str | None, key: str) -> int | None:
        begin, end = self.sections.get(section, (0, 0))
        for i in range(begin, end):
            m = self._KEY.match(self.lines[i])
            if m and m.group(1) == key:
                return i
        return None

    def key(self, section: str | None, key: str) -> str:
        index = self._key_index(section, key)
        return self._at(index) if index is not None else self.section(section)

    def value(self, section: str | None, key: str, value: object) -> str:
        """The line of ``value`` in the (possibly multi-line) value of ``key``."""
        first = self._key_index(section, key)
        if first is None:
            return self.section(section)
        end = self.sections[section][1]
        needle = (
            re.compile(rf"[\"']{re.escape(value)}[\"']")
            if isinstance(value, str)
            else re.compile(rf"\b{re.escape(str(value))}\b")
        )
        for i in range(first, end):
            if i > first and self._KEY.match(self.lines[i]):
                break  # the next key: the value was not found on a line of its own
            if needle.search(self.lines[i].split("=", 1)[1] if i == first else self.lines[i]):
                return self._at(i)
        return self._at(first)


#: at most this many unknown names (each with its line) and valid names are listed in an error
SHOWN = 5
VALID_SHOWN = 30


def _listing(names: list[str] | tuple, shown: int = VALID_SHOWN) -> str:
    """Names joined with commas; a long list is cut after ``shown`` with the count."""
    names = [str(n) for n in names]
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f", ... ({len(names)} in all)"


def _check_applies(track: Track, values: dict[str, tuple], at: _Lines, problems: list[str]) -> None:
    """A problem for each listed method that applies to none of the listed organisms."""
    for m in values["methods"]:
        if not any(track.applies(o, m) for o in values["organisms"]):
            listed = [f"{o}: {', '.join(track.methods_of(o))}" for o in values["organisms"]]
            problems.append(
                f"{at.value(track.name, 'methods', m)}: {m!r} applies to none of "
                f"the organisms listed in [{track.name}] ("
                + "; ".join(listed[:SHOWN])
                + (f"; ... {len(listed)} organisms in all" if len(listed) > SHOWN else "")
                + ")"
            )


def parse_spec(text: str, source: str = "<spec>", seed: int | None = None) -> BenchSpec:
    """Parse a TOML spec; every problem is reported at once, each with its line. ``seed``
    (when given) overrides the file's ``seed``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    problems: list[str] = []
    notes: list[str] = []
    at = _Lines(text, source)

    file_seed = data.pop("seed", 0)
    try:
        file_seed = _check_seed(file_seed, at.key(None, "seed"))
    except SpecError as exc:
        problems.append(str(exc))
        file_seed = 0
    tracks = []
    for track_name, body in data.items():
        if not isinstance(body, dict):
            if track_name in TRACKS:
                problems.append(
                    f"{at.key(None, track_name)}: {track_name} must be a section "
                    f"[{track_name}] with organisms, methods and ablations"
                )
            else:
                problems.append(
                    f"{at.key(None, track_name)}: unknown top-level key {track_name!r}; "
                    f"the only one is seed, the rest are sections "
                    f"({', '.join(f'[{t}]' for t in TRACKS)})"
                )
            continue
        if track_name not in TRACKS:
            problems.append(
                f"{at.section(track_name)}: unknown section [{track_name}]; "
                f"sections are {', '.join(TRACKS)}"
            )
            continue
        track = TRACKS[track_name]
        valid = {
            "organisms": track.organism_names(),
            "methods": track.method_names(),
            "ablations": track.ablations,
        }
        values: dict[str, tuple] = {}
        for key in sorted(set(body) - set(valid)):
            problems.append(
                f"{at.key(track_name, key)}: unknown key {key!r} in [{track_name}]; "
                f"keys are organisms, methods, ablations"
            )
        for key, allowed in valid.items():
            given = body.get(key)
            if given is None:
                if key == "ablations":
                    values[key] = tuple(a for a in allowed)
                    continue
                problems.append(
                    f"{at.section(track_name)}: [{track_name}] needs {key} = [...]; valid: "
                    f"{', '.join(str(a) for a in allowed)}"
                )
                continue
            if not isinstance(given, list) or not given:
                problems.append(
                    f"{at.key(track_name, key)}: {key} must be a non-empty list, "
                    f'e.g. {key} = ["{allowed[0]}"]'
                )
                continue
            known = set(allowed)
            unknown = [i for i in given if not _hashable(i) or i not in known]
            # lines are looked up only for the few unknown names shown: linear in the spec
            for item in unknown[:SHOWN]:
                problems.append(
                    f"{at.value(track_name, key, item)}: unknown {key[:-1]} {item!r} in "
                    f"[{track_name}]; valid: {_listing(allowed)}"
                )
            if len(unknown) > SHOWN:
                problems.append(
                    f"{at.key(track_name, key)}: ... and {len(unknown) - SHOWN} more unknown "
                    f"{key} in [{track_name}] ({len(unknown)} in all)"
                )
            if unknown:
                continue
            unique = tuple(dict.fromkeys(given))
            if len(unique) < len(given):
                repeated = [i for i, n in Counter(given).items() if n > 1]
                notes.append(
                    f"{at.key(track_name, key)}: {_listing([repr(i) for i in repeated], SHOWN)} listed more than "
                    f"once in [{track_name}] {key}; each runs once"
                )
            values[key] = unique
        if len(values) == 3:
            _check_applies(track, values, at, problems)
            tracks.append(
                TrackSpec(track_name, values["organisms"], values["methods"], values["ablations"])
            )
    if problems:
        raise SpecError("invalid bench spec:\n  " + "\n  ".join(problems))
    if not tracks:
        raise SpecError(f"{source}: the spec names no track; add a section such as [circuits]")
    if seed is not None:
        _check_seed(seed, "--seed")
    return BenchSpec(
        Path(source).stem, tuple(tracks), file_seed if seed is None else seed, notes=tuple(notes)
    )


def _hashable(item: object) -> bool:
    try:
        hash(item)
    except TypeError:
        return False
    return True
