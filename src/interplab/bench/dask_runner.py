"""Run bench jobs on a Dask cluster (optional extra ``interplab[dask]``).

    --cluster local              a dask.distributed.LocalCluster on this machine (``--jobs``
                                 worker processes, one thread each)
    --cluster tcp://HOST:PORT    an existing scheduler: a laptop (``dask scheduler`` +
                                 ``dask worker``), a Slurm allocation via dask-jobqueue, a
                                 Kubernetes deployment — the same code

Jobs are grouped by (track, organism, seed) and each group is one Dask task, so a worker loads an
organism once for all its methods and ablations. Results come back to this process and go into
the SQLite store as each group finishes (the store is only ever written here, never by a worker).
A worker that dies mid-task loses nothing: the scheduler reruns its task on another worker, and a
job is recorded only when its result arrives, so no job is lost or recorded twice. The store is
the resume point, exactly as with the process pool.

With ``--cluster local`` the worker processes are this process's children: each one watches
this process and exits when it dies (:func:`guard_worker`, armed on every worker at start and
again by every task, so a worker the nanny restarts is covered too), as pool workers do.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from interplab.bench.execute import WATCHDOG_SECONDS, execute_job
from interplab.bench.track import Track
from interplab.bench.tracks import TRACK_MODULES, Job, registered, restore
from interplab.errors import ConfigError, MissingExtraError

#: seconds to wait for a scheduler before giving up with a clear error
CONNECT_TIMEOUT = 5
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://[^\s/]+(:\d+)?/?$")


def check_cluster(cluster: str) -> str:
    """``local`` or a scheduler address (``tcp://host:port``); ConfigError otherwise."""
    if cluster == "local" or _ADDRESS.match(cluster):
        return cluster
    raise ConfigError(
        f"--cluster must be 'local' or a Dask scheduler address such as "
        f"tcp://127.0.0.1:8786, got {cluster!r}"
    )


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtraError(
            "--cluster needs Dask: pip install 'interplab[dask]' (or run "
            "without --cluster: the process pool needs no extra)"
        ) from None
    return distributed


def connect(cluster: str, workers: int) -> tuple[Any, Callable[[], None]]:
    """A Dask client for ``cluster`` and a function that closes what was started here."""
    distributed = _distributed()
    check_cluster(cluster)
    if cluster == "local":
        local = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = distributed.Client(local)
        try:
            client.run(guard_worker, os.getpid())
        except Exception:  # each task arms the guard again (execute_group)
            pass

        def close() -> None:
            client.close()
            local.close()

        return client, close
    try:
        client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {cluster} within {CONNECT_TIMEOUT} s "
            f"({type(exc).__name__}); start one (`dask scheduler`, then `dask worker "
            f"{cluster}`) or check the address"
        ) from None
    return client, client.close


def calls_submitter(
    cluster: str, workers: int
) -> tuple[Callable[[Callable[..., Any], list[tuple]], Iterator[Any]], Callable[[], None]]:
    """Run plain function calls on ``cluster``: returns ``submit(fn, calls)``, which yields each
    call's result as it arrives (one Dask task per call; a task whose worker dies is given to
    another worker by the scheduler), and a function that closes what was started here. Used by
    ``interplab zoo train`` (:func:`interplab.zoo.twin_zoo.train_zoo`)."""
    client, close = connect(cluster, workers)
    distributed = _distributed()

    def submit(fn: Callable[..., Any], calls: list[tuple]) -> Iterator[Any]:
        futures = [client.submit(fn, *args, pure=False) for args in calls]
        for fut in distributed.as_completed(futures):
            yield fut.result()

    return submit, close


def group_jobs(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by (track, organism, seed), in order of first appearance."""
    groups: dict[tuple[str, str, int], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.track, job.organism, job.seed), []).append(job)
    return list(groups.values())


_GUARDED: set[int] = set()


def guard_worker(main_pid: int) -> None:
    """Make this local-cluster worker exit when ``main_pid`` (the bench process, whose child
    it is) dies: a daemon thread checks its parent every
    :data:`~interplab.bench.execute.WATCHDOG_SECONDS`. Only a watchdog, no parent-death signal:
    the nanny starts workers from an event-loop thread, and Linux sends that signal when the
    starting *thread* ends. Idempotent; does nothing in a process that is not ``main_pid``'s
    child (a worker of a remote cluster)."""
    if main_pid in _GUARDED or os.getppid() != main_pid:
        return
    _GUARDED.add(main_pid)

    def watch() -> None:
        while True:
            threading.Event().wait(WATCHDOG_SECONDS)
            if os.getppid() != main_pid:
                os._exit(1)

    threading.Thread(target=watch, name="interplab-parent-watchdog", daemon=True).start()


def execute_group(
    jobs: list[Job],
    threads: int,
    track_modules: dict[str, str],
    tracks: dict[str, Track] | None = None,
    main_pid: int | None = None,
) -> list:
    """Run one group on a worker: every job with ``threads`` torch threads (the organism is
    built once: tracks cache their organisms per process). ``track_modules`` and ``tracks``:
    the caller's tracks, those added at run time included. ``main_pid`` (local cluster):
    :func:`guard_worker`."""
    if main_pid is not None:
        guard_worker(main_pid)
    restore(track_modules, tracks or {})
    return [execute_job(job, threads) for job in jobs]


def run_dask(
    todo: list[Job], cluster: str, workers: int, threads: int, finish: Callable[[Job, Any], None]
) -> None:
    """Run ``todo`` on ``cluster``; ``finish(job, result)`` is called here as results arrive."""
    distributed = _distributed()
    client, close = connect(cluster, workers)
    futures: dict[Any, list[Job]] = {}
    try:
        run_id = uuid.uuid4().hex[:8]
        for n, group in enumerate(group_jobs(todo)):
            future = client.submit(
                execute_group,
                group,
                threads,
                dict(TRACK_MODULES),
                registered(),
                os.getpid() if cluster == "local" else None,
                key=f"interplab-{run_id}-{n}-{group[0].organism}",
                pure=False,
            )
            futures[future] = group
        for future in distributed.as_completed(list(futures)):
            group = futures[future]
            try:
                results = future.result()
            except Exception:  # the task failed on every worker it was given (e.g. KilledWorker)
                error = traceback.format_exc()
                results = [([], {}, 0.0, error)] * len(group)
            for job, result in zip(group, results):
                finish(job, result)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        close()
