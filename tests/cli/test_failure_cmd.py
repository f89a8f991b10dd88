"""``interplab failure``: JSON, a self-contained page, and one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from interplab.cli.main import app


def test_failure_command_writes_a_page(tmp_path):
    page = tmp_path / "f.html"
    res = CliRunner().invoke(app, ["failure", "twin-patch-digits", "--index", "3", "--eps", "0.2",
                                   "--html", str(page), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["clean_pred"] == data["label"]
    text = page.read_text()
    assert "<svg" in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    if data["success"]:
        assert len(data["units"]) == 16 and isinstance(data["restored"], bool)


def test_failure_command_bad_input():
    runner = CliRunner()
    res = runner.invoke(app, ["failure", "nope"])
    assert res.exit_code == 2 and "unknown digits organism" in res.output
    res = runner.invoke(app, ["failure", "--eps", "3"])
    assert res.exit_code == 2 and "outside the input's range" in res.output
