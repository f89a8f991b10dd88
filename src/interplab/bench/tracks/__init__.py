"""Benchmark tracks, by name: :data:`TRACKS` (name -> :class:`~interplab.bench.track.Track`).

Each track module defines one ``TRACK = Track(...)`` (:mod:`interplab.bench.track`). Modules are
imported lazily, on the first lookup of their name, so listing and spec checking stay cheap.
A track defined elsewhere (a test's toy track, a plugin) is added with :func:`register_track`;
the specs, the runner, the Dask runner, merging and the report read tracks only through here.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping

from interplab.bench.track import Job, JobOutput, Metric, Row, Track
from interplab.errors import ConfigError, unknown_name

#: track name -> module defining its ``TRACK`` (imported on first use; tests may add entries).
TRACK_MODULES: dict[str, str] = {
    "circuits": "interplab.bench.tracks.circuits",
    "features": "interplab.bench.tracks.features",
    "causal": "interplab.bench.tracks.causal",
    "zoo": "interplab.bench.tracks.zoo",
    "failures": "interplab.bench.tracks.failures",
    "data_attribution": "interplab.bench.tracks.data_attribution",
    "rationales": "interplab.bench.tracks.rationales",
    "utility": "interplab.bench.tracks.utility",
    "variables_real": "interplab.bench.tracks.variables_real",
    "copyright": "interplab.bench.tracks.copyright",
}
#: the tracks the built-in suites draw from (plus any added with :func:`register_track`)
BUILTIN: tuple[str, ...] = tuple(TRACK_MODULES)

_REGISTERED: dict[str, Track] = {}


class _Tracks(Mapping[str, Track]):
    """name -> Track: registered objects first, then :data:`TRACK_MODULES` (imported lazily)."""

    def __getitem__(self, name: str) -> Track:
        if name in _REGISTERED:
            return _REGISTERED[name]
        if name not in TRACK_MODULES:
            raise unknown_name("track", name, list(self))
        module = importlib.import_module(TRACK_MODULES[name])
        track = getattr(module, "TRACK", None)
        if not isinstance(track, Track):
            raise ConfigError(f"track module {module.__name__} defines no TRACK = Track(...)")
        # one module may serve under a second name (tests do): the name is the key
        return track if track.name == name else dataclasses.replace(track, name=name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*TRACK_MODULES, *_REGISTERED]))

    def __len__(self) -> int:
        return len(set(TRACK_MODULES) | set(_REGISTERED))


#: every track by name (see the module docstring)
TRACKS: Mapping[str, Track] = _Tracks()


def get_track(name: str) -> Track:
    """The track called ``name``; an unknown name lists the known ones."""
    return TRACKS[name]


def register_track(track: Track) -> Track:
    """Add ``track`` (it then joins the built-in suites it names); returns it."""
    if not isinstance(track, Track):
        raise ConfigError(f"register_track needs a Track, got {type(track).__name__}")
    _REGISTERED[track.name] = track
    return track


def unregister_track(name: str) -> None:
    """Remove a track added with :func:`register_track` (for tests)."""
    _REGISTERED.pop(name, None)


def registered() -> dict[str, Track]:
    """The tracks added with :func:`register_track` (sent to worker processes)."""
    return dict(_REGISTERED)


def suite_tracks() -> list[str]:
    """The tracks built-in suites draw from: :data:`BUILTIN` and the registered ones."""
    return list(dict.fromkeys([*BUILTIN, *_REGISTERED]))


def restore(modules: dict[str, str], tracks: dict[str, Track]) -> None:
    """Worker setup: the parent's track modules and registered tracks."""
    TRACK_MODULES.update(modules)
    _REGISTERED.update(tracks)


__all__ = [
    "BUILTIN",
    "TRACKS",
    "TRACK_MODULES",
    "Job",
    "JobOutput",
    "Metric",
    "Row",
    "Track",
    "get_track",
    "register_track",
    "registered",
    "restore",
    "suite_tracks",
    "unregister_track",
]
