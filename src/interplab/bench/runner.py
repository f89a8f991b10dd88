"""Run a bench spec: every job once, results stored as they finish, resumable, optionally parallel.

Each job runs with a fixed number of torch threads (``threads_per_job``, default 1): on a busy
machine torch's default (one thread per core, in every process) made one ACDC job 20× slower.
Whatever goes wrong while a job's results are *recorded* (a NaN, a value that is not a number,
an artifact that is not JSON) becomes a recorded failure of that job; the run goes on. On Ctrl-C
the finished jobs stay stored, results.json is written, and :class:`BenchInterrupted` is raised.

Faults the runner guards against (issue 28): ``--jobs`` defaults to the CPUs this process may
use, the number its check uses (:func:`default_jobs`); a store belongs to one spec and seed
(:func:`claim_store`); with parallel jobs, Ctrl-C cancels the queued jobs at once, waits at most
:data:`GRACE_SECONDS` for the running ones (keeping what they finish) and then terminates them,
and a second Ctrl-C stops waiting; workers ignore Ctrl-C (the main process decides) and exit
when the main process dies (:func:`~interplab.bench.execute.exit_with_parent`); an error while
writing results.json never hides the error that stopped the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import pickle
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from interplab.bench.dask_runner import check_cluster, run_dask
from interplab.bench.execute import JobResult, available_cores, execute_job, init_worker
from interplab.bench.results import last_line, write_results_json
from interplab.bench.spec import BenchSpec
from interplab.bench.store import ResultsStore, one_line
from interplab.bench.tracks import TRACK_MODULES, Job, registered
from interplab.errors import ConfigError, InterplabError, ResultsStoreError

DB_NAME = "results.sqlite"
#: seconds that running jobs get to finish after Ctrl-C before their workers are terminated
GRACE_SECONDS = 3.0
#: the files of a run that ``force_new`` moves aside
RUN_FILES = (DB_NAME, "results.json", "report.html")

__all__ = [
    "DB_NAME",
    "BenchInterrupted",
    "BenchSummary",
    "JobResult",
    "available_cores",
    "check_parallelism",
    "claim_store",
    "default_jobs",
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


def default_jobs() -> int:
    """The default ``--jobs``: one job per CPU core this process may use (affinity mask and
    cgroup quota, :func:`available_cores`), the same number :func:`check_parallelism` allows."""
    return available_cores()


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
    force_new: bool = False,
) -> BenchSummary:
    """Run every job of ``spec`` not already done in ``out_dir/results.sqlite``.

    Results go to the store as each job finishes; ``out_dir/results.json`` is rewritten at the
    end, also after Ctrl-C (then :class:`BenchInterrupted` is raised). A failing job is recorded
    with its traceback and the others continue. ``jobs`` > 1 runs jobs in that many worker
    processes (at most one per core); every job uses ``threads_per_job`` torch threads, and the
    caller's torch thread count is restored afterwards. ``cluster`` ("local" or a Dask
    scheduler address, :mod:`interplab.bench.dask_runner`) runs the jobs on Dask instead; with
    "local", ``jobs`` is the number of worker processes.

    The store belongs to one spec and seed (:func:`claim_store`): a store of another one is
    refused, unless ``force_new``, which first moves the folder's results into
    ``out_dir/previous-<time>/`` (nothing is deleted). The store records the spec's
    fingerprint (``spec``; the whole spec, not the shard), which
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
    if force_new:
        move_aside(out_dir)
    with ResultsStore(out_dir / DB_NAME, writable=True) as store:
        claim_store(store, spec, out_dir)
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
        except BaseException as first:
            bar.close()
            _export_after_error(store, out_dir, first)
            raise
        bar.close()
        try:
            _export(store, out_dir)
        except KeyboardInterrupt:  # a second Ctrl-C while writing results.json
            interrupted = True
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


def _export(store: ResultsStore, out_dir: Path) -> None:
    """Write results.json; any failure becomes one line naming the file (the store is safe)."""
    path = out_dir / "results.json"
    try:
        write_results_json(store, path)
    except Exception as exc:
        raise ResultsStoreError(
            f"cannot write {path} ({one_line(exc)}); every finished job is kept in "
            f"{store.path}: fix the cause and rerun the same command to write it"
        ) from None


def _export_after_error(store: ResultsStore, out_dir: Path, first: BaseException) -> None:
    """Write results.json after ``first`` stopped the run; a failure here must not hide
    ``first``: it is added to its message as one more line (or as a note)."""
    try:
        _export(store, out_dir)
    except (Exception, KeyboardInterrupt) as second:
        also = f"also: {one_line(second)}"
        if isinstance(first, InterplabError) and first.args and isinstance(first.args[0], str):
            first.args = (f"{one_line(first.args[0])}\n{also}", *first.args[1:])
        else:
            first.add_note(also)


def move_aside(out_dir: Path) -> Path | None:
    """Move the run files of ``out_dir`` (:data:`RUN_FILES`) into a new
    ``out_dir/previous-<UTC time>/`` folder (``--force-new``): the folder is then free for a
    new spec or seed and nothing is deleted. Returns that folder (None: nothing to move)."""
    present = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = out_dir / f"previous-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = out_dir / f"previous-{stamp}-{n}"
    try:
        target.mkdir()
        for path in present:
            shutil.move(str(path), str(target / path.name))
    except OSError as exc:
        raise ResultsStoreError(
            f"--force-new: cannot move the earlier results of {out_dir} into {target} "
            f"({one_line(exc)}); pass another --out directory instead"
        ) from None
    return target


