import json

from typer.testing import CliRunner

from interplab.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("interplab ")


def test_help_teaches():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "interplab bench" in result.stdout and "sites" in result.stdout


def test_sites_json_lists_typed_sites():
    result = runner.invoke(app, ["sites", "random-2l", "--json"])
    assert result.exit_code == 0
    names = json.loads(result.stdout)
    assert "L1.attn_z" in names and "logits" in names and "embed" in names


def test_unknown_model_lists_valid_names():
    result = runner.invoke(app, ["sites", "nope"])
    assert result.exit_code != 0
    assert "random-2l" in str(result.exception)
