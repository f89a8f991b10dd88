"""The data_attribution track on a tiny organism, and the independence of its ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from interplab.bench.tracks import Job
from interplab.bench.tracks import data_attribution as track
from tests.bench.test_truth_independence import BLOCKED
from tests.data_attribution_helpers import TINY, organism_and_truth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_track(monkeypatch):
    organism_and_truth()
    monkeypatch.setattr(track, "ORGANISMS", track.ORGANISMS + (TINY,))
    track.load.cache_clear()
    yield
    track.load.cache_clear()


def _rows(out) -> dict:
    return {r["metric"]: r for r in out.rows}


def test_track_interface_and_suites():
    assert track.TRACK.baselines() == {"random", "nn_input", "nn_representation"}
    assert track.ABLATIONS == (None,)
    for part in track.SUITES["quick"] + track.SUITES["full"]:
        assert set(part["organisms"]) <= set(track.ORGANISMS) and set(part["methods"]) <= set(
            track.METHODS
        )


def test_job_rows_carry_every_metric_with_intervals(tiny_track):
    out = track.run_job(Job("data_attribution", TINY, "if_exact", None))
    rows = _rows(out)
    for metric in track.METRICS:
        assert rows[metric]["value"] is not None
        est = out.artifacts["estimates"][metric]
        assert est["low"] <= est["value"] <= est["high"] and est["n"] > 0
    assert rows["n_subsets"]["value"] == 12 and out.artifacts["ground_truth_used"]["planted"] == 6
    # exact influence on a convex model tracks retraining; the random control does not
    rand = _rows(track.run_job(Job("data_attribution", TINY, "random", None)))
    assert rows["lds"]["value"] > rand["lds"]["value"] + 0.3


def test_grad_cos_mislabel_row_has_a_reason(tiny_track):
    row = _rows(track.run_job(Job("data_attribution", TINY, "grad_cos", None)))[
        "mislabel_recall_at_10"
    ]
    assert row["value"] is None and "self-influence" in row["reason"]


@pytest.mark.slow
def test_retraining_truth_needs_no_method_code_and_avoids_the_training_images(tiny_track, tmp_path):
    org, truth = organism_and_truth()
    got = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKED
            + textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.data_attribution_helpers import organism
        from interplab.zoo.retraining_truth import build_truth
        t = build_truth(organism(), {str(tmp_path)!r}, progress=False)
        print(json.dumps({{"outputs": t.outputs.tolist(),
                          "methods": [m for m in sys.modules if m.startswith("interplab.methods")]}}))
    """),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
        cwd=ROOT,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    data = json.loads(got.stdout.strip().splitlines()[-1])
    assert data["methods"] == []
    assert torch.allclose(torch.tensor(data["outputs"], dtype=torch.float64), truth.outputs)
    # the test points whose outputs are the truth are held-out digits, never training images
    d = org.data
    train_rows = {tuple(r.tolist()) for r in d.x_train}
    assert not any(tuple(r.tolist()) in train_rows for r in d.x_test)
