"""Process memory behaviour that matters for caching activations on CPU.

Caching keeps a forward pass's activations alive together. With glibc's default malloc, large
blocks are mmap-ed and returned to the OS when freed, so every cached run faults its pages in
afresh; on small models that costs more than the hooks themselves (measured in
``benchmarks/hook_overhead.py``). :func:`retain_freed_memory` asks glibc to keep freed memory
for reuse instead.

By default the first hooked run (:func:`interplab.core.hooks.hooks_removed_after`) applies it
with bounded thresholds (:func:`keep_freed_memory_for_hooks`: blocks under 64 MiB come from the
heap, and at most 256 MiB of freed memory is kept), which brings caching every site to within
1.15× of a plain forward pass without any opt-in. :func:`return_freed_memory` (call it before
the first hooked run) opts out: glibc's defaults stay untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: the bounded thresholds the default policy applies
HOOK_MMAP_THRESHOLD = 64 << 20
HOOK_TRIM_THRESHOLD = 256 << 20
_policy = {"auto": True, "applied": False}


def keep_freed_memory_for_hooks() -> None:
    """The default policy, run by every hooked run: the first call (unless
    :func:`return_freed_memory` was called) applies :func:`retain_freed_memory` with the bounded
    :data:`HOOK_MMAP_THRESHOLD` / :data:`HOOK_TRIM_THRESHOLD`; later calls cost one dict lookup."""
    if _policy["applied"] or not _policy["auto"]:
        return
    _policy["applied"] = True
    retain_freed_memory(HOOK_MMAP_THRESHOLD, HOOK_TRIM_THRESHOLD)


def return_freed_memory() -> None:
    """Opt out of the default policy (call before the first hooked run; a policy already applied
    stays for the life of the process)."""
    _policy["auto"] = False


def retain_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 31) -> bool:
    """Serve allocations below ``mmap_threshold`` bytes from the heap and return freed memory to
    the OS only above ``trim_threshold`` bytes. Returns False (and changes nothing) where the C
    library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, min(mmap_threshold, 2**31 - 1)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, min(trim_threshold, 2**31 - 1)) == 1 and ok
    return ok
