"""The shipped zoo of SIIT twins: every attempt recorded, the shipped files match the manifest,
a shipped twin loads after a hash check and a quick re-verification, a corrupt or missing file is
rebuilt with a warning, and a run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interplab.zoo import siit_generated as sg
from interplab.zoo import twin_zoo as tz

MANIFEST = tz.shipped_manifest()
VERIFIED = sorted(n for n, r in tz.shipped_rows().items() if r.get("verified"))


def test_the_manifest_records_every_attempt_and_the_share_that_verified():
    rows = MANIFEST["twins"]
    assert MANIFEST["attempted"] == len(rows) and MANIFEST["verified"] == len(VERIFIED)
    assert MANIFEST["share_verified"] == round(len(VERIFIED) / len(rows), 4)
    for r in rows:
        ok = min(r["iia"].values()) >= sg.MIN_IIA and r["task_accuracy"] >= sg.MIN_IIA
        assert r["verified"] == ok, r["name"]  # the flag is the rule applied to its numbers
        assert ("reason" in r) == (not ok)


def test_the_attempts_are_the_first_programs_the_rule_admits():
    """The selection rule never looks at verification: the attempted twins are exactly the
    first eligible programs of seed 0, in index order (checked on the first ten)."""
    attempted = [r["name"] for r in MANIFEST["twins"]]
    assert attempted[:10] == tz.attempted_names(0, 10)


def test_every_shipped_file_matches_its_hash_and_the_size_stays_small():
    total = 0
    for name in VERIFIED:
        row = tz.shipped_rows()[name]
        assert set(row["sha256"]) == set(tz.FILES)
        for fname, digest in row["sha256"].items():
            data = (tz.SHIPPED / name / fname).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, (name, fname)
            total += len(data)
    failed = [n for n, r in tz.shipped_rows().items() if not r.get("verified")]
    assert not any((tz.SHIPPED / n).exists() for n in failed)  # no weights for a failed twin
    assert total <= 25 * 2**20


def _copy(name: str, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tz.SHIPPED / name, root / name)
    row = tz.shipped_rows()[name]
    (root / tz.MANIFEST).write_text(json.dumps({"twins": [row]}))
    return root / name


def test_a_shipped_twin_loads_after_its_hash_check_and_a_quick_reverification(tmp_path):
    name = VERIFIED[0]
    _copy(name, tmp_path / "shipped")
    org = tz.load_shipped(name, 0, sg.spec_for(name), sg.MIN_IIA, root=tmp_path / "shipped")
    check = org.verification["quick_recheck"]
    assert check["n_heldout_pairs"] == tz.QUICK_PAIRS
    assert min(check["iia"].values()) >= sg.MIN_IIA and check["task_accuracy"] >= sg.MIN_IIA


@pytest.mark.parametrize("damage", ["flip a byte", "delete"])
def test_a_corrupt_or_missing_file_is_refused_with_a_warning(tmp_path, caplog, damage):
    name = VERIFIED[0]
    directory = _copy(name, tmp_path / "shipped")
    weights = directory / "model.safetensors"
    if damage == "delete":
        weights.unlink()
    else:
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="interplab.zoo"):
        assert (
            tz.load_shipped(name, 0, sg.spec_for(name), sg.MIN_IIA, root=tmp_path / "shipped")
            is None
        )
    assert f"rebuilding shipped SIIT twin {name}" in caplog.text
    assert ("missing" if damage == "delete" else "SHA-256") in caplog.text


def test_a_run_resumes_and_never_trains_a_recorded_twin_again(tmp_path):
    def fake(name: str, seed: int) -> dict:
        ok = name.endswith("5")
        return {
            "name": name,
            "seed": seed,
            "iia": {"v": 1.0 if ok else 0.2},
            "task_accuracy": 1.0,
            "verified": ok,
            **({} if ok else {"reason": "low IIA"}),
            "files": {"model.safetensors": b"w"} if ok else {},
        }

    asked: list[list[str]] = []

    def submit(fn, calls):
        asked.append([c[0] for c in calls])
        for name, seed in calls:
            yield fake(name, seed)

    names = ["siit-generated-0-5", "siit-generated-0-11", "siit-generated-0-20"]
    tz.train_zoo(names[:2], tmp_path, submit=submit, to_cache=False)
    m = tz.train_zoo(names, tmp_path, submit=submit, to_cache=False)
    assert asked == [names[:2], names[2:]]
    assert m["attempted"] == 3 and m["verified"] == 1 and m["share_verified"] == 0.3333
    assert (tmp_path / "siit-generated-0-5" / "model.safetensors").read_bytes() == b"w"
    assert not (tmp_path / "siit-generated-0-11").exists()
    assert [r["name"] for r in m["twins"]] == sorted(names, key=sg.parse_name)


def test_listing_the_twins_imports_no_torch_and_says_they_verified():
    code = (
        "import sys, json; from interplab.zoo.registry import names, entry;"
        "twins = [n for n in names() if n.startswith('siit-generated-')];"
        "print(json.dumps([len(twins), 'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, torch_loaded = json.loads(out.stdout)
    assert n == MANIFEST["attempted"] and not torch_loaded


@pytest.mark.slow
def test_training_on_a_real_scheduler_survives_a_killed_worker(tmp_path):
    """`dask scheduler` + two `dask worker` processes train three twins; one worker is killed
    when the first record arrives. Every twin is recorded exactly once, and the records are the
    twins the rule chose."""
    import os
    import signal

    pytest.importorskip("distributed")
    from interplab.bench.dask_runner import calls_submitter
    from tests.dask_cluster import dask_cluster

    names = tz.attempted_names(0, 3)
    with dask_cluster(2) as (address, procs):
        submit, close = calls_submitter(address, 2)
        seen: list[str] = []

        def progress(row: dict) -> None:
            seen.append(row["name"])
            if len(seen) == 1:
                os.killpg(procs[1].pid, signal.SIGKILL)

        try:
            m = tz.train_zoo(names, tmp_path, submit=submit, progress=progress, to_cache=False)
        finally:
            close()
        assert procs[1].wait(timeout=10) is not None
        assert sorted(seen) == sorted(names), "a twin was lost or recorded twice"
        assert [r["name"] for r in m["twins"]] == names and m["attempted"] == 3
        for r in m["twins"]:
            if r["verified"]:
                data = (tmp_path / r["name"] / "model.safetensors").read_bytes()
                assert hashlib.sha256(data).hexdigest() == r["sha256"]["model.safetensors"]


@pytest.mark.slow
def test_a_corrupt_shipped_twin_is_rebuilt_by_load_twin(tmp_path, monkeypatch, caplog):
    name = VERIFIED[0]
    root = tmp_path / "shipped"
    directory = _copy(name, root)
    (directory / "model.safetensors").write_bytes(b"not weights")
    from interplab.zoo import siit, twin_shipped

    monkeypatch.setattr(twin_shipped, "SHIPPED", root)
    monkeypatch.setattr(siit, "organism_dir", lambda n, s: tmp_path / "cache" / f"{n}-s{s}")
    with caplog.at_level(logging.WARNING, logger="interplab.zoo"):
        org = sg.load_twin(name)
    assert "rebuilding shipped SIIT twin" in caplog.text
    assert "shipped" not in org.verification  # trained here, not loaded from the shipped files
    assert min(org.verification["iia"].values()) >= sg.MIN_IIA


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "foo"], "unknown trained family 'foo'"),
        (["--shard", "3/2"], "need 1 <= i <= N"),
        (["--cluster", "http://x"], "--cluster must be 'local' or a Dask scheduler address"),
    ],
)
def test_zoo_train_refuses_bad_options_in_one_line(tmp_path, args, message):
    from typer.testing import CliRunner

    from interplab.cli.main import app

    result = CliRunner().invoke(app, ["zoo", "train", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not any(tmp_path.iterdir())
