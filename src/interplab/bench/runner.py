"""Run a bench spec: every job once, results stored as they finish, resumable, optionally parallel."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from interplab.bench.results import write_results_json
from interplab.bench.spec import BenchSpec
from interplab.bench.store import ResultsStore
from interplab.bench.tracks import Job, JobOutput, track

DB_NAME = "results.sqlite"


@dataclass(frozen=True)
class BenchSummary:
    total: int
    skipped: int  # already done in an earlier run
    done: int
    failed: int
    failures: tuple[tuple[str, str], ...]  # (job key, last line of the error)
    seconds: float
    out_dir: Path


def execute_job(job: Job, threads: int | None = None) -> tuple[list[dict], dict, float, str | None]:
    """Run one job, catching its error. Returns (rows, artifacts, seconds, error or None)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        output: JobOutput = track(job.track).run_job(job)
        seconds = time.perf_counter() - start
        rows = [{"organism": job.organism, "method": job.method, "ablation": job.ablation,
                 "seconds": seconds, **r} for r in output.rows]
        return rows, output.artifacts, seconds, None
    except Exception:
        return [], {}, time.perf_counter() - start, traceback.format_exc()


def run_bench(spec: BenchSpec, out_dir: str | Path, *, jobs: int = 1, progress: bool = True,
              on_done: Callable[[Job], None] | None = None) -> BenchSummary:
    """Run every job of ``spec`` not already done in ``out_dir/results.sqlite``.

    Results go to the store as each job finishes; ``out_dir/results.json`` is rewritten at the
    end. A failing job is recorded with its traceback and the others continue.
    ``jobs`` > 1 runs jobs in that many worker processes (torch threads split between them).
    """
    out_dir = Path(out_dir)
    start = time.perf_counter()
    all_jobs = spec.jobs()
    with ResultsStore(out_dir / DB_NAME) as store:
        done_before = store.done_keys()
        todo = [j for j in all_jobs if j.key not in done_before]
        failures: list[tuple[str, str]] = []
        bar = _Bar(progress, len(all_jobs), len(all_jobs) - len(todo))

        def finish(job: Job, result: tuple[list[dict], dict, float, str | None]) -> None:
            rows, artifacts, seconds, error = result
            if error is None:
                store.record(job, rows, artifacts, seconds)
            else:
                store.record_failure(job, error, seconds)
                failures.append((job.key, error.strip().splitlines()[-1]))
            bar.advance(job)
            if on_done is not None:
                on_done(job)

        try:
            if jobs <= 1 or len(todo) <= 1:
                for job in todo:
                    bar.start(job)
                    finish(job, execute_job(job))
            else:
                _run_parallel(todo, jobs, finish, bar)
        finally:
            bar.close()
            write_results_json(store, out_dir / "results.json")
        return BenchSummary(len(all_jobs), len(all_jobs) - len(todo), len(todo) - len(failures),
                            len(failures), tuple(failures), time.perf_counter() - start, out_dir)


def _run_parallel(todo: list[Job], jobs: int, finish: Callable, bar: "_Bar") -> None:
    threads = max(1, (os.cpu_count() or 2) // jobs)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(execute_job, job, threads): job for job in todo}
        try:
            for future in cf.as_completed(futures):
                finish(futures[future], future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


class _Bar:
    """A rich progress bar (or nothing when progress is off)."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self._progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"))
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

