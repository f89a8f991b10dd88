"""``interplab trace-data``: top training examples with their checks, JSON and a self-contained
page; bad input exits 2 with one line and loses nothing."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from interplab.cli.main import app
from interplab.zoo import data_attribution as zda
from interplab.zoo import retraining_truth as rt
from tests.data_attribution_helpers import TINY, TINY_MLP, organism, organism_and_truth


def _run(*args: str):
    return CliRunner().invoke(app, ["trace-data", *args])


def test_trace_writes_json_and_a_self_contained_page(tmp_path):
    organism_and_truth()
    res = _run(
        TINY,
        "--index",
        "2",
        "--method",
        "if_exact",
        "-k",
        "6",
        "--json",
        str(tmp_path / "t.json"),
        "--html",
        str(tmp_path / "t.html"),
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["index"] == 2 and len(data["top"]) == 6
    scores = [r["score"] for r in data["top"]]
    assert scores == sorted(scores, reverse=True)
    assert -1 <= data["checks"]["lds_this_point"] <= 1 and data["checks"]["n_subsets"] == 12
    page = (tmp_path / "t.html").read_text()
    assert page.count("data-train-index=") == 6 and "<svg" in page
    assert (
        "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    )


def test_triggered_split_reports_planted_recall(tmp_path):
    res = _run(
        TINY,
        "--split",
        "triggered",
        "--no-truth",
        "--method",
        "nn_input",
        "--json",
        str(tmp_path / "t.json"),
    )
    assert res.exit_code == 0, res.output
    checks = json.loads((tmp_path / "t.json").read_text())["checks"]
    assert 0 <= checks["planted_recall_this_point"] <= 1 and "lds_this_point" not in checks


def test_bad_input_exits_2_with_one_line(tmp_path):
    organism_and_truth()
    res = _run(TINY, "--index", "12", "--no-truth")
    assert res.exit_code == 2 and "out of range" in res.output and "Traceback" not in res.output
    res = _run(TINY, "--method", "influence")
    assert res.exit_code == 2 and "unknown data-attribution method" in res.output
    res = _run("digits-nope")
    assert res.exit_code == 2 and "digits-logreg" in res.output


def test_unrecorded_data_and_foreign_truth_are_refused_and_nothing_is_lost(tmp_path):
    org, _ = organism_and_truth()
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in (zda.MODEL_FILE, zda.SIDECAR):
        shutil.copy(org.directory / f, bare / f)
    res = _run("--model-dir", str(bare), "--no-truth")
    assert res.exit_code == 2 and "was not recorded" in res.output
    # the tiny MLP's truth offered for the logistic regression
    other = organism(TINY_MLP)
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    for f in (rt.TRUTH_FILE, rt.TRUTH_SIDECAR):
        shutil.copy(org.directory / f, truth_dir / f)
    before = (truth_dir / rt.TRUTH_FILE).read_bytes()
    res = _run("--model-dir", str(other.directory), "--truth-dir", str(truth_dir))
    assert res.exit_code == 2 and "another model" in res.output
    assert (truth_dir / rt.TRUTH_FILE).read_bytes() == before


def test_passage_prompt_is_traced_to_its_copies(tmp_path):
    from tests.data_attribution_helpers import TINY_PASSAGES

    res = _run(
        TINY_PASSAGES,
        "--split",
        "triggered",
        "--index",
        "4",
        "--method",
        "if_exact",
        "--no-truth",
        "-k",
        "4",
        "--json",
        str(tmp_path / "p.json"),
        "--html",
        str(tmp_path / "p.html"),
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["input_kind"] == "tokens" and len(data["tokens"]) == 3
    assert 0 <= data["checks"]["planted_recall_this_point"] <= 1
    assert "code class='tokens'" in (tmp_path / "p.html").read_text()
