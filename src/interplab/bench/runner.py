"""Run a bench spec: every job once, results stored as they finish, resumable, optionally parallel.

Each job runs with a fixed number of torch threads (``threads_per_job``, default 1): on a busy
machine torch's default (one thread per core, in every process) made one ACDC job 20× slower.
Whatever goes wrong while a job's results are *recorded* (a NaN, a value that is not a number,
an artifact that is not JSON) becomes a recorded failure of that job; the run goes on. On Ctrl-C
the finished jobs stay stored, results.json is written, and :class:`BenchInterrupted` is raised.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interplab.bench.dask_runner import check_cluster, run_dask
from interplab.bench.execute import JobResult, available_cores, execute_job
from interplab.bench.results import last_line, write_results_json
from interplab.bench.spec import BenchSpec
from interplab.bench.store import ResultsStore
from interplab.bench.tracks import TRACK_MODULES, Job, registered, restore
from interplab.errors import ConfigError, ResultsStoreError

DB_NAME = "results.sqlite"

__all__ = [
    "DB_NAME",
    "BenchInterrupted",
    "BenchSummary",
    "JobResult",
    "available_cores",
    "check_parallelism",
    "execute_job",
    "run_bench",
]


@dataclass(frozen=True)
class BenchSummary:
    total: int
    skipped: int  # already done in an earlier run
    done: int
    failed: int
    failures: tuple[tuple[str, str], ...]  # (job key, last line of the error)
    seconds: float
    out_dir: Path


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_bench`, raised after the finished jobs are stored and
    results.json is written. Jobs that were running are not marked done."""

    def __init__(self, finished: int, total: int, out_dir: Path):
        super().__init__(f"interrupted after {finished} of {total} jobs")
        self.finished, self.total, self.out_dir = finished, total, out_dir


def check_parallelism(jobs: int, threads_per_job: int) -> None:
    """Raise ConfigError unless 1 <= jobs <= available cores and threads_per_job >= 1."""
    cores = available_cores()
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if jobs > cores:
        raise ConfigError(
            f"--jobs {jobs} is more than the {cores} CPU cores this process may use; "
            f"pass --jobs {cores} or fewer (each job runs its own torch threads)"
        )
    if threads_per_job < 1:
        raise ConfigError(f"--threads-per-job must be at least 1, got {threads_per_job}")


def run_bench(
    spec: BenchSpec,
    out_dir: str | Path,
    *,
    jobs: int = 1,
    threads_per_job: int = 1,
    progress: bool = True,
    on_done: Callable[[Job], None] | None = None,
    cluster: str | None = None,
) -> BenchSummary:
    """Run every job of ``spec`` not already done in ``out_dir/results.sqlite``.

    Results go to the store as each job finishes; ``out_dir/results.json`` is rewritten at the
    end, also after Ctrl-C (then :class:`BenchInterrupted` is raised). A failing job is recorded
    with its traceback and the others continue. ``jobs`` > 1 runs jobs in that many worker
    processes (at most one per core); every job uses ``threads_per_job`` torch threads, and the
    caller's torch thread count is restored afterwards. ``cluster`` ("local" or a Dask
    scheduler address, :mod:`interplab.bench.dask_runner`) runs the jobs on Dask instead; with
    "local", ``jobs`` is the number of worker processes.

    The store records the spec's fingerprint (``spec``; the whole spec, not the shard), which
    :func:`interplab.bench.merge.merge_stores` checks.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"the output directory {out_dir} is an existing file; pass a directory "
            "with --out (it is created if missing)"
        )
    if cluster is not None:
        check_cluster(cluster)
    if cluster is None or cluster == "local":
        check_parallelism(jobs, threads_per_job)
    start = time.perf_counter()
    all_jobs = spec.jobs()
    with ResultsStore(out_dir / DB_NAME) as store:
        store.set_meta("spec", spec.fingerprint())
        store.set_meta("spec_name", spec.name)
        done_before = store.done_keys()
        todo = [j for j in all_jobs if j.key not in done_before]
        failures: list[tuple[str, str]] = []
        finished = len(all_jobs) - len(todo)
        bar = _Bar(progress, len(all_jobs), finished)

        def finish(job: Job, result: JobResult) -> None:
            nonlocal finished
            _record(store, job, result, failures)
            finished += 1
            bar.advance(job)
            if on_done is not None:
                on_done(job)

        interrupted = False
        try:
            if cluster is not None and todo:
                run_dask(todo, cluster, jobs, threads_per_job, finish)
            elif jobs <= 1 or len(todo) <= 1:
                _run_sequential(todo, threads_per_job, finish, bar)
            else:
                _run_parallel(todo, jobs, threads_per_job, finish)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            write_results_json(store, out_dir / "results.json")
        if interrupted:
            raise BenchInterrupted(finished, len(all_jobs), out_dir)
        return BenchSummary(
            len(all_jobs),
            len(all_jobs) - len(todo),
            len(todo) - len(failures),
            len(failures),
            tuple(failures),
            time.perf_counter() - start,
            out_dir,
        )


def _record(
    store: ResultsStore, job: Job, result: JobResult, failures: list[tuple[str, str]]
) -> None:
    """Store a job's outcome; an error while storing its results becomes its recorded failure."""
    rows, artifacts, seconds, error = result
    if error is None:
        try:
            store.record(job, rows, artifacts, seconds)
            return
        except Exception:
            error = "the job ran but its results could not be recorded:\n" + traceback.format_exc()
    try:
        store.record_failure(job, error, seconds)
    except Exception as exc:
        raise ResultsStoreError(
            f"cannot write to {store.path} ({exc}); the jobs stored so far "
            "are kept: fix the cause and rerun the same command"
        ) from exc
    failures.append((job.key, last_line(error)))


def _run_sequential(todo: list[Job], threads: int, finish: Callable, bar: _Bar) -> None:
    import torch

    previous = torch.get_num_threads()
    try:
        for job in todo:
            bar.start(job)
            finish(job, execute_job(job, threads))
    finally:
        torch.set_num_threads(previous)


def _init_worker(track_modules: dict[str, str], tracks: dict, threads: int) -> None:
    """Worker setup: the parent's tracks (those added at run time too) and thread count."""
    import torch

    restore(track_modules, tracks)
    torch.set_num_threads(threads)


def _run_parallel(todo: list[Job], jobs: int, threads: int, finish: Callable) -> None:
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(dict(TRACK_MODULES), registered(), threads),
    )
    clean = False
    try:
        futures = {pool.submit(execute_job, job, threads): job for job in todo}
        for future in cf.as_completed(futures):
            try:
                result = future.result()
            except Exception:  # the worker died (BrokenProcessPool) or the result did not pickle
                result = ([], {}, 0.0, traceback.format_exc())
            finish(futures[future], result)
        clean = True
    finally:
        # On Ctrl-C or an error, drop the queued jobs and do not wait for the running ones.
        pool.shutdown(wait=clean, cancel_futures=True)


class _Bar:
    """A rich progress bar (or nothing when progress is off)."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self._progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]bench"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total, completed=completed)

    def start(self, job: Job) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=job.key)

    def advance(self, job: Job) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=job.key)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
