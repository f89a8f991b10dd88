"""Every built-in track is a ``Track`` whose method names are registry names of its families,
whose suites name only what it declares, and whose metrics agree with other tracks' on direction."""

from __future__ import annotations

import pytest

from interplab.bench.track import Job, JobOutput, Row, Track
from interplab.bench.tracks import BUILTIN, TRACKS
from interplab.errors import ConfigError
from interplab.methods import registry


@pytest.mark.parametrize("name", BUILTIN)
def test_a_tracks_methods_are_registry_names_of_its_families(name):
    track = TRACKS[name]
    assert isinstance(track, Track) and track.name == name
    registered = {n for f in track.families for n in registry.names(f)}
    assert set(track.method_names()) <= registered, set(track.method_names()) - registered
    for suite in track.suites:
        for block in track.suite(suite):
            assert set(block["methods"]) <= set(track.method_names()), (suite, block)
            assert set(block["organisms"]) <= set(track.organism_names()), (suite, block)
            assert set(block.get("ablations", (None,))) <= set(track.ablations), (suite, block)


def test_a_metric_has_one_direction_across_tracks():
    seen: dict[str, tuple[str, str | None]] = {}
    for name in BUILTIN:
        for m in TRACKS[name].metrics:
            first = seen.setdefault(m.name, (name, m.better))
            assert first[1] == m.better, (m.name, first, (name, m.better))


def test_kinds_come_from_the_registry():
    circuits, causal = TRACKS["circuits"], TRACKS["causal"]
    for m in circuits.method_names():
        assert circuits.kind(m) == registry.kind_of("circuits", m)
    assert causal.kind("ground_truth") == "self-check"  # a registry baseline the track labels
    assert registry.kind_of("causal", "ground_truth") == "baseline"
    assert causal.kind("probe:sum_prev") == "method"  # a row's part of a registered method


def test_rows_are_typed_and_the_runner_fills_the_job_once():
    job = Job("circuits", "org", "eap", "zero", 3)
    row = Row("edge_auroc", 0.5).for_job(job, 1.5)
    assert row.as_dict() == {
        "metric": "edge_auroc",
        "value": 0.5,
        "reason": None,
        "seconds": 1.5,
        "method": "eap",
        "ablation": "zero",
        "organism": "org",
        "seed": 3,
    }
    part = Row("kl_recovered", 0.2, method="replacement:x", ablation="mean", seconds=0.1)
    filled = part.for_job(job, 9.0)
    assert (filled.method, filled.ablation, filled.seconds) == ("replacement:x", "mean", 0.1)
    assert JobOutput([{"metric": "a", "value": 1.0}]).rows == [Row("a", 1.0)]
    with pytest.raises(ConfigError, match="Row's fields"):
        JobOutput([{"metric": "a", "value": 1.0, "organism_name": "x"}])
