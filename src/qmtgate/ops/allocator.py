"""Let freed large buffers go back to the operating system (glibc only).

The gateway allocates big short-lived buffers all day: a whole-market burst's numpy columns and Arrow
frames (~0.5 MB each, every 3 s), and on the simulator a 15-minute segment's arrays (~14 MB each). glibc
serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB) with their own ``mmap``, returned to the OS on
``free``; but each time such a block is freed it *raises* the threshold to that block's size (up to
32 MiB). After the first segment, every buffer of that size comes from the heap instead, and the heap
keeps its high-water mark: measured in a 12-minute soak (bench/RESULTS.md), RSS grew 1,424 -> 1,656 MB
with the dynamic threshold and 1,209 -> 1,325 MB with it pinned, the same data held in both.

Setting the threshold explicitly turns the dynamic adjustment off (glibc's ``mallopt`` contract; the same
as ``MALLOC_MMAP_THRESHOLD_`` in the environment). The gateway pins it at 4 MiB (``hub.mmap_threshold``):
the segment arrays are mapped and unmapped, while the ~0.5 MB burst buffers, which recur at the same
sizes every 3 s and are reused in place, stay on the heap. Pinned at glibc's own 128 KiB default, every
such buffer became a fresh mapping to fault in, and the simulator took 35 s instead of 13 s to start.
Windows' heap already hands blocks above ~512 KiB to ``VirtualAlloc`` and back, musl and macOS have no
such knob: there this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import MutableMapping

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
DEFAULT_THRESHOLD = 4 * 1024 * 1024


def pin_mmap_threshold(nbytes: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process. True when it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    if done:
        logger.debug("malloc: mmap threshold pinned at %d bytes", nbytes)
    return done


#: pyarrow's default allocator for ``qmtgate serve`` (pyarrow's own knob, read once, before its first buffer)
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_system_arrow_pool(environ: MutableMapping[str, str] | None = None) -> str:
    """Have pyarrow allocate from the C runtime's allocator in this process unless the user chose a pool.

    Called by the console script before anything imports pyarrow (the variable is read when pyarrow's C++
    default pool is first made; ``pyarrow.set_memory_pool`` later changes only pyarrow's Python-level
    default, not the pool the IPC writer and the compression codecs use). pyarrow's bundled mimalloc keeps
    the pages of freed buffers resident: a gateway encoding a whole-market frame per burst for 50 clients
    held ~14 MB of them (bench/RESULTS.md, issue 22), with no difference in the frames' latency. Returns
    the pool that will be used."""
    env = os.environ if environ is None else environ
    return env.setdefault(ARROW_POOL_VARIABLE, "system")
