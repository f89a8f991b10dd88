"""--shard i/N splits a spec deterministically; `bench merge` combines the shards' stores."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from interplab.bench.merge import merge_stores
from interplab.bench.runner import run_bench
from interplab.bench.spec import parse_shard, parse_spec
from interplab.cli.main import app
from interplab.errors import ConfigError, SpecError
from tests.bench import sleep_track


@pytest.fixture
def sleep(monkeypatch):
    from interplab.bench import tracks

    monkeypatch.setitem(tracks.TRACK_MODULES, "sleep", "tests.bench.sleep_track")
    monkeypatch.setenv("SLEEP_TRACK_SECONDS", "0")


def _rows(out):
    data = json.loads((out / "results.json").read_text())
    return sorted(
        (r["organism"], r["method"], r["ablation"], r["metric"], r["value"]) for r in data["rows"]
    )


def test_shards_partition_the_jobs_by_organism(sleep):
    spec = parse_spec(sleep_track.spec_text())
    parts = [spec.sharded(f"{i}/5").jobs() for i in range(1, 6)]
    keys = [j.key for p in parts for j in p]
    assert sorted(keys) == sorted(j.key for j in spec.jobs()) and len(set(keys)) == len(keys)
    owners = {}
    for i, part in enumerate(parts):
        for j in part:
            assert owners.setdefault(j.organism, i) == i, "an organism is split across shards"
    assert spec.sharded("2/5").jobs() == parts[1]  # deterministic
    assert all(spec.sharded(f"{i}/5").fingerprint() == spec.fingerprint() for i in range(1, 6))


@pytest.mark.parametrize("text", ["3/2", "0/2", "1/0", "a/b", "2", "-1/3"])
def test_bad_shards_are_clear_errors(text):
    with pytest.raises(SpecError, match="--shard"):
        parse_shard(text)


def test_merged_shards_equal_one_serial_run(sleep, tmp_path):
    spec = parse_spec(sleep_track.spec_text(5))
    run_bench(spec, tmp_path / "serial", progress=False)
    for i in (1, 2, 3):
        run_bench(spec.sharded(f"{i}/3"), tmp_path / f"part{i}", progress=False)
    summary = merge_stores(tmp_path / "merged", [tmp_path / f"part{i}" for i in (1, 2, 3)])
    assert summary.jobs == len(spec.jobs()) == summary.done
    assert _rows(tmp_path / "merged") == _rows(tmp_path / "serial")
    with sqlite3.connect(tmp_path / "merged" / "results.sqlite") as con:
        assert con.execute("SELECT count(*) FROM artifacts").fetchone()[0] == len(spec.jobs())


def test_merge_refuses_stores_of_different_specs(sleep, tmp_path):
    run_bench(parse_spec(sleep_track.spec_text(2)), tmp_path / "a", progress=False)
    run_bench(parse_spec(sleep_track.spec_text(3)), tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="different specs"):
        merge_stores(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "m" / "results.sqlite").exists()
    result = CliRunner().invoke(
        app, ["bench", "merge", str(tmp_path / "m"), str(tmp_path / "a"), str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "different specs" in result.output
    with pytest.raises(ConfigError, match="no results store"):
        merge_stores(tmp_path / "m", [tmp_path / "nowhere"])


@pytest.mark.slow  # a minute on 2 cores: the full suite (CI) runs it
def test_cli_shard_and_merge(sleep, tmp_path):
    runner = CliRunner()
    spec = tmp_path / "s.toml"
    spec.write_text(sleep_track.spec_text(4))
    bad = runner.invoke(
        app, ["bench", "--spec", str(spec), "--shard", "3/2", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "1 <= i <= N" in bad.output
    for i in (1, 2):
        r = runner.invoke(
            app,
            [
                "bench",
                "--spec",
                str(spec),
                "--shard",
                f"{i}/2",
                "--no-report",
                "--json",
                "-",
                "--out",
                str(tmp_path / f"p{i}"),
            ],
        )
        assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "bench",
            "merge",
            str(tmp_path / "all"),
            str(tmp_path / "p1"),
            str(tmp_path / "p2"),
            "--json",
            "-",
            "--no-report",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["done"] == 24
