"""The allocator setting of the server processes, in a fresh Python each time: after large buffers are
freed, the heap does not keep them."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")

SCRIPT = textwrap.dedent(
    """
    import ctypes, sys
    from server.allocator import return_large_buffers

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "set":
        assert return_large_buffers()
    kept = []
    for number in range(10):  # like ten message bodies of 8 MiB, each freed after use
        body = b"x" * (8 << 20)
        kept.append(bytes(200))  # small objects allocated meanwhile stay
        del body
    print(libc.mallinfo2().arena)
    """
)


def heap_after_large_buffers(mode: str) -> int:
    """Return the bytes glibc's main heap holds after a fresh Python used and freed ten 8 MiB buffers."""
    run = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(run.stdout)


def test_freed_large_buffers_leave_the_heap_once_the_threshold_is_fixed() -> None:
    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc older than 2.33 has no mallinfo2")
    # Without the setting glibc raises its threshold after the first buffer, and the heap keeps the rest.
    assert heap_after_large_buffers("default") >= 8 << 20
    assert heap_after_large_buffers("set") < 8 << 20
