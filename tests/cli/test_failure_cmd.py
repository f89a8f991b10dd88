"""``interplab failure``: JSON, a self-contained page, and one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from interplab.cli.main import app


def test_failure_command_writes_a_page(tmp_path):
    page = tmp_path / "f.html"
    res = CliRunner().invoke(
        app,
        [
            "failure",
            "twin-patch-digits",
            "--index",
            "3",
            "--eps",
            "0.2",
            "--html",
            str(page),
            "--json",
        ],
    )
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
    assert res.exit_code == 2 and "unknown trojan organism" in res.output
    res = runner.invoke(app, ["failure", "--eps", "3"])
    assert res.exit_code == 2 and "outside the input's range" in res.output
    res = runner.invoke(app, ["failure", "trojan-token", "--index", "300"])
    assert res.exit_code == 2 and "--index must lie in [0, 300)" in res.output
    res = runner.invoke(app, ["failure", "trojan-token", "--method", "nope"])
    assert res.exit_code == 2 and "unknown failure explainer" in res.output


def test_failure_command_on_the_token_trojan(tmp_path):
    """Greedy token attack on trojan-token, head-level explanation, restoration check: the two
    heads named should be the trojan heads read off attention (truth saved with the organism)."""
    page = tmp_path / "t.html"
    res = CliRunner().invoke(
        app, ["failure", "trojan-token", "--index", "2", "--html", str(page), "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["kind"] == "tokens" and data["clean_pred"] == data["label"]
    assert data["success"] and data["adv_pred"] != data["label"] and 1 <= data["swaps"] <= 6
    assert len(data["units"]) == 2 and set(data["units"]) | set(data["other_units"]) == {
        f"L0H{h}" for h in range(4)
    }
    assert set(data["units"]) == set(data["true_trojan_heads"])
    assert data["restored"] is True and data["leftover_restored"] is False
    text = page.read_text()
    assert text.count("class='tok changed'") == 2 * data["swaps"] and "Restoration check" in text
