"""``interplab explain``: text, JSON and HTML output; bad input exits 2 with one line."""

import json

from typer.testing import CliRunner

from interplab.cli.main import app


def test_explain_writes_json_and_html(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "explain",
            "credit-linear",
            "--row",
            "2",
            "--json",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "candidate claims failed" in res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["organism"] == "credit-linear" and data["row_index"] == 2
    assert data["claims"] and all(c["passed"] for c in data["claims"])
    page = (tmp_path / "r.html").read_text()
    assert (
        "Outcome:" in page
        and "<script" not in page
        and "http" not in page.replace("http-equiv", "")
    )


def test_bad_input_is_one_clear_line():
    runner = CliRunner()
    res = runner.invoke(app, ["explain", "credit-linear", "--row", "4000"])
    assert res.exit_code == 2 and "out of range" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["explain", "credit-lineer"])
    assert res.exit_code == 2 and "credit-linear" in res.output
    res = runner.invoke(app, ["explain", "credit-linear", "--method", "shapp"])
    assert res.exit_code == 2 and "kernel_shap" in res.output


def test_explain_marks_each_factor_with_its_check_and_json_to_stdout():
    res = CliRunner().invoke(app, ["explain", "credit-linear", "--row", "2", "--json", "-"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # stdout holds the JSON only; the text went to stderr
    statuses = set(data["factor_checks"].values())
    assert statuses <= {"passed", "failed", "unchecked"} and "unchecked" in statuses
    passed = {c["params"]["feature"] for c in data["claims"] if c["kind"] == "direction"}
    assert {f for f, st in data["factor_checks"].items() if st == "passed"} == passed
    assert "[unchecked]" in res.stderr and "estimates, each with its check" in res.stderr
