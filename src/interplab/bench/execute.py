"""Run one bench job where it is: in this process, a pool worker or a Dask worker.

The runner (:mod:`interplab.bench.runner`) and the Dask runner (:mod:`interplab.bench.dask_runner`)
both call :func:`execute_job`; neither imports the other for it.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback
from pathlib import Path

from interplab.bench.tracks import TRACKS, Job, restore
from interplab.core.workers import WATCHDOG_SECONDS, exit_with_parent  # noqa: F401 (re-exported)

JobResult = tuple[list[dict], dict, float, "str | None"]  # rows, artifacts, seconds, error


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask (``taskset``, a cgroup cpuset, SLURM,
    ``docker --cpuset-cpus``) and, where the cgroup caps CPU time (``docker --cpus``, a
    Kubernetes limit), that quota rounded up. ``--jobs`` defaults to this number and is
    checked against it, so the default command always passes its own check."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, quota)
    return max(1, cores)


def _cgroup_cpu_quota(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int | None:
    """The CPU quota of this process's cgroup (and its parents) in whole CPUs, rounded up;
    None where there is none or it cannot be read (not Linux, no cgroup file system)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[int] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, rel = parts[1], parts[2].lstrip("/")
        if controllers == "":  # cgroup v2: cpu.max = "<quota|max> <period>" at each level
            where = root / rel if (root / "cgroup.controllers").exists() else root / "unified" / rel
            files: list[tuple[Path, Path | None]] = [
                (d / "cpu.max", None) for d in (where, *where.parents) if _under(d, root)
            ]
        elif "cpu" in controllers.split(","):  # cgroup v1: cfs quota and period
            base = root / controllers
            if not base.is_dir():
                base = root / "cpu"
            where = base / rel
            files = [
                (d / "cpu.cfs_quota_us", d / "cpu.cfs_period_us")
                for d in (where, *where.parents)
                if _under(d, base)
            ]
        else:
            continue
        for quota_file, period_file in files:
            limit = _read_quota(quota_file, period_file)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _under(directory: Path, root: Path) -> bool:
    return directory == root or root in directory.parents


def _read_quota(quota_file: Path, period_file: Path | None) -> int | None:
    try:
        if period_file is None:
            quota_text, period_text = quota_file.read_text().split()[:2]
        else:
            quota_text, period_text = (
                quota_file.read_text().strip(),
                period_file.read_text().strip(),
            )
        if quota_text in ("max", "-1"):
            return None
        quota, period = int(quota_text), int(period_text)
    except (OSError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def init_worker(
    parent_pid: int, track_modules: dict[str, str], tracks: bytes, threads: int
) -> None:
    """Process-pool worker setup, in the order that keeps a worker from outliving the bench:
    first :func:`exit_with_parent` (this module imports no torch, so a worker is guarded
    within a fraction of a second of starting, not after the seconds torch takes to import),
    then Ctrl-C left to the main process (it cancels and terminates, see the runner), then the
    parent's tracks (``tracks``: the registered ones, pickled, so that what they import loads
    only now) and torch thread count."""
    import pickle

    exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    restore(track_modules, pickle.loads(tracks))
    import torch

    torch.set_num_threads(threads)


def execute_job(job: Job, threads: int | None = None) -> JobResult:
    """Run one job with ``threads`` torch threads, catching its error.
    Returns (rows as the store writes them, artifacts, seconds, error or None): each row is the
    track's :class:`~interplab.bench.track.Row` with the job's fields filled in once, here."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        output = TRACKS[job.track].run(job)
        seconds = time.perf_counter() - start
        rows = [r.for_job(job, seconds).as_dict() for r in output.rows]
        return rows, output.artifacts, seconds, None
    except Exception:
        return [], {}, time.perf_counter() - start, traceback.format_exc()
