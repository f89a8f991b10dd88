from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from interplab.cli.compile_cmd import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def _other() -> None:  # a second command keeps `compile` a named subcommand
        pass

    return app


def test_list_names_every_library_program():
    from interplab.compile.programs import LIBRARY

    result = CliRunner().invoke(_app(), ["compile", "--list"])
    assert result.exit_code == 0
    for name in LIBRARY:
        assert name in result.output


def test_compile_check_json_and_out(tmp_path):
    result = CliRunner().invoke(
        _app(), ["compile", "reverse", "--check", "--json", "-", "--out", str(tmp_path / "rev")]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == [
        "program",
        "inputs_checked",
        "agreement",
        "layers",
        "heads",
        "d_model",
        "params",
        "compile_seconds",
    ]
    assert data["program"] == "reverse" and data["agreement"] == 1.0
    assert data["inputs_checked"] == 3 + 9 + 27 + 81 + 243
    assert (tmp_path / "rev" / "model.safetensors").exists()
    assert (tmp_path / "rev" / "model.json").exists()


def test_unknown_program_is_a_usage_error_listing_valid_names():
    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["compile", "revers"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Did you mean 'reverse'" in result.stderr and "sort_unique" in result.stderr
    result = CliRunner().invoke(app, ["compile"])
    assert result.exit_code == 2 and "name a program" in result.stderr


def test_show_truth_prints_variables_and_edges():
    result = CliRunner().invoke(_app(), ["compile", "frac_prevs", "--show-truth"])
    assert result.exit_code == 0, result.output
    assert "frac_prevs: L1.H0.attn_result -> L1.resid_mid" in result.output
    assert "L1.H0->logits  mean/resample/zero" in result.output


def test_help_teaches_the_options():
    result = CliRunner().invoke(_app(), ["compile", "--help"])
    assert result.exit_code == 0
    for text in ("--causal", "--vocab", "--max-len", "causal-<name>", "--vocab 0,1,2"):
        assert text in result.output


def test_list_shows_the_causal_variants():
    result = CliRunner().invoke(_app(), ["compile", "--list", "--json", "-"])
    names = {row["program"] for row in json.loads(result.output)}
    assert {"causal-frac_prevs", "causal-shift_by"} <= names and "causal-reverse" not in names
