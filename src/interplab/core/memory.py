"""Process memory behaviour that matters for caching activations on CPU.

Caching keeps a forward pass's activations alive together. With glibc's default malloc, large
blocks are mmap-ed and returned to the OS when freed, so every cached run faults its pages in
afresh; on small models that costs more than the hooks themselves (measured in
``benchmarks/hook_overhead.py``). :func:`retain_freed_memory` asks glibc to keep freed memory
for reuse instead. It is opt-in because it changes the whole process: memory freed by Python
is kept by the process (resident size stays at its high-water mark).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


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
