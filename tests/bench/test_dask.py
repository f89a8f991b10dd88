"""The bench on Dask: a real scheduler and workers on 127.0.0.1 (one killed mid-run), a
LocalCluster, and the errors a wrong address gives."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interplab.bench.runner import run_bench
from interplab.bench.spec import parse_spec
from interplab.cli.main import app
from interplab.errors import ConfigError
from tests.bench import sleep_track
from tests.dask_cluster import dask_cluster, free_port

pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sleep(monkeypatch):
    from interplab.bench import tracks

    monkeypatch.setitem(tracks.TRACK_MODULES, "sleep", "tests.bench.sleep_track")
    monkeypatch.setenv("SLEEP_TRACK_SECONDS", "0.15")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _rows(out: Path) -> list:
    data = json.loads((out / "results.json").read_text())
    return sorted(
        (r["organism"], r["method"], r["ablation"], r["metric"], r["value"]) for r in data["rows"]
    )


@pytest.mark.parametrize("cluster", ["nonsense", "http://127.0.0.1:80", "tcp://"])
def test_a_malformed_cluster_is_a_config_error(sleep, tmp_path, cluster):
    with pytest.raises(ConfigError, match="--cluster"):
        run_bench(parse_spec(sleep_track.spec_text(1)), tmp_path, progress=False, cluster=cluster)


def test_an_unreachable_scheduler_fails_within_seconds(sleep, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--spec",
            str(_spec_file(tmp_path, 1)),
            "--cluster",
            address,
            "--out",
            str(tmp_path / "out"),
            "--no-report",
        ],
    )
    assert result.exit_code == 2 and "cannot reach the Dask scheduler" in result.output
    assert time.monotonic() - start < 60, "a dead address must not hang the bench"


def _spec_file(tmp_path: Path, organisms: int) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(sleep_track.spec_text(organisms))
    return path


@pytest.mark.slow
def test_local_cluster_gives_the_serial_results(sleep, tmp_path):
    spec = parse_spec(sleep_track.spec_text(4))
    run_bench(spec, tmp_path / "serial", progress=False)
    summary = run_bench(spec, tmp_path / "dask", progress=False, cluster="local", jobs=2)
    assert summary.done == len(spec.jobs()) and summary.failed == 0
    assert _rows(tmp_path / "dask") == _rows(tmp_path / "serial")


@pytest.mark.slow
def test_real_scheduler_survives_a_killed_worker(sleep, tmp_path):
    """`dask scheduler` + two `dask worker` processes; one worker is killed after the first
    results arrive; every job is recorded exactly once and the rows equal the serial run's."""
    spec = parse_spec(sleep_track.spec_text(12))
    run_bench(spec, tmp_path / "serial", progress=False)
    with dask_cluster(2) as (address, procs):
        recorded: list[str] = []
        victim = procs[1]

        def on_done(job) -> None:
            recorded.append(job.key)
            if len(recorded) == 1:
                os.killpg(victim.pid, signal.SIGKILL)

        summary = run_bench(
            spec, tmp_path / "dask", progress=False, cluster=address, on_done=on_done
        )
        assert victim.wait(timeout=10) is not None
        assert sorted(recorded) == sorted(j.key for j in spec.jobs()), (
            "a job was lost or recorded twice"
        )
        assert summary.done == len(spec.jobs()) and summary.failed == 0
        assert _rows(tmp_path / "dask") == _rows(tmp_path / "serial")
