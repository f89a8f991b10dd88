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
            "-",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # --json -: stdout holds the JSON only
    assert data["clean_pred"] == data["label"]
    text = page.read_text()
    assert "<svg" in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    assert data["truth_units"] == []  # a clean twin: nothing planted, and the page says so
    assert "clean twin" in text
    if data["success"]:
        assert len(data["units"]) == 16 and isinstance(data["restored"], bool)
        assert all(u.startswith("L0.mlp[") for u in data["units"])


def test_failure_on_the_digit_trojan_names_units_by_site_beside_the_truth(tmp_path):
    js, page = tmp_path / "f.json", tmp_path / "f.html"
    res = CliRunner().invoke(
        app,
        ["failure", "trojan-patch-digits", "--index", "3", "--random", "50"]
        + ["--json", str(js), "--html", str(page)],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["success"] and len(data["units"]) == 16
    assert all(u.startswith("L0.mlp[") for u in data["units"] + data["truth_units"])
    assert "module:act" in data["unit_site"]
    # the planted units come from the organism contract, not from the method
    import interplab

    planted = [f"L0.mlp[{i}]" for _, i in interplab.organism("trojan-patch-digits").truth.units]
    assert data["truth_units"] == planted
    assert data["truth_overlap"] == len(set(data["units"]) & set(planted))
    r = data["baselines"]["random"]
    assert r["n_draws"] == 50 and r["restoration_rate"]["n"] == 50
    assert r["restoration_rate"]["low"] <= r["restoration_rate"]["value"]
    assert r["restoration_rate"]["value"] <= r["restoration_rate"]["high"]
    assert r["truth_overlap"]["low"] <= r["truth_overlap"]["mean"] <= r["truth_overlap"]["high"]
    assert len(data["baselines"]["activation_change"]["units"]) == 16
    assert "planted trojan units" in res.output and "random 16 units" in res.output


def test_failure_output_path_checked_before_work(tmp_path):
    res = CliRunner().invoke(app, ["failure", "--json", str(tmp_path / "no" / "f.json")])
    assert res.exit_code == 2 and "does not exist" in res.output
    assert res.output.strip().count("\n") == 0


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
        app, ["failure", "trojan-token", "--index", "2", "--html", str(page), "--json", "-"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "tokens" and data["clean_pred"] == data["label"]
    assert data["success"] and data["adv_pred"] != data["label"] and 1 <= data["swaps"] <= 6
    assert len(data["units"]) == 2 and set(data["units"]) | set(data["other_units"]) == {
        f"L0.H{h}.attn_z" for h in range(4)
    }
    assert set(data["units"]) == set(data["true_trojan_heads"])
    assert data["truth_units"] == data["true_trojan_heads"] and data["truth_target"] == 2
    assert data["restored"] is True and data["leftover_restored"] is False
    text = page.read_text()
    assert text.count("class='tok changed'") == 2 * data["swaps"] and "Restoration check" in text
