import json
import sqlite3

import pytest

from interplab.bench import tracks
from interplab.bench.runner import run_bench
from interplab.bench.spec import parse_spec
from interplab.bench.store import ResultsStore
from interplab.errors import ResultsStoreError, SpecError

SPEC = """
seed = 1
[fake]
organisms = ["org-a", "org-b"]
methods = ["good", "bad", "boom"]
ablations = ["zero", "resample"]
"""


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(tracks.TRACK_MODULES, "fake", "tests.bench.fake_track")
    log = tmp_path / "ran.log"
    monkeypatch.setenv("FAKE_TRACK_LOG", str(log))
    return log


def _ran(log):
    return log.read_text().splitlines() if log.exists() else []


def test_runs_every_job_and_writes_results_json(fake, tmp_path):
    spec = parse_spec(SPEC)
    summary = run_bench(spec, tmp_path / "out", progress=False)
    assert summary.total == 12 and summary.done == 8 and summary.failed == 4
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["version"] == 1
    assert len(data["rows"]) == 16
    row = data["rows"][0]
    assert set(row) == {"organism", "method", "ablation", "metric", "value", "seconds"}
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
    assert all("boom" in k for k in _ran(fake)[3 + len(second):])


def test_corrupt_database_is_reported_not_overwritten(tmp_path):
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ResultsStoreError, match="left untouched"):
        ResultsStore(db)
    assert db.read_bytes().startswith(b"this is not sqlite")


def test_foreign_sqlite_database_is_rejected(tmp_path):
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE other (x)")
    con.commit()
    con.close()
    with pytest.raises(ResultsStoreError, match="no interplab meta table"):
        ResultsStore(db)


def test_spec_errors_point_to_lines(fake):
    bad = '[fake]\norganisms = ["org-a"]\nmethods = ["good", "nope"]\ncolour = 3\n'
    with pytest.raises(SpecError) as info:
        parse_spec(bad, "my.toml")
    msg = str(info.value)
    assert "my.toml:3: unknown method 'nope'" in msg
    assert "my.toml:4: unknown key 'colour'" in msg
    assert "valid: good, bad, boom" in msg


def test_spec_syntax_error(fake):
    with pytest.raises(SpecError, match="not valid TOML.*line 2"):
        parse_spec("[fake]\norganisms = [\"a\" \"b\"]\n", "x.toml")


def test_unknown_section(fake):
    with pytest.raises(SpecError, match="x.toml:1: unknown section \\[circuitz\\]"):
        parse_spec('[circuitz]\norganisms = ["a"]\n', "x.toml")
