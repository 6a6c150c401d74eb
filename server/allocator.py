"""C allocator settings for the long-running server processes: a large message's buffers go back to the
system once freed, instead of staying in the heap for good."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter: allocations of at least this many bytes get pages of their own."""
MMAP_THRESHOLD = 256 * 1024
"""Buffers this big or bigger are mapped on their own and unmapped when freed. Without a fixed value glibc
raises the threshold to the size of each mapped buffer freed (up to 32 MiB): after one 8 MiB message the
next ones come from the heap, and a heap fragmented by small objects keeps that memory (measured: a node
or proxy sent ten bodies of 8 MiB kept 17 to 25 MB more for good)."""


def return_large_buffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make allocations of `threshold` bytes or more mapped on their own for the rest of the process (which
    also stops glibc from adjusting the threshold itself); return whether the allocator took the setting
    (False where the C library is not glibc: macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  # glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
