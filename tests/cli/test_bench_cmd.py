"""`interplab bench` / `interplab report` through the real command group (exit codes, seeds,
Ctrl-C), on the fake track."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from interplab.bench import runner
from interplab.cli.main import app
from tests.bench import fake_track


@pytest.fixture
def fake(monkeypatch, tmp_path):
    fake_track.register(monkeypatch, tmp_path / "ran.log")


def _spec(tmp_path, methods, seed=None, organisms=("org-a", "org-b")):
    path = tmp_path / "spec.toml"
    head = f"seed = {seed}\n" if seed is not None else ""
    path.write_text(
        head + f"[fake]\norganisms = {json.dumps(list(organisms))}\n"
        f'methods = {json.dumps(methods)}\nablations = ["zero"]\n'
    )
    return str(path)


def _bench(*args):
    return CliRunner().invoke(app, ["bench", *args])


def _one_line_error(result, code):
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    return result.stderr


@pytest.mark.slow  # several bench runs: the full suite (CI) runs it
def test_seed_from_the_spec_file_and_the_override(fake, tmp_path):
    spec = _spec(tmp_path, ["good"], seed=5)
    res = _bench("--spec", spec, "--out", str(tmp_path / "a"), "--json", "-", "--no-report")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["seed"] == 5
    rows = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    assert {r["seed"] for r in rows} == {5}
    res = _bench(
        "--spec", spec, "--seed", "2", "--out", str(tmp_path / "b"), "--json", "-", "--no-report"
    )
    assert res.exit_code == 0, res.output
    assert {
        r["seed"] for r in json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    } == {2}


def test_help_documents_seed_override_and_threads():
    out = CliRunner().invoke(app, ["bench", "--help"]).stdout
    text = " ".join(out.replace("│", " ").split())  # undo the help panel's wrapping
    assert "overrides the spec file's `seed`" in text
    assert "--threads-per-job" in text and "at most one per CPU core" in text


def test_out_that_is_a_file_is_a_usage_error(fake, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    err = _one_line_error(_bench("--spec", _spec(tmp_path, ["good"]), "--out", str(taken)), 2)
    assert "is an existing file; pass a directory" in err and err.count("\n") == 1


def test_usage_errors_exit_2(fake, tmp_path, monkeypatch):
    assert "Did you mean 'quick'" in _one_line_error(_bench("--suite", "quik", "--list"), 2)
    bad = tmp_path / "bad.toml"
    bad.write_text('[fake]\norganisms = ["org-a"]\nmethods = ["nope"]\n')
    assert f"{bad}:3: unknown method 'nope'" in _one_line_error(
        _bench("--spec", str(bad), "--list"), 2
    )
    monkeypatch.setattr(runner, "available_cores", lambda: 2)
    err = _one_line_error(
        _bench("--spec", _spec(tmp_path, ["good"]), "--jobs", "3", "--out", str(tmp_path / "o")), 2
    )
    assert "--jobs 3 is more than the 2 CPU cores" in err
    assert _bench("--jobs", "0").exit_code == 2  # click's own range check
    assert "is not a directory" in _one_line_error(CliRunner().invoke(app, ["report", str(bad)]), 2)


def test_runtime_failure_exits_1(tmp_path):
    (tmp_path / "results.sqlite").write_bytes(b"not a database" * 100)
    err = _one_line_error(CliRunner().invoke(app, ["report", str(tmp_path)]), 1)
    assert "left untouched" in err


def test_ctrl_c_says_how_to_resume_and_keeps_results(fake, tmp_path):
    out = tmp_path / "out"
    res = _bench(
        "--spec", _spec(tmp_path, ["good", "interrupt", "bad"]), "--out", str(out), "--jobs", "1"
    )
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == (
        f"interrupted after 1 of 6 jobs; results so far are in "
        f"{out / 'results.sqlite'} — rerun the same command to resume"
    )
    assert [r["method"] for r in json.loads((out / "results.json").read_text())["rows"]] == [
        "good",
        "good",
    ]
    with sqlite3.connect(out / "results.sqlite") as con:
        assert con.execute("SELECT key, status FROM jobs").fetchall() == [
            ("fake/org-a/good/zero/seed0", "done")
        ]


def test_nan_metric_reaches_report_as_a_dash_with_the_reason(fake, tmp_path):
    out = tmp_path / "out"
    res = _bench("--spec", _spec(tmp_path, ["nan", "good"]), "--out", str(out), "--json", "-")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["done"] == 4 and summary["failed"] == 0
    html = (out / "report.html").read_text()
    assert "<td class='missing' title='not a number'>—</td>" in html
    assert "<td class='missing' title='empty circuit'>—</td>" in html
    assert "nan</td>" not in html.lower()


def test_outputs_are_shared_per_the_umask(fake, tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        res = _bench(
            "--spec", _spec(tmp_path, ["good"]), "--out", str(tmp_path / "out"), "--json", "-"
        )
    finally:
        os.umask(previous)
    assert res.exit_code == 0, res.output
    for name in ("results.json", "report.html"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name
