"""Keep freed memory in the process instead of handing it back to the OS at every step.

Sampling allocates and frees the same large activations at every solver step. With
glibc's defaults the larger blocks are mapped and unmapped each time and the heap is
trimmed, so the kernel zeroes fresh pages over and over: rolling 64 paths of 450
returns with the cpu preset on 2 cores spent 39.8 s of 175 s CPU time in the
kernel. Telling glibc to serve blocks up to 32 MiB from the heap and to trim only
above 1 GiB cut that to 9-12 s and the median wall time from 84.5 to 63.0 s
(benchmarks/memory_reuse.py), with the same paths bit for bit. Elsewhere (macOS,
musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # blocks below this come from the heap, not fresh mappings
TRIM_THRESHOLD = 1 << 30  # free heap kept before returning it to the OS


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse freed memory (Linux only); True when it took the settings."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
