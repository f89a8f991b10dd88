"""`interplab zoo`, `interplab zoo generate`, and a CLI that answers --help without torch."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from interplab.cli.main import app


def test_zoo_generate_writes_and_lists_verified_organisms(tmp_path):
    result = CliRunner().invoke(
        app,
        ["zoo", "generate", "--count", "2", "--seed", "0", "--out", str(tmp_path), "--json", "-"],
    )
    assert result.exit_code == 0, result.output
    index = json.loads(result.output.strip().splitlines()[-1])
    assert [o["name"] for o in index["organisms"]] == ["generated-0-0", "generated-0-1"]
    assert all(o["agreement"] == 1.0 for o in index["organisms"])
    assert (tmp_path / "generated-0-1" / "model.safetensors").is_file()
    text = CliRunner().invoke(
        app, ["zoo", "generate", "--count", "1", "--out", str(tmp_path / "b")]
    )
    assert text.exit_code == 0 and "generated-0-0" in text.output and "agreement 1.0" in text.output


def test_zoo_still_lists_the_organisms():
    result = CliRunner().invoke(app, ["zoo", "--json", "-"])
    assert result.exit_code == 0
    assert any(r["name"] == "compiled-reverse" for r in json.loads(result.output))


def test_zoo_generate_rejects_a_bad_count(tmp_path):
    result = CliRunner().invoke(app, ["zoo", "generate", "--count", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys; from interplab.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['--version']); assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    import interplab

    assert interplab.HookedTransformer.__name__ == "HookedTransformer"  # lazily resolved
    assert "Site" in dir(interplab)
