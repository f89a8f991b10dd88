"""Run one bench job where it is: in this process, a pool worker or a Dask worker.

The runner (:mod:`interplab.bench.runner`) and the Dask runner (:mod:`interplab.bench.dask_runner`)
both call :func:`execute_job`; neither imports the other for it.
"""

from __future__ import annotations

import os
import time
import traceback

from interplab.bench.tracks import TRACKS, Job

JobResult = tuple[list[dict], dict, float, "str | None"]  # rows, artifacts, seconds, error


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
