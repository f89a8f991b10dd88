"""What every report section shares: the registered tracks' declarations read for the page
(which methods are baselines, which way a metric is better, the order metrics are shown in),
``collapsible`` and the store view without the tracks kept off the per-organism tables.

Sections import this module; it imports no section, so the page (:mod:`interplab.report.html`)
sits on top and nothing points back up to it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from interplab.bench.store import ResultsStore
from interplab.bench.track import Metric, Track
from interplab.bench.tracks import TRACKS
from interplab.errors import InterplabError

#: method names with this prefix are exact values (the truth formula): headroom, never ranked
ORACLE_PREFIX = "oracle:"


def is_oracle(method: str) -> bool:
    return method.startswith(ORACLE_PREFIX)


def track(name: str) -> Track | None:
    """The registered track ``name``, or None where this process does not know it."""
    try:
        return TRACKS[name]
    except (InterplabError, ImportError):
        return None


def tracks_in(store: Any) -> list[Track]:
    """The known tracks that have jobs in ``store``, in registration order."""
    present = {j.track for j in store.jobs()}
    return [t for t in (track(n) for n in TRACKS if n in present) if t is not None]


def kind(method: str, tracks_used: Iterable[str]) -> str:
    """``method`` / ``baseline`` / ``self-check`` / ``oracle`` as the tracks declare it (the
    method registry's kind; a track's self-checks); a name no track knows is a method (an
    ``oracle:`` name an oracle)."""
    for name in sorted(set(tracks_used)):
        t = track(name)
        if t is not None and (t.spec(method) is not None or method in t.self_checks):
            return t.kind(method)
    return "oracle" if is_oracle(method) else "method"


def baseline_methods(
    tracks_used: Iterable[str], methods: Iterable[str] | None = None
) -> frozenset[str]:
    """Of ``methods`` (default: every method of these tracks), the baselines, self-checks and
    oracles: shown apart and never ranked."""
    used = sorted(set(tracks_used))
    if methods is None:
        names: set[str] = set()
        for t in (track(n) for n in used):
            if t is not None:
                names |= set(t.method_names())
        methods = names
    return frozenset(m for m in methods if kind(m, used) != "method")


def metrics() -> dict[str, Metric]:
    """Every declared metric of the registered tracks, in track then declaration order (the
    first declaration of a name wins)."""
    out: dict[str, Metric] = {}
    for name in TRACKS:
        t = track(name)
        for m in t.metrics if t is not None else ():
            out.setdefault(m.name, m)
    return out


def lower_is_better(metric: str) -> bool:
    m = metrics().get(metric)
    return m is not None and m.better == "lower"


def unranked(metric: str) -> bool:
    """A setting a method chose (declared ``better=None``): shown, never judged."""
    m = metrics().get(metric)
    return m is not None and m.better is None


def metric_rank(metric: str) -> tuple[int, int, str]:
    """Sort key: the tracks' declared scores in their order, then undeclared metrics by name,
    then bookkeeping (cost, counts, chosen settings)."""
    declared = metrics()
    m = declared.get(metric)
    if m is None:
        return (1, 0, metric)
    if m.bookkeeping:
        return (2, 0, metric)
    return (0, list(declared).index(metric), metric)


def resolve(hook: Callable[..., str] | str | None) -> Callable[..., str] | None:
    """A track's report hook: a callable, or ``"module:function"`` imported here."""
    if hook is None or callable(hook):
        return hook
    module, _, name = hook.partition(":")
    return getattr(importlib.import_module(module), name)


def collapsible(title: str, html: str, open_: bool = False) -> str:
    """``html`` inside a <details> block (nothing when ``html`` is empty)."""
    if not html:
        return ""
    return f"<details{' open' if open_ else ''}><summary>{escape(title)}</summary>{html}</details>"


class StoreView:
    """A read-only view of a store without some tracks' jobs, rows and artifacts."""

    def __init__(self, store: ResultsStore, hidden_tracks: Iterable[str]):
        hide = set(hidden_tracks)
        self._store = store
        self._jobs = [j for j in store.jobs() if j.track not in hide]
        hidden_jobs = [j for j in store.jobs() if j.track in hide]
        self._hidden = {(j.organism, j.method, j.ablation, j.seed) for j in hidden_jobs}
        self._hidden_keys = {j.key for j in hidden_jobs}

    def jobs(self) -> list:
        return self._jobs

    def rows(self) -> list[dict]:
        return [
            r
            for r in self._store.rows()
            if (r["organism"], r["method"], r["ablation"], r["seed"]) not in self._hidden
        ]

    def artifacts(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self._store.artifacts(name).items() if k not in self._hidden_keys}


def detail(store: Any) -> Any:
    """``store`` without the tracks whose rows stay off the per-organism tables and figures
    (``Track.leaderboard`` False: the zoo's 200 organisms); ``store`` itself when it has none."""
    hidden = [t.name for t in tracks_in(store) if not t.leaderboard]
    return StoreView(store, hidden) if hidden else store
