"""What a benchmark track is: a :class:`Track` object, the :class:`Job`\\ s it expands to, and
the typed :class:`Row`\\ s a job returns.

A track module defines one ``TRACK = Track(...)``::

    TRACK = Track(
        name="circuits",
        families=("circuits",),                 # method families of the registry
        organisms=ORGANISMS,                    # names (or organism_tag: a zoo registry tag)
        methods=METHODS,                        # registry names of those families (None: all)
        ablations=("zero", "mean", "resample"),
        suites=SUITES,                          # {"quick": [{"organisms", "methods", ...}], ...}
        score=run_job,                          # Job -> JobOutput
        metrics=(Metric("edge_auroc", headline=True), Metric("cmd", better="lower"), ...),
        section="interplab.report.circuits:section",   # store -> HTML, resolved by the report
    )

Which methods are baselines, oracles or methods is read from the method registry
(:func:`interplab.methods.registry.kind_of`), never listed here. A track whose methods depend
on the organism passes ``why_not`` (or ``methods_of``); one whose truth is refused for some
(organism, ablation) passes ``refused``. The bench (specs, runner, merge, Dask) and the report
read tracks only through :data:`interplab.bench.tracks.TRACKS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from interplab.errors import ConfigError

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Job:
    """One unit of benchmark work; ``key`` identifies it in the results store."""

    track: str
    organism: str
    method: str
    ablation: str | None
    seed: int = 0

    @property
    def key(self) -> str:
        return f"{self.track}/{self.organism}/{self.method}/{self.ablation or '-'}/seed{self.seed}"


@dataclass(frozen=True)
class Row:
    """One result row, as the store writes it.

    A track fills ``metric``, ``value`` and (where the value is missing) ``reason``; the runner
    fills the job's fields (:meth:`for_job`). A track sets ``method``, ``ablation`` or
    ``seconds`` only where a row differs from its job: a part of the method (``probe:<var>``),
    the mean-ablation reference of a score (``ablation="mean"``), the method's own time.
    ``value`` None (or not finite) needs a ``reason`` (the store adds one for NaN/inf).
    """

    metric: str
    value: float | None
    reason: str | None = None
    seconds: float | None = None
    method: str | None = None
    ablation: str | None = None
    organism: str | None = None
    seed: int | None = None

    def for_job(self, job: Job, seconds: float) -> Row:
        """This row with the job's fields filled where the track left them out."""
        return dataclasses.replace(
            self,
            organism=self.organism or job.organism,
            method=self.method or job.method,
            ablation=self.ablation if self.ablation is not None else job.ablation,
            seed=job.seed if self.seed is None else self.seed,
            seconds=seconds if self.seconds is None else self.seconds,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str) -> Any:
        """``row["metric"]``: read a field as in the stored dicts (a KeyError for no field)."""
        if key not in _ROW_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    @classmethod
    def of(cls, row: Row | Mapping[str, Any]) -> Row:
        """A Row from a Row or a dict with Row's keys (anything else is an error)."""
        if isinstance(row, Row):
            return row
        unknown = set(row) - _ROW_FIELDS
        if unknown or "metric" not in row:
            raise ConfigError(
                f"a result row needs 'metric' and 'value' and has only Row's fields "
                f"({', '.join(f.name for f in dataclasses.fields(cls))}); got {sorted(row)}"
            )
        return cls(**{"value": None, **row})


_ROW_FIELDS = frozenset(f.name for f in dataclasses.fields(Row))


@dataclass(init=False)
class JobOutput:
    """What a job returns: result rows (:class:`Row`; dicts with Row's keys are converted) and
    JSON artifacts for the report (curves, circuits)."""

    rows: list[Row]
    artifacts: dict[str, Any]

    def __init__(
        self, rows: Iterable[Row | Mapping[str, Any]], artifacts: dict[str, Any] | None = None
    ) -> None:
        self.rows = [Row.of(r) for r in rows]
        self.artifacts = {} if artifacts is None else artifacts


@dataclass(frozen=True)
class Metric:
    """A metric a track reports. ``better``: which way is better (None: a setting the method
    chose, shown and never judged). ``headline``: a candidate for the track's one-screen
    summary (the first one a run reports wins). ``bookkeeping``: cost and counts, listed last."""

    name: str
    better: Better | None = "higher"
    headline: bool = False
    bookkeeping: bool = False

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower", None):
            raise ConfigError(f"metric {self.name}: better must be 'higher', 'lower' or None")


