"""Worker processes that never outlive the process that started them.

A pool worker (the bench's process pool, ``interplab zoo train``'s) that loses its parent would
otherwise run on as an orphan, finishing work nobody will collect. :func:`exit_with_parent` is
the first thing such a worker runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

#: seconds between a worker's checks that the process that started it is still there
WATCHDOG_SECONDS = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """Make this worker process exit when ``parent_pid`` (the bench's main process, its parent)
    dies, however it dies (SIGKILL included): otherwise the workers (hundreds of MB each) run
    on as orphans. On Linux the kernel sends SIGKILL at once (``PR_SET_PDEATHSIG``); everywhere
    a daemon thread checks ``os.getppid()`` every :data:`WATCHDOG_SECONDS` and exits when the
    parent is gone (the worker was re-parented), which also covers a parent that died before
    this ran."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog still runs
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="interplab-parent-watchdog", daemon=True
    ).start()


_PR_SET_PDEATHSIG = 1


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCHDOG_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


__all__ = ["WATCHDOG_SECONDS", "exit_with_parent"]