def claim_store(store: ResultsStore, spec: BenchSpec, out_dir: Path) -> None:
    """Make sure ``store`` holds results of ``spec`` (its fingerprint covers every job key,
    seed included) and of nothing else, and record the spec in it.

    A store of another spec or seed is refused with one line naming both; so is one that
    holds jobs outside the spec (written by an older interplab that mixed specs). A new
    store, or one written before stores recorded their spec, is claimed for ``spec``."""
    fingerprint = spec.fingerprint()
    recorded = store.get_meta("spec")
    way_out = (
        f"a folder holds the results of one spec and seed: pass another --out, or --force-new "
        f"to move the earlier results into {out_dir}/previous-<time>/ and start afresh"
    )
    if recorded is not None and recorded != fingerprint:
        theirs = describe_spec(store.get_meta("spec_name"), _stored_seed(store), recorded)
        ours = describe_spec(spec.name, spec.seed, fingerprint)
        raise ConfigError(f"{out_dir} holds results of {theirs}, not of {ours}; {way_out}")
    keys = {j.key for j in spec.all_jobs()}
    foreign = sorted(j.key for j in store.jobs() if j.key not in keys)
    if foreign:
        raise ConfigError(
            f"{out_dir} holds {len(foreign)} job(s) that are not in "
            f"{describe_spec(spec.name, spec.seed, fingerprint)} (e.g. {foreign[0]}); {way_out}"
        )
    if recorded is None or store.get_meta("seed") is None:
        store.set_meta("spec", fingerprint)
        store.set_meta("spec_name", spec.name)
        store.set_meta("seed", str(spec.seed))
        store.set_meta("spec_keys", "\n".join(sorted(keys)))


def describe_spec(name: str | None, seed: int | str | None, fingerprint: str) -> str:
    """``spec 'quick' (seed 0, fingerprint 1a2b...)`` for messages naming a store's spec."""
    seed_text = "seed unknown" if seed is None else f"seed {seed}"
    return f"spec {name or '?'!r} ({seed_text}, fingerprint {fingerprint})"


def _stored_seed(store: ResultsStore) -> int | str | None:
    seed = store.get_meta("seed")
    if seed is not None:
        return seed
    seeds = sorted({j.seed for j in store.jobs()})
    return seeds[0] if len(seeds) == 1 else (", ".join(map(str, seeds)) or None)


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


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while worker processes are started: they inherit the setting from the
    first instruction on (a Ctrl-C while a worker still imports torch would otherwise print
    its traceback). Only the main thread may change signal handlers; elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _result(future: cf.Future) -> JobResult:
    try:
        return future.result()
    except Exception:  # the worker died (BrokenProcessPool) or the result did not pickle
        return ([], {}, 0.0, traceback.format_exc())


def spread(todo: list[Job]) -> list[Job]:
    """``todo`` reordered so that jobs of one (track, organism) do not start side by side: the
    first job of every group (in order of first appearance), then every group's second, and so
    on. The first job of a group usually builds what the others need (weights, a ground truth,
    activations) under a file lock; started together, its siblings would wait on that lock
    with their cores idle. The set of jobs, and each job's result, are unchanged."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in todo:
        groups.setdefault((job.track, job.organism), []).append(job)
    rounds = max((len(g) for g in groups.values()), default=0)
    return [g[i] for i in range(rounds) for g in groups.values() if i < len(g)]


def _run_parallel(todo: list[Job], jobs: int, threads: int, finish: Callable) -> None:
    todo = spread(todo)
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=ctx,
        initializer=init_worker,
        initargs=(os.getpid(), dict(TRACK_MODULES), pickle.dumps(registered()), threads),
    )
    futures: dict[cf.Future, Job] = {}
    recorded: set[cf.Future] = set()
    try:
        for n, job in enumerate(todo):
            # the first `jobs` submissions start the workers: they inherit "ignore Ctrl-C"
            with _sigint_ignored() if n < jobs else contextlib.nullcontext():
                futures[pool.submit(execute_job, job, threads)] = job
        for future in cf.as_completed(futures):
            recorded.add(future)
            finish(futures[future], _result(future))
    except KeyboardInterrupt:
        _wind_down(pool, futures, recorded, finish)
        raise
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def _wind_down(
    pool: cf.ProcessPoolExecutor,
    futures: dict[cf.Future, Job],
    recorded: set[cf.Future],
    finish: Callable,
) -> None:
    """After Ctrl-C: cancel the queued jobs, record the running ones that end within
    :data:`GRACE_SECONDS` (and those that had ended unrecorded), then terminate the workers.
    A second Ctrl-C stops the waiting at once."""
    try:
        for future in futures:
            future.cancel()  # queued jobs; those already running (or handed over) go on
        left = [f for f in futures if f not in recorded and not f.cancelled()]
        for future in cf.as_completed(left, timeout=GRACE_SECONDS):
            recorded.add(future)
            finish(futures[future], _result(future))
    except (cf.TimeoutError, KeyboardInterrupt):
        pass
    finally:
        _terminate(pool)


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: drop queued jobs, terminate (then kill) its worker processes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 2.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


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
