"""Keep the cyclic garbage collector from pausing the stream.

A gateway on the simulator holds ~2.4 M GC-tracked objects after start-up (the generated market), and
a whole-market burst allocates thousands more every 3 s. Every so often that triggers a full (gen 2)
collection, which walks all of them: ~0.5 s during which no frame leaves the event loop (measured:
publish p99 609 ms -> 190 ms with the start-up objects frozen, see bench/RESULTS.md). The objects made at
start-up live as long as the process, so once the feed is live we collect once and ``gc.freeze()``
them into the permanent generation, and raise the young-generation threshold so bursts cause fewer
collections. Pure CPython API: works the same on Windows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: young collections every 50k net allocations instead of 700 (a burst allocates ~10-20k objects)
GEN0_THRESHOLD = 50_000

_done = False  # once per process: later apps in the same process (tests) find it done


def freeze_startup_objects() -> tuple[int, float]:
    """Collect, freeze what survives, and raise the gen-0 threshold. Returns (objects frozen, seconds)."""
    t0 = time.perf_counter()
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    return gc.get_freeze_count(), time.perf_counter() - t0


async def freeze_when_live(is_live: Callable[[], bool], timeout: float = 300.0, poll: float = 0.5) -> None:
    """Wait until the quote feed is live (start-up allocations done), then freeze them once."""
    global _done
    if _done:
        return
    deadline = time.monotonic() + timeout
    while not is_live():
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(poll)
    if _done:
        return
    _done = True
    frozen, seconds = freeze_startup_objects()
    logger.info(
        "gc: froze %d start-up objects in %.2f s; gen-0 threshold %d", frozen, seconds, GEN0_THRESHOLD
    )
