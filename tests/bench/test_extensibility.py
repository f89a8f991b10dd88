"""Adding a method and a track touches no list elsewhere: a toy method family registered in the
method registry and a toy track registered with ``register_track`` show up in ``interplab bench
--list``, run, store their rows, and get a report section and a ranking by the direction the
track declares. Everything is unregistered afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re

import pytest
from typer.testing import CliRunner

from interplab.bench.store import ResultsStore
from interplab.bench.track import Job, JobOutput, Metric, Row, Track
from interplab.bench.tracks import TRACKS, register_track, unregister_track
from interplab.cli.main import app
from interplab.methods import registry

FAMILY = "toy"
ORGANISMS = ("toy-a", "toy-b")
#: each toy method's error on each organism (lower is better)
ERRORS = {
    "exact": {"toy-a": 0.1, "toy-b": 0.2},
    "rough": {"toy-a": 0.4, "toy-b": 0.5},
    "random": {"toy-a": 0.8, "toy-b": 0.9},
}


def _toy_method(name: str):
    def fn(organism: str, *, seed: int = 0) -> float:
        """A toy method: a fixed error per organism."""
        return ERRORS[name][organism]

    return fn


def toy_score(job: Job) -> JobOutput:
    """Score one toy job: run the registered method and report its error."""
    return JobOutput([Row("toy_error", registry.run(FAMILY, job.method, job.organism))])


def toy_section(store) -> str:
    jobs = [j for j in store.jobs() if j.track == "toy"]
    return f"<h2 id='toy'>Toy track</h2><p>{len(jobs)} toy jobs</p>" if jobs else ""


TOY = Track(
    name="toy",
    families=(FAMILY,),
    organisms=ORGANISMS,
    suites={"toy": [{"organisms": list(ORGANISMS), "methods": list(ERRORS)}]},
    score=toy_score,
    metrics=(Metric("toy_error", better="lower", headline=True),),
    section=toy_section,
)


@contextlib.contextmanager
def _toys():
    """The toy methods and track, registered for the block and unregistered after it."""
    for name in ERRORS:
        kind = "baseline" if name == "random" else "method"
        registry.register(FAMILY, name, kind=kind, cost_unit="none", metric="toy_error")(
            _toy_method(name)
        )
    register_track(TOY)
    try:
        yield TOY
    finally:
        unregister_track("toy")
        for name in ERRORS:
            registry.unregister(FAMILY, name)


@pytest.fixture
def toy():
    with _toys() as track:
        yield track


def test_a_toy_method_and_track_are_listed_run_stored_and_ranked(toy, tmp_path):
    assert toy.method_names() == ("exact", "random", "rough")  # from the registry, sorted
    assert toy.baselines() == {"random"}  # the registry's kind, no list in the track

    listed = CliRunner().invoke(app, ["bench", "--suite", "toy", "--list"])
    assert listed.exit_code == 0, listed.output
    keys = [line for line in listed.stdout.splitlines() if line.startswith("toy/")]
    assert sorted(keys) == sorted(
        f"toy/{o}/{m}/-/seed0" for o in ORGANISMS for m in ("exact", "rough", "random")
    )

    out = tmp_path / "run"
    ran = CliRunner().invoke(app, ["bench", "--suite", "toy", "--jobs", "1", "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    got = {(r["organism"], r["method"]): r["value"] for r in rows if r["metric"] == "toy_error"}
    assert got == {(o, m): v for m, per in ERRORS.items() for o, v in per.items()}

    page = (out / "report.html").read_text()
    assert "<h2 id='toy'>Toy track</h2><p>6 toy jobs</p>" in page
    table = re.search(r"data-metric='toy_error'>(.*?)</table>", page, re.S)[1]
    best = re.findall(r"<td class='best'>([^<]*)</td>", table)
    assert best == ["0.100", "0.200"]  # the lowest error of the methods, per organism
    assert "<span class='tag'>baseline</span>" in table  # random: shown apart, never best

    from interplab.report.summary import track_summary

    with ResultsStore(out / "results.sqlite") as store:
        card = track_summary(store)["toy"]
    assert card["metric"] == "toy_error"
    assert card["methods"]["exact"]["rank"].startswith("1")
    assert card["methods"]["rough"]["rank"].startswith("2")
    assert card["methods"]["random"]["kind"] == "baseline"
    assert card["methods"]["exact"]["verdict"].startswith("beats random")


def test_the_declared_direction_decides_the_ranking(toy, tmp_path):
    CliRunner().invoke(app, ["bench", "--suite", "toy", "--jobs", "1", "--out", str(tmp_path)])
    from interplab.report.summary import track_summary

    register_track(dataclasses.replace(toy, metrics=(Metric("toy_error", headline=True),)))
    with ResultsStore(tmp_path / "results.sqlite") as store:
        card = track_summary(store)["toy"]
    assert card["methods"]["rough"]["rank"].startswith("1")  # now higher is better
    assert card["methods"]["exact"]["verdict"].startswith("loses to random")


def test_unregistering_leaves_no_trace():
    with _toys():
        assert "toy" in TRACKS and "toy" in registry.families()
    assert "toy" not in TRACKS
    assert FAMILY not in registry.families()