@dataclass(frozen=True, kw_only=True)
class Track:
    """A benchmark track (see the module docstring).

    Attributes:
        name: the track's name (a spec's section, the first part of a job key).
        families: the method-registry families its methods come from.
        score: runs one job: ``score(job) -> JobOutput``.
        organisms: the organisms it knows; or ``organism_tag``: a zoo-registry tag.
        methods: the registry names it runs (None: every name of ``families``).
        ablations: ablation types its jobs take (``(None,)``: not applicable).
        suites: suite name -> blocks ``{"organisms", "methods", "ablations"?}`` (or one block).
        metrics: its metrics, headline first (direction and order for the report).
        section: its report section, ``store -> HTML``: a callable or ``"module:function"``
            (a report-layer function, imported by the report only).
        self_checks: methods that check the scorer (right by construction): shown as
            ``self-check``, never the bar a method must clear.
        leaderboard: whether its rows go to the report's per-organism leaderboard.
        summary_card: its own card in the report's summary (``store -> HTML``, a callable or
            ``"module:function"``), for a track the generic card cannot rank (else None).
        why_not: ``(organism, method) -> reason or None``: why a job does not apply.
        methods_of: ``organism -> methods`` that apply (used when ``why_not`` is not given).
        refused: ``(organism, ablation) -> reason or None``: a truth refused by its check.
    """

    name: str
    families: tuple[str, ...]
    score: Callable[[Job], JobOutput]
    organisms: tuple[str, ...] = ()
    organism_tag: str | None = None
    methods: tuple[str, ...] | None = None
    ablations: tuple[str | None, ...] = (None,)
    suites: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    section: Callable[[Any], str] | str | None = None
    self_checks: tuple[str, ...] = ()
    leaderboard: bool = True
    summary_card: Callable[[Any], str] | str | None = None
    why_not_fn: Callable[[str, str], str | None] | None = None
    methods_of_fn: Callable[[str], Sequence[str]] | None = None
    refused_fn: Callable[[str, str | None], str | None] | None = None

    # ----------------------------------------------------------------- names
    def organism_names(self) -> tuple[str, ...]:
        if self.organisms or self.organism_tag is None:
            return tuple(self.organisms)
        from interplab.zoo.registry import names

        return tuple(names(self.organism_tag))

    def method_names(self) -> tuple[str, ...]:
        if self.methods is not None:
            return tuple(self.methods)
        from interplab.methods import registry

        return tuple(dict.fromkeys(n for f in self.families for n in registry.names(f)))

    def kind(self, method: str) -> str:
        """``method`` / ``baseline`` / ``oracle`` / ``self-check`` for a method name (or a row's
        ``name:part``), read from the registry; a name it does not know is a method."""
        if method in self.self_checks:
            return "self-check"
        spec = self.spec(method)
        if spec is not None:
            return spec.kind
        return "oracle" if method.startswith("oracle:") else "method"

    def spec(self, method: str) -> Any:
        """The registry entry of ``method`` (or of ``method``'s part before ``:``), or None."""
        from interplab.methods import registry

        candidates = [method]
        if ":" in method and not method.startswith("oracle:"):
            candidates.append(method.split(":", 1)[0])
        for name in candidates:
            for family in self.families:
                if family in registry.families() and name in registry.names(family):
                    return registry.get(family, name)
        return None

    def baselines(self, methods: Iterable[str] | None = None) -> frozenset[str]:
        """Of ``methods`` (default: this track's), those that are not ranked: baselines,
        self-checks and oracles."""
        names = self.method_names() if methods is None else methods
        return frozenset(m for m in names if self.kind(m) != "method")

    # ----------------------------------------------------------------- applicability
    def why_not(self, organism: str, method: str) -> str | None:
        """Why (organism, method) is not a job of this track; None when it is."""
        if self.why_not_fn is not None:
            return self.why_not_fn(organism, method)
        if self.methods_of_fn is not None:
            allowed = tuple(self.methods_of_fn(organism))
            if method not in allowed:
                return (
                    f"{method} does not apply to {organism} (its methods: "
                    f"{', '.join(allowed) or 'none'})"
                )
        return None

    def applies(self, organism: str, method: str) -> bool:
        return self.why_not(organism, method) is None

    def methods_of(self, organism: str) -> tuple[str, ...]:
        """The methods that apply to ``organism``."""
        if self.methods_of_fn is not None and self.why_not_fn is None:
            return tuple(self.methods_of_fn(organism))
        return tuple(m for m in self.method_names() if self.applies(organism, m))

    def refused(self, organism: str, ablation: str | None) -> str | None:
        """Why (organism, ablation) is left out (its truth was refused), or None."""
        return None if self.refused_fn is None else self.refused_fn(organism, ablation)

    # ----------------------------------------------------------------- suites and metrics
    def suite(self, name: str) -> list[dict[str, Any]]:
        """The blocks of suite ``name`` (none when the track is not in it)."""
        parts = self.suites.get(name) or []
        return [dict(parts)] if isinstance(parts, Mapping) else [dict(p) for p in parts]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def headline(self, present: Iterable[str]) -> str | None:
        """The first headline metric among ``present`` (None if it reports none)."""
        have = set(present)
        return next((m.name for m in self.metrics if m.headline and m.name in have), None)

    def run(self, job: Job) -> JobOutput:
        """Score one job (the track's ``score``)."""
        return self.score(job)


#: the Track fields a track module declares as module-level names (see :func:`module_track`)
_MODULE_NAMES = {
    "organisms": "ORGANISMS",
    "methods": "METHODS",
    "ablations": "ABLATIONS",
    "suites": "SUITES",
    "score": "run_job",
}


def module_track(namespace: Mapping[str, Any], **fields: Any) -> Track:
    """The ``TRACK`` of a track module, which passes its ``globals()``: ``organisms``,
    ``methods``, ``ablations``, ``suites`` and ``score`` are the module's ``ORGANISMS``,
    ``METHODS``, ``ABLATIONS``, ``SUITES`` and ``run_job`` where it defines them, ``families``
    is ``(name,)``; ``fields`` (at least ``name``) give the rest and override these."""
    if "name" not in fields:
        raise ConfigError("module_track needs the track's name")
    found = {f: namespace[n] for f, n in _MODULE_NAMES.items() if n in namespace}
    return Track(**{"families": (fields["name"],), **found, **fields})
