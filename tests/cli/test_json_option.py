"""One meaning of ``--json PATH`` everywhere (``-``: stdout), one writer, and output paths
checked before any work (cli/_common.py)."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from interplab.cli._common import check_output_path, write_json
from interplab.cli.main import app
from interplab.errors import ConfigError


def _file(path):
    path.write_text("")
    return path


def test_check_output_path_accepts_a_new_file_and_stdout(tmp_path):
    check_output_path(tmp_path / "new.json", "--json")
    check_output_path("-", "--json")
    check_output_path(None, "--json")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing" / "x.json", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: _file(d / "f") / "x.json", "is not a directory"),
    ],
)
def test_check_output_path_fails_with_one_line(tmp_path, make, message):
    with pytest.raises(ConfigError) as err:
        check_output_path(make(tmp_path), "--html")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("--html ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_path_unwritable_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="not writable"):
        check_output_path(ro / "x.json", "--json")


def test_write_json_file_is_complete_and_stdout_is_json_only(tmp_path, capsys):
    path = tmp_path / "out.json"
    write_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert capsys.readouterr().out.strip() == f"wrote {path}"
    write_json("-", {"b": 1})
    assert json.loads(capsys.readouterr().out) == {"b": 1}
    write_json(None, {"c": 1})
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "args",
    [
        ["sites", "random-2l"],
        ["zoo"],
        ["models", "--list"],
        ["compile", "--list"],
    ],
)
def test_every_switch_is_now_a_path(args, tmp_path):
    """`--json -` prints only JSON on stdout; `--json PATH` writes the same JSON there."""
    res = CliRunner().invoke(app, [*args, "--json", "-"])
    assert res.exit_code == 0, res.output
    on_stdout = json.loads(res.stdout)
    path = tmp_path / "o.json"
    res = CliRunner().invoke(app, [*args, "--json", str(path)])
    assert res.exit_code == 0, res.output
    assert json.loads(path.read_text()) == on_stdout
    assert f"wrote {path}" in res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["sites", "random-2l"],
        ["zoo"],
        ["models"],
        ["compile", "reverse"],
        ["bench", "--out", "runs/x", "--list"],
        ["bench", "merge", "runs/m", "runs/a"],
        ["zoo", "generate", "--out", "runs/z"],
        ["induction"],
        ["patch"],
        ["attribute"],
        ["steer"],
        ["explain", "credit-rule"],
        ["failure"],
        ["trace-data", "digits-logreg"],
        ["sae"],
    ],
)
def test_bad_json_path_fails_fast_in_every_command(args, tmp_path, monkeypatch):
    from interplab.cli import _common

    def refuse(name):
        raise AssertionError("no model may load before the output path is checked")

    monkeypatch.setattr(_common, "load_lm", refuse)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    res = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "no" / "r.json")])
    assert res.exit_code == 2, res.output
    assert "does not exist" in res.output and res.output.strip().count("\n") == 0
    assert time.perf_counter() - start < 3
