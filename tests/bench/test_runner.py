import json
import sqlite3

import pytest
import torch

from interplab.bench import runner
from interplab.bench.runner import BenchInterrupted, run_bench
from interplab.bench.spec import parse_spec
from interplab.errors import ConfigError
from tests.bench import fake_track

SPEC = """
seed = 1
[fake]
organisms = ["org-a", "org-b"]
methods = ["good", "bad", "boom"]
ablations = ["zero", "resample"]
"""


@pytest.fixture
def fake(monkeypatch, tmp_path):
    log = tmp_path / "ran.log"
    fake_track.register(monkeypatch, log)
    return log


def _ran(log):
    return log.read_text().splitlines() if log.exists() else []


def _spec(methods, organisms=("org-a", "org-b"), ablations=("zero",)):
    return parse_spec(
        f"[fake]\norganisms = {json.dumps(list(organisms))}\n"
        f"methods = {json.dumps(list(methods))}\nablations = {json.dumps(list(ablations))}\n"
    )


def _jobs(out):
    with sqlite3.connect(out / "results.sqlite") as con:
        return dict(con.execute("SELECT key, status FROM jobs"))


def test_runs_every_job_and_writes_results_json(fake, tmp_path):
    spec = parse_spec(SPEC)
    summary = run_bench(spec, tmp_path / "out", progress=False)
    assert summary.total == 12 and summary.done == 8 and summary.failed == 4
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["version"] == 2
    assert len(data["rows"]) == 16
    row = data["rows"][0]
    assert set(row) == {"organism", "method", "ablation", "seed", "metric", "value", "seconds"}
    assert {r["seed"] for r in data["rows"]} == {1}, "the spec's seed is stored on every row"
    assert {r["ablation"] for r in data["rows"]} == {"zero", "resample"}
    assert len(data["failures"]) == 4 and "always fails" in data["failures"][0]["error"]


def test_interrupted_run_resumes_without_redoing_finished_jobs(fake, tmp_path):
    spec = parse_spec(SPEC)
    finished = []

    def stop_after_three(job):
        finished.append(job.key)
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, tmp_path / "out", progress=False, on_done=stop_after_three)
    first = _ran(fake)
    assert len(first) == 3
    summary = run_bench(spec, tmp_path / "out", progress=False)
    second = _ran(fake)[3:]
    done_first = [k for k in first if "boom" not in k]
    assert not set(done_first) & set(second), "finished jobs were recomputed"
    assert summary.skipped == len(done_first)
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["rows"]) == 16
    # A third run has nothing left but the failing jobs, which are retried.
    run_bench(spec, tmp_path / "out", progress=False)
    assert all("boom" in k for k in _ran(fake)[3 + len(second) :])


def test_nan_metric_is_stored_as_null_with_a_reason_and_later_jobs_run(fake, tmp_path):
    out = tmp_path / "out"
    summary = run_bench(_spec(["nan", "good"]), out, progress=False)
    assert summary.done == 4 and summary.failed == 0
    assert set(_jobs(out).values()) == {"done"}
    rows = json.loads((out / "results.json").read_text())["rows"]
    by = {(r["organism"], r["method"], r["metric"]): r for r in rows}
    nan = by[("org-a", "nan", "edge_auroc")]
    assert nan["value"] is None and nan["reason"] == "not a number"
    inf = by[("org-b", "nan", "cpr")]
    assert inf["value"] is None and inf["reason"] == "empty circuit"
    assert (
        by[("org-a", "nan", "cmd")]["value"] == 0.5 and "reason" not in by[("org-a", "nan", "cmd")]
    )
    assert by[("org-b", "good", "edge_auroc")]["value"] == 0.9
    # The rerun finds every job done instead of crashing on the same row.
    again = run_bench(_spec(["nan", "good"]), out, progress=False)
    assert again.skipped == 4 and again.done == 0


def test_an_error_while_recording_becomes_that_jobs_failure(fake, tmp_path):
    out = tmp_path / "out"
    summary = run_bench(_spec(["unrecordable", "good"]), out, progress=False)
    assert summary.failed == 2 and summary.done == 2
    key, error = summary.failures[0]
    assert "unrecordable" in key and "value must be a number or None, got str 'high'" in error
    assert _jobs(out)[key] == "failed"
    assert {r["method"] for r in json.loads((out / "results.json").read_text())["rows"]} == {"good"}


def test_ctrl_c_inside_a_job_keeps_finished_jobs_and_writes_results(fake, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(BenchInterrupted) as info:
        run_bench(_spec(["good", "interrupt", "bad"]), out, progress=False)
    assert (info.value.finished, info.value.total) == (1, 6)
    assert _jobs(out) == {"fake/org-a/good/zero/seed0": "done"}, "the job in flight is not recorded"
    data = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in data["rows"]} == {"good"}


def test_sequential_jobs_use_one_thread_and_the_callers_count_is_restored(fake, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run_bench(_spec(["threads"], organisms=["org-a"]), tmp_path / "one", progress=False)
        assert torch.get_num_threads() == 3
        run_bench(
            _spec(["threads"], organisms=["org-a"]),
            tmp_path / "two",
            threads_per_job=2,
            progress=False,
        )
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    one = json.loads((tmp_path / "one" / "results.json").read_text())["rows"]
    two = json.loads((tmp_path / "two" / "results.json").read_text())["rows"]
    assert [r["value"] for r in one] == [1.0] and [r["value"] for r in two] == [2.0]


def test_more_jobs_than_cores_is_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "available_cores", lambda: 2)
    with pytest.raises(
        ConfigError, match="--jobs 3 is more than the 2 CPU cores.*--jobs 2 or fewer"
    ):
        run_bench(_spec(["good"]), tmp_path / "out", jobs=3, progress=False)
    with pytest.raises(ConfigError, match="--threads-per-job must be at least 1"):
        run_bench(_spec(["good"]), tmp_path / "out", threads_per_job=0, progress=False)
    assert not (tmp_path / "out").exists(), "nothing is created before the options are checked"


def test_out_dir_that_is_a_file(fake, tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    with pytest.raises(ConfigError, match="is an existing file; pass a directory"):
        run_bench(_spec(["good"]), target, progress=False)
    assert target.read_text() == "mine"


@pytest.mark.slow
def test_parallel_workers_know_runtime_tracks_and_pin_threads(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "available_cores", lambda: 2)
    spec = _spec(["threads", "good", "nan", "boom"])
    summary = run_bench(spec, tmp_path / "out", jobs=2, progress=False)
    assert summary.done == 6 and summary.failed == 2
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert {r["value"] for r in rows if r["metric"] == "threads"} == {1.0}
