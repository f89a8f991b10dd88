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
    result = runner.invoke(app, ["sites", "random-2l", "--json", "-"])
    assert result.exit_code == 0
    names = json.loads(result.stdout)
    assert "L1.attn_z" in names and "logits" in names and "embed" in names


def test_unknown_model_is_a_one_line_usage_error():
    result = runner.invoke(app, ["sites", "nope"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown ") and result.stderr.count("\n") == 1
    assert "random-2l" in result.stderr and "Traceback" not in result.output


def test_every_interplab_error_maps_to_its_exit_code(monkeypatch):
    """Usage errors (bad names, option values, spec files) exit 2, runtime failures 1, both as
    one `error:` line; an OSError is a runtime failure too."""
    from interplab import errors
    from interplab.zoo import registry

    cases = [
        (errors.UnknownNameError("unknown organism 'x'"), 2),
        (errors.ConfigError("bad"), 2),
        (errors.SpecError("s.toml:3: bad"), 2),
        (errors.SiteError("no site L9"), 2),
        (errors.WeightsError("corrupt"), 1),
        (errors.ResultsStoreError("corrupt"), 1),
        (errors.MissingExtraError("pip install x"), 1),
        (errors.CompileError("no"), 1),
        (PermissionError(13, "Permission denied", "runs/x"), 1),
    ]
    for exc, code in cases:

        def fail(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(registry, "names", fail)
        result = runner.invoke(app, ["zoo"])
        assert result.exit_code == code, (exc, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
