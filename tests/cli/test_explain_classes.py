"""``interplab explain`` on a three-class organism: --target, --versus, --recourse-to."""

import json

from typer.testing import CliRunner

from interplab.cli.main import app


def _run(*args):
    return CliRunner().invoke(app, ["explain", "credit-tiers", *args])


def test_default_explains_the_predicted_class_rather_than_the_runner_up():
    res = _run("--row", "2", "--method", "occlusion", "--json", "-")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["classes"] == ["refuse", "review", "approve"]
    assert data["target"] == data["decision"] and data["versus"] in data["classes"]
    assert data["recourse_to"] == data["versus"]
    line = f"explaining class '{data['target']}' rather than '{data['versus']}'"
    assert line in res.stderr
    assert f"recourse to '{data['recourse_to']}'" in res.stderr
    assert all(o["to"] == data["recourse_to"] and o["valid"] for o in data["recourse"])


def test_versus_rest_and_recourse_to_a_class_by_index(tmp_path):
    res = _run(
        "--row",
        "2",
        "--method",
        "occlusion",
        "--versus",
        "rest",
        "--recourse-to",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["versus"] == "rest" and data["recourse_to"] == "approve"
    assert "rather than the other classes" in res.output
    page = (tmp_path / "r.html").read_text()
    assert "What would make the model predict 'approve'" in page and "id='contrast'" in page


def test_target_by_name_on_a_class_the_row_does_not_get():
    res = _run("--row", "2", "--method", "occlusion", "--target", "approve", "--json", "-")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["target"] == "approve" and data["decision"] != "approve"
    assert data["recourse_to"] == "approve"


def test_unknown_or_impossible_classes_are_one_line_errors():
    for option in ("--target", "--versus", "--recourse-to"):
        res = _run("--method", "occlusion", option, "rejected")
        assert res.exit_code == 2, (option, res.output)
        assert "unknown class 'rejected'" in res.output and "'review'" in res.output
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    res = _run("--method", "occlusion", "--target", "5")
    assert res.exit_code == 2 and "0='refuse', 1='review', 2='approve'" in res.output
    res = _run("--row", "2", "--method", "occlusion", "--recourse-to", "review")
    assert res.exit_code == 2 and "already predicts 'review'" in res.output


def test_a_binary_organism_takes_the_class_options_too():
    res = CliRunner().invoke(
        app,
        ["explain", "credit-rule", "--row", "3", "--method", "occlusion", "--target", "refuse"],
    )
    assert res.exit_code == 0, res.output
    assert "explaining class 'refuse' rather than 'approve'" in res.output
