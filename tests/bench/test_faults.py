"""The bench under faults (issue 28): CPU limits, failed jobs, one spec per store, empty and
read-only stores, orphaned workers, Ctrl-C, export errors, big bad specs.

Every test that touches a store compares its rows before and after: nothing may be lost. The
cheap fake and sleep tracks stand in for real organisms; tests that start `interplab` in a
subprocess (the real signal and scheduler paths) are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interplab.bench import execute, runner
from interplab.bench.merge import merge_stores
from interplab.bench.runner import check_parallelism, default_jobs, run_bench
from interplab.bench.spec import parse_spec
from interplab.bench.store import ResultsStore
from interplab.cli.main import app
from interplab.errors import ConfigError, ResultsStoreError, SpecError
from tests.bench import fake_track, sleep_track

ROOT = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    log = tmp_path / "ran.log"
    fake_track.register(monkeypatch, log)
    return log


def _spec(methods=("good", "bad"), organisms=("org-a", "org-b"), seed=0):
    return parse_spec(
        f"seed = {seed}\n[fake]\norganisms = {json.dumps(list(organisms))}\n"
        f'methods = {json.dumps(list(methods))}\nablations = ["zero"]\n',
        "spec.toml",
    )


def _rows(out: Path) -> list[tuple]:
    """Every stored row and job, sorted: what "nothing lost" compares."""
    with sqlite3.connect(out / "results.sqlite") as con:
        rows = con.execute("SELECT * FROM rows").fetchall()
        jobs = con.execute("SELECT key, status FROM jobs").fetchall()
    return sorted(map(repr, rows)) + sorted(map(repr, jobs))


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- 1. CPU limits
def test_default_jobs_is_the_cpus_this_process_may_use_and_passes_the_check(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(execute, "_cgroup_cpu_quota", lambda: None)
    assert default_jobs() == 1
    check_parallelism(default_jobs(), 1)  # the default never fails its own check
    with pytest.raises(ConfigError, match="--jobs 2 is more than the 1 CPU"):
        check_parallelism(2, 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(execute, "_cgroup_cpu_quota", lambda: 3)  # docker --cpus 2.5
    assert default_jobs() == 3


@pytest.mark.parametrize(
    "layout, expected",
    [
        ({"cgroup.controllers": "", "a/cpu.max": "150000 100000", "cpu.max": "max 100000"}, 2),
        ({"cgroup.controllers": "", "a/cpu.max": "max 100000"}, None),
        ({"cpu/a/cpu.cfs_quota_us": "50000", "cpu/a/cpu.cfs_period_us": "100000"}, 1),
        ({"cpu/a/cpu.cfs_quota_us": "-1", "cpu/a/cpu.cfs_period_us": "100000"}, None),
    ],
)
def test_cgroup_cpu_quota_v1_and_v2(tmp_path, layout, expected):
    root = tmp_path / "cg"
    for name, text in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "cgroup"
    proc.write_text("0::/a\n" if "cgroup.controllers" in layout else "3:cpu:/a\n")
    assert execute._cgroup_cpu_quota(root, proc) == expected


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")
def test_default_command_runs_under_taskset_one_cpu(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[fake]\norganisms = ["org-a"]\nmethods = ["good", "bad"]\n')
    out = tmp_path / "out"
    res = _cli(["--spec", str(spec), "--out", str(out), "--no-report"], tmp_path, taskset="0")
    assert res.returncode == 0, res.stderr
    assert "more than the" not in res.stderr
    assert len(_rows(out)) == 2 * 2 * 2 + 4  # 4 jobs × 2 metrics, and the 4 jobs


# --------------------------------------------------------------------------- 2. exit code
def test_bench_exits_1_when_a_job_failed_and_says_which(fake, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[fake]\norganisms = ["org-a"]\nmethods = ["good", "boom"]\n')
    res = CliRunner().invoke(
        app,
        ["bench", "--spec", str(spec), "--out", str(tmp_path / "o"), "--jobs", "1", "--no-report"],
    )
    assert res.exit_code == 1, res.output
    assert "failed: fake/org-a/boom/zero/seed0: RuntimeError: the boom method" in res.stdout
    assert "2 of 4 jobs failed" in res.stderr
    spec.write_text('[fake]\norganisms = ["org-a"]\nmethods = ["good"]\n')
    ok = CliRunner().invoke(
        app, ["bench", "--spec", str(spec), "--out", str(tmp_path / "p"), "--jobs", "1"]
    )
    assert ok.exit_code == 0, ok.output


# --------------------------------------------------------------------- 3. one spec per store
def test_another_spec_or_seed_in_the_same_folder_is_refused_and_nothing_is_lost(fake, tmp_path):
    out = tmp_path / "out"
    run_bench(_spec(), out, progress=False)
    before, files = _rows(out), _files(out)
    for other in (_spec(seed=1), _spec(methods=("good",))):
        with pytest.raises(ConfigError) as info:
            run_bench(other, out, progress=False)
        msg = str(info.value)
        assert "\n" not in msg and "--force-new" in msg and "another --out" in msg
        assert f"fingerprint {_spec().fingerprint()}" in msg  # the store's spec ...
        assert f"fingerprint {other.fingerprint()}" in msg  # ... and this run's
        assert _rows(out) == before and _files(out) == files
    assert "seed 0" in str(info.value) or "seed 1" in str(info.value)
    # the same spec resumes as before
    assert run_bench(_spec(), out, progress=False).skipped == 4


def test_force_new_moves_the_old_results_aside(fake, tmp_path):
    out = tmp_path / "out"
    run_bench(_spec(), out, progress=False)
    before = _rows(out)
    summary = run_bench(_spec(seed=1), out, progress=False, force_new=True)
    assert summary.done == 4 and summary.skipped == 0
    (previous,) = out.glob("previous-*")
    assert _rows(previous) == before, "the earlier results are kept, moved"
    assert (previous / "results.json").is_file()
    with ResultsStore(out / "results.sqlite") as store:
        assert store.get_meta("seed") == "1"


def test_a_store_mixed_by_an_older_interplab_is_refused_by_bench_and_merge(fake, tmp_path):
    out = tmp_path / "out"
    run_bench(_spec(), out, progress=False)
    # an older interplab let another spec's run add its jobs (and kept this fingerprint)
    with sqlite3.connect(out / "results.sqlite") as con:
        con.execute(
            "INSERT INTO jobs VALUES ('fake/org-a/nan/zero/seed0','fake','org-a','nan','zero',"
            "0,'done',NULL,0.1,0)"
        )
    before = _rows(out)
    with pytest.raises(ConfigError, match="1 job.* not in spec"):
        run_bench(_spec(), out, progress=False)
    with pytest.raises(ConfigError, match="merge refuses foreign jobs"):
        merge_stores(tmp_path / "merged", [out])
    assert _rows(out) == before and not (tmp_path / "merged" / "results.sqlite").exists()


def test_repeated_spec_entries_run_once_with_a_note(fake, tmp_path):
    spec = _spec(methods=("good", "good", "bad"), organisms=("org-a", "org-a"))
    assert any("listed more than once" in n and "'good'" in n for n in spec.notes)
    assert len(spec.jobs()) == 2
    summary = run_bench(spec, tmp_path / "out", progress=False)
    assert summary.done == summary.total == 2 and len(_rows(tmp_path / "out")) == 2 * 2 + 2


def test_merge_into_a_file_and_an_empty_input_say_what_is_wrong(fake, tmp_path):
    run_bench(_spec(), tmp_path / "a", progress=False)
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is an existing file"):
        merge_stores(target, [tmp_path / "a"])
    empty = tmp_path / "e"
    empty.mkdir()
    (empty / "results.sqlite").write_bytes(b"")
    with pytest.raises(ResultsStoreError, match="is empty") as info:
        merge_stores(tmp_path / "m", [tmp_path / "a", empty])
    assert "older interplab" not in str(info.value)


# ------------------------------------------------------------------- 4. empty / truncated
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_empty_or_truncated_store_is_refused_and_nothing_is_overwritten(fake, tmp_path, damage):
    from interplab.report.html import render_report

    out = tmp_path / "out"
    run_bench(_spec(methods=("good", "bad", "nan")), out, progress=False)
    render_report(out)
    db = out / "results.sqlite"
    data = db.read_bytes()
    db.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    files = _files(out)
    assert len(files["results.json"]) > 100 and len(files["report.html"]) > 1000
    with pytest.raises(ResultsStoreError) as info:
        run_bench(_spec(methods=("good", "bad", "nan")), out, progress=False)
    assert "left untouched" in str(info.value)
    with pytest.raises(ResultsStoreError):
        render_report(out)
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert _files(out) == files, "results.json, report.html and the store are untouched"


def test_a_new_store_is_created_whole(tmp_path):
    """Creation writes a temporary file and renames it: no empty results.sqlite is left by a
    run stopped while creating it, and none appears beside a finished one."""
    with ResultsStore(tmp_path / "results.sqlite") as store:
        assert store.jobs() == []
        store.set_meta("spec", "mine")
    assert [p.name for p in tmp_path.iterdir()] == ["results.sqlite"]
    # a second process that also found no store creates one too: the first one's is kept
    late = ResultsStore.__new__(ResultsStore)
    late.path = tmp_path / "results.sqlite"
    late._create()
    with ResultsStore(tmp_path / "results.sqlite") as store:
        assert store.get_meta("spec") == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["results.sqlite"]


# ------------------------------------------------------------------------ 5. read-only
def test_a_store_opened_read_only_is_read_and_never_written(fake, tmp_path):
    out = tmp_path / "out"
    run_bench(_spec(), out, progress=False)
    before = _files(out)
    with ResultsStore(out / "results.sqlite", writable=False) as store:
        assert store.read_only and len(store.rows()) == 4 * 2
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.set_meta("x", "y")
    assert _files(out) == before


def _read_only_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` is read-only (a read-only bind mount for
    root, whom permissions do not stop), or None where that cannot be arranged."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("unshare"):
        return None
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{folder}' '{folder}'"],
        capture_output=True,
    )
    if probe.returncode != 0:
        return None
    return [
        "unshare",
        "-m",
        "sh",
        "-c",
        f"mount --bind -o ro '{folder}' '{folder}' && exec \"$@\"",
        "-",
    ]


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="read-only mounts / permissions as on Linux")
def test_read_only_store_report_and_merge_read_it_bench_says_how_to_resume(tmp_path):
    out = tmp_path / "ro"
    spec = tmp_path / "s.toml"
    spec.write_text('[fake]\norganisms = ["org-a", "org-b"]\nmethods = ["good", "boom"]\n')
    _cli(["--spec", str(spec), "--out", str(out), "--no-report", "--jobs", "1"], tmp_path)
    before, files = _rows(out), _files(out)
    prefix = _read_only_prefix(out)
    if prefix is None:
        pytest.skip("cannot make a folder read-only here")
    if not prefix:
        os.chmod(out / "results.sqlite", 0o444)
        os.chmod(out, 0o555)
    try:
        res = _cli(["--spec", str(spec), "--out", str(out), "--jobs", "1"], tmp_path, prefix)
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
        assert "is read-only" in res.stderr and "--out NEWDIR" in res.stderr
        merged = tmp_path / "merged"
        res = _cli(["merge", str(merged), str(out), "--no-report"], tmp_path, prefix)
        assert res.returncode == 0, res.stderr
        assert "8 jobs (4 done, 4 failed)" in res.stdout
        report = subprocess.run(
            [*prefix, *_cli_cmd(["x"])[:3], "report", str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=_env(tmp_path),
        )
        assert report.returncode == 1 and report.stderr.count("\n") == 1, report.stderr
        assert "is read-only: its results were read" in report.stderr
        code = (
            "from interplab.bench.store import ResultsStore; import sys;"
            "s = ResultsStore(sys.argv[1]); print(s.read_only, len(s.rows()))"
        )
        res = subprocess.run(
            [*prefix, sys.executable, "-c", code, str(out / "results.sqlite")],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert res.stdout.split() == ["True", "8"], res.stderr
    finally:
        os.chmod(out, 0o755)
        os.chmod(out / "results.sqlite", 0o644)
    assert _rows(out) == before and _files(out) == files
    assert _rows(merged) == before, "the merge of the read-only store holds all of it"


# ----------------------------------------------------------- 6./7. processes and Ctrl-C
_DRIVER = (
    "import sys\n"
    "from interplab.bench import tracks\n"
    "tracks.TRACK_MODULES.update(fake='tests.bench.fake_track', sleep='tests.bench.sleep_track')\n"
    "from interplab.cli.main import app\n"
    "app(sys.argv[1:], prog_name='interplab')\n"
)


def _cli_cmd(args: list[str], prefix: list[str] | None = None, taskset: str | None = None):
    cmd = [sys.executable, "-c", _DRIVER, "bench", *args]
    if taskset is not None:
        cmd = ["taskset", "-c", taskset, *cmd]
    return [*(prefix or []), *cmd]


def _env(tmp_path: Path, sleep: float = 0.05) -> dict[str, str]:
    return {
        **os.environ,
        "FAKE_TRACK_LOG": str(tmp_path / "ran.log"),
        "SLEEP_TRACK_SECONDS": str(sleep),
        "PYTHONPATH": str(ROOT),
    }


def _cli(args, tmp_path, prefix=None, taskset=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cli_cmd(args, prefix, taskset),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(tmp_path),
        timeout=300,
    )


def _session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (from /proc; zombies are not alive)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C at its default, as a terminal's foreground process has
    it. A test run started in the background (nohup, ``cmd &`` in a script, some CI runners)
    ignores SIGINT, every child inherits that, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args, tmp_path, sleep) -> subprocess.Popen:
    return subprocess.Popen(
        _cli_cmd(args),
        cwd=ROOT,
        env=_env(tmp_path, sleep),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _wait_for_workers(proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate())
        kids = [p for p in _session(proc.pid) if p != proc.pid]
        if len(kids) >= n:
            time.sleep(8)  # let the workers import torch and start their jobs
            return
        time.sleep(0.2)
    raise AssertionError("the workers did not start")


def _sleep_spec(tmp_path: Path, organisms: int = 4) -> Path:
    spec = tmp_path / "sleep.toml"
    spec.write_text(sleep_track.spec_text(organisms))
    return spec


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.parametrize("cluster", [None, "local"])
def test_sigkill_of_the_main_process_leaves_no_worker(tmp_path, cluster):
    if cluster is not None:
        pytest.importorskip("distributed")
    out = tmp_path / "out"
    args = ["--spec", str(_sleep_spec(tmp_path)), "--out", str(out), "--jobs", "2", "--no-report"]
    proc = _start(args + (["--cluster", cluster] if cluster else []), tmp_path, sleep=60)
    try:
        _wait_for_workers(proc, 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _session(proc.pid)
        assert not left, f"orphaned processes: {left}"
    finally:
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="process groups and /proc")
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_with_parallel_jobs_is_quick_and_keeps_what_finished(tmp_path, presses):
    out = tmp_path / "out"
    spec = _sleep_spec(tmp_path)
    first = _cli(
        ["--spec", str(spec), "--shard", "1/2", "--out", str(out), "--jobs", "1"], tmp_path
    )
    assert first.returncode == 0, first.stderr
    before = _rows(out)
    args = ["--spec", str(spec), "--out", str(out), "--jobs", "2", "--no-report"]
    proc = _start(args, tmp_path, sleep=60)  # jobs that would run a minute
    try:
        _wait_for_workers(proc, 2)
        start = time.monotonic()
        for _ in range(presses):  # Ctrl-C in a terminal signals the whole foreground group
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.3)
        _, stderr = proc.communicate(timeout=60)
        seconds = time.monotonic() - start
    finally:
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)
    print(f"Ctrl-C x{presses}: exited after {seconds:.1f} s")
    assert proc.returncode == 130, stderr
    assert seconds < runner.GRACE_SECONDS + 5, f"Ctrl-C took {seconds:.1f} s"
    assert "Traceback" not in stderr and stderr.strip().count("\n") == 0, stderr
    assert "interrupted" in stderr
    assert _rows(out) == before, "the jobs of the first run are all still there"
    assert not _session(proc.pid)


@pytest.mark.slow
def test_ctrl_c_keeps_running_jobs_that_end_within_the_grace(fake, tmp_path, monkeypatch):
    """In-process: the first finished job raises Ctrl-C; the jobs already running end within
    the grace period and are recorded, the queued ones are cancelled."""
    monkeypatch.setitem(
        __import__("interplab.bench.tracks", fromlist=["x"]).TRACK_MODULES,
        "sleep",
        "tests.bench.sleep_track",
    )
    monkeypatch.setenv("SLEEP_TRACK_SECONDS", "1.0")
    spec = parse_spec(sleep_track.spec_text(12))
    seen = []

    def stop(job):
        seen.append(job.key)
        if len(seen) == 1:
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, tmp_path / "out", jobs=2, progress=False, on_done=stop)
    seconds = time.monotonic() - start
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        done = store.done_keys()
    assert len(done) >= 2, "the job running beside the first was kept"
    assert len(done) < len(spec.jobs()), "the queued jobs were cancelled"
    assert seconds < 60


# ------------------------------------------------------------------------ 8. export errors
def test_an_export_error_never_hides_the_first_error(fake, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_bench(_spec(methods=("good", "boom")), out, progress=False)
    before = _rows(out)

    def disk_full(self, *args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    def no_json(store, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(ResultsStore, "record_failure", disk_full)
    monkeypatch.setattr(runner, "write_results_json", no_json)
    with pytest.raises(ResultsStoreError) as info:
        run_bench(_spec(methods=("good", "boom")), out, progress=False)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("cannot write to") and "disk is full" in lines[0]
    assert lines[1].startswith("also: cannot write") and "results.json" in lines[1]
    monkeypatch.undo()
    assert _rows(out) == before


# --------------------------------------------------------------------- 9. big bad specs
def test_ten_thousand_unknown_names_are_checked_fast_with_a_short_error(fake):
    parse_spec('[fake]\norganisms = ["org-a"]\nmethods = ["good"]\n')  # import the track
    names = [f"nope-{i}" for i in range(10_000)]
    text = (
        "[fake]\norganisms = [\n"
        + "".join(f'  "{n}",\n' for n in names)
        + ']\nmethods = ["good"]\n'
    )
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_spec(text, "big.toml")
    seconds = time.perf_counter() - start
    msg = str(info.value)
    assert seconds < 2, f"checking took {seconds:.2f} s"
    assert len(msg) < 2000 and msg.count("\n") <= 7
    assert "big.toml:3: unknown organism 'nope-0'" in msg
    assert "and 9995 more unknown organisms" in msg


# ------------------------------------------------------------------ 10. weights without hash
def _flip_weights(directory: Path) -> None:
    """Flip bytes in the tensor data (the end of the file: the header stays readable)."""
    path = directory / "model.safetensors"
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 400, len(data), 3):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _drop_hash(directory: Path) -> None:
    sidecar = directory / "model.json"
    data = json.loads(sidecar.read_text())
    del data["weights_sha256"]
    sidecar.write_text(json.dumps(data))


@pytest.mark.parametrize("hashed", [True, False])
def test_corrupted_weights_are_rebuilt_with_or_without_a_recorded_hash(
    tiny_cfg, tmp_path, caplog, hashed
):
    import torch

    from interplab.models.io import save_model
    from interplab.models.transformer import HookedTransformer
    from interplab.models.weights_cache import cached_model

    good = HookedTransformer(tiny_cfg)
    tokens = torch.randint(
        0, tiny_cfg.d_vocab, (16, tiny_cfg.n_ctx), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        labels = good.model(tokens).argmax(-1)  # the stand-in organism's task: these answers

    def task_check(model) -> str | None:
        with torch.no_grad():
            agree = float((model.model(tokens).argmax(-1) == labels).float().mean())
        return None if agree >= 0.99 else f"agreement {agree:.2f} with its task's answers"

    trained = []

    def train():
        trained.append(1)
        return HookedTransformer(tiny_cfg), {}

    entry = tmp_path / "org"
    save_model(entry, good)
    _flip_weights(entry)
    if not hashed:
        _drop_hash(entry)
    with caplog.at_level("WARNING", logger="interplab.zoo"):
        model, _ = cached_model(entry, "org", train, check=task_check)
    assert trained == [1], "the corrupted cache was rebuilt, never used"
    assert task_check(model) is None
    assert "rebuilding organism org" in caplog.text
    assert ("task check" in caplog.text) == (not hashed)
    assert "weights_sha256" in json.loads((entry / "model.json").read_text())


def test_an_intact_cache_without_hash_is_checked_once_then_its_hash_recorded(tiny_cfg, tmp_path):
    from interplab.models.io import save_model
    from interplab.models.transformer import HookedTransformer
    from interplab.models.weights_cache import cached_model

    entry = tmp_path / "org"
    save_model(entry, HookedTransformer(tiny_cfg))
    _drop_hash(entry)
    checked = []

    def check(model):
        checked.append(1)
        return None

    def train():
        raise AssertionError("an intact cache is not rebuilt")

    cached_model(entry, "org", train, check=check)
    cached_model(entry, "org", train, check=check)
    assert checked == [1], "checked on first use only: the hash verifies it afterwards"
    assert "weights_sha256" in json.loads((entry / "model.json").read_text())
