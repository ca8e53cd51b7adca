"""Keep the cyclic garbage collector from pausing the stream.

Two measures, both pure CPython API (they work the same on Windows):

1. **Freeze the start-up objects** (:func:`freeze_startup_objects`), so full collections stop walking the
   generated market.
2. **Collect when the stream is quiet** (:class:`QuietCollector`). Even frozen, a gateway's young
   collections each walk the ~50,000 objects a few whole-market bursts leave behind (the SDK's tick
   dicts and ladder lists, the hub's updates): 35-57 ms on the loaded 2-vCPU bench box, collecting
   nothing, and CPython starts one whenever an allocation crosses the threshold, i.e. in the middle of
   a burst's publish. A gateway probe (session 7) found one right after every third or fourth burst's
   publish, holding back all 50 clients' frames by its length. The collector turns automatic
   collection off and runs the same collections itself, choosing the generation as CPython would,
   between bursts: when the hub's inbox and every client's outbox are empty. It never defers for
   longer than ``max_deferral`` seconds (an overloaded gateway still collects), and gives automatic
   collection back when it stops.

Why the freeze: a gateway on the simulator holds ~2.4 M GC-tracked objects after start-up (the generated market), and
a whole-market burst allocates thousands more every 3 s. Every so often that triggers a full (gen 2)
collection, which walks all of them: ~0.5 s during which no frame leaves the event loop (measured:
publish p99 609 ms -> 190 ms with the start-up objects frozen, see bench/RESULTS.md). The objects made at
start-up live as long as the process, so once the feed is live we collect once and ``gc.freeze()``
them into the permanent generation, and raise the young-generation threshold so bursts cause fewer
collections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


async def freeze_when_live(
    is_live: Callable[[], bool],
    timeout: float = 300.0,
    poll: float = 0.5,
    then: Callable[[], None] | None = None,
) -> None:
    """Wait until the quote feed is live (start-up allocations done), then freeze them once and call
    ``then`` (e.g. start a :class:`QuietCollector`)."""
    global _done
    if not _done:
        deadline = time.monotonic() + timeout
        while not is_live():
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(poll)
    if not _done:
        _done = True
        frozen, seconds = freeze_startup_objects()
        logger.info(
            "gc: froze %d start-up objects in %.2f s; gen-0 threshold %d", frozen, seconds, GEN0_THRESHOLD
        )
    if then is not None:
        then()


#: a full (generation 2) collection walks everything made since the freeze (the replay ring's ~500,000
#: updates): 0.1-0.4 s. CPython itself rations them (only when a quarter of the long-lived objects are
#: new); the quiet collector allows one per this many seconds and runs a generation-1 collection instead.
FULL_COLLECTION_SECONDS = 600.0


@dataclass
class CollectorStats:
    """What the quiet collector did: collections per generation and their pauses (seconds)."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    overdue: int = 0  # collections run while the stream was busy, because they were deferred too long
    pause_total: float = 0.0
    pause_max: float = 0.0


class QuietCollector:
    """Runs the cyclic GC's collections between bursts instead of whenever an allocation crosses a threshold.

    ``is_quiet`` says whether nothing is on a burst's path right now (the app passes the hub's and the
    quote cache's view). Every ``interval`` seconds the collector looks at the allocation counts; when
    a collection is due it runs it at the first quiet look, or after ``max_deferral`` seconds whatever
    the stream is doing. The generation is chosen as CPython's own rule does (the oldest generation whose
    count passed its threshold), except that a full collection comes at most once per
    ``full_every`` seconds (a generation-1 collection otherwise).
    """

    def __init__(
        self,
        is_quiet: Callable[[], bool],
        *,
        interval: float = 0.05,
        max_deferral: float = 2.0,
        full_every: float = FULL_COLLECTION_SECONDS,
        on_collect: Callable[[int, float, bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.is_quiet = is_quiet
        self.interval = interval
        self.max_deferral = max_deferral
        self.full_every = full_every
        self.on_collect = on_collect
        self.clock = clock
        self.stats = CollectorStats()
        self._due_since: float | None = None
        self._last_full = clock()
        self._task: asyncio.Task[None] | None = None
        self._was_enabled = True

    def start(self) -> None:
        """Take over from automatic collection (on the running loop)."""
        if self._task is not None:
            return
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._task = asyncio.create_task(self._run(), name="qmtgate-gc-quiet")

    async def stop(self) -> None:
        """Give collection back to CPython."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self._was_enabled:
                gc.enable()

    def due(self) -> int | None:
        """The generation CPython would collect now, or None when no collection is due."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return None
        generation = 0
        for gen in (1, 2):  # CPython's collect_generations: the oldest one whose count passed its threshold
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                generation = gen
        if generation == 2 and self.clock() - self._last_full < self.full_every:
            generation = 1
        return generation

    def poll(self) -> int | None:
        """One look: collect if a collection is due and it is quiet (or overdue). Returns the generation
        collected, if any."""
        generation = self.due()
        now = self.clock()
        if generation is None:
            self._due_since = None
            return None
        if self._due_since is None:
            self._due_since = now
        overdue = now - self._due_since >= self.max_deferral
        if not overdue and not self.is_quiet():
            return None
        t0 = time.perf_counter()
        gc.collect(generation)
        pause = time.perf_counter() - t0
        self._due_since = None
        if generation == 2:
            self._last_full = now
        st = self.stats
        st.collections[generation] += 1
        st.overdue += overdue
        st.pause_total += pause
        st.pause_max = max(st.pause_max, pause)
        if self.on_collect is not None:
            self.on_collect(generation, pause, overdue)
        return generation

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poll()
            except Exception:  # the collector must not die: CPython would otherwise never collect again
                logger.exception("quiet garbage collection failed")
