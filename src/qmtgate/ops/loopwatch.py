"""Event-loop watchdog: notices when the gateway's event loop stops answering and says what it was doing.

Everything a client sees (HTTP answers, WebSocket frames, pongs, the hub's pump) runs on one asyncio
loop. Code that holds it for a second (a large synchronous encode, a GC pause, a resume over a huge
window) delays every client at once, and clients that time out reconnect and add more work: a storm.
asyncio's own slow-callback report needs debug mode, which is far too costly in production.

A daemon thread posts a timestamped no-op to the loop every ``interval`` seconds. The time until it
runs is the loop's lag (a histogram in the metrics). When the loop has not answered for ``threshold``
seconds, the thread takes the loop thread's current Python stack (``sys._current_frames``, no
signals, so it works on Windows) and logs it once per stall, then the stall's total length when the
loop answers again. A garbage collection holds the loop at whatever line allocated last, so the
watchdog also follows the collector (``gc.callbacks``) and says when a stall is a collection, with
the longest collection per generation in its stats. Cheap: one callback per interval; a stack is only
formatted on a stall.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class Stall:
    """One period in which the loop did not answer for at least the threshold."""

    began: float  # epoch seconds
    seconds: float  # how long the loop did not answer (final once ``ended``)
    stack: str  # the loop thread's Python stack when the stall was noticed
    ended: bool = False
    gc_generation: int | None = None  # a collection of this generation was running when noticed


@dataclass
class LoopWatchStats:
    beats: int = 0
    max_lag: float = 0.0
    stalls: int = 0
    stalled_seconds: float = 0.0
    recent: deque[Stall] = field(default_factory=lambda: deque(maxlen=20))
    gc_max_seconds: dict[int, float] = field(default_factory=dict)  # longest collection per generation
    gc_seconds: float = 0.0  # time in collections of generation 2 (the ones that can stall)


class LoopWatch:
    """Measures the event loop's responsiveness from a thread; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        interval: float = 0.25,
        threshold: float = 1.0,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        if interval <= 0 or threshold <= 0:
            raise ValueError("interval and threshold must be positive")
        self.loop = loop
        self.interval = interval
        self.threshold = threshold
        self.on_lag = on_lag  # e.g. a histogram's observe; called on the watchdog thread
        self.stats = LoopWatchStats()
        self._loop_thread: int | None = None
        self._answered = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gc_started: tuple[float, int] | None = None  # (monotonic, generation) of a running collection

    def start(self) -> None:
        """Start watching; call from the loop's own thread (it records which thread to sample)."""
        self._loop_thread = threading.get_ident()
        gc.callbacks.append(self._on_gc)
        self._thread = threading.Thread(target=self._run, name="qmtgate-loop-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        self._answered.set()
        if self._thread is not None:
            self._thread.join(2 * self.threshold + self.interval)
            self._thread = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:  # in whichever thread collects
        generation = info.get("generation", 0)
        if phase == "start":
            self._gc_started = (time.monotonic(), generation)
            return
        started, self._gc_started = self._gc_started, None
        if started is not None:
            took = time.monotonic() - started[0]
            stats = self.stats
            if took > stats.gc_max_seconds.get(generation, 0.0):
                stats.gc_max_seconds[generation] = took
            if generation == 2:
                stats.gc_seconds += took

    def _beat(self, posted: float) -> None:  # on the loop
        lag = time.monotonic() - posted
        self.stats.beats += 1
        self.stats.max_lag = max(self.stats.max_lag, lag)
        if self.on_lag is not None:
            self.on_lag(lag)
        self._answered.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._answered.clear()
            posted = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(self._beat, posted)
            except RuntimeError:  # the loop is closed
                return
            if not self._answered.wait(self.threshold):
                if self._stop.is_set():
                    return
                collecting = self._gc_started
                stall = Stall(time.time() - self.threshold, self.threshold, self._loop_stack())
                stall.gc_generation = collecting[1] if collecting is not None else None
                self.stats.stalls += 1
                self.stats.recent.append(stall)
                what = (
                    f"a generation-{collecting[1]} garbage collection, triggered at"
                    if collecting is not None
                    else "it is running"
                )
                logger.warning(
                    "event loop not answering for %.1f s; %s:\n%s", self.threshold, what, stall.stack
                )
                while not self._answered.wait(self.interval) and not self._stop.is_set():
                    pass
                stall.seconds = time.monotonic() - posted
                stall.ended = True
                self.stats.stalled_seconds += stall.seconds
                logger.warning("event loop answered again after %.2f s", stall.seconds)
            self._stop.wait(self.interval)

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread or -1)
        if frame is None:
            return "(loop thread not found)"
        return "".join(traceback.format_stack(frame, limit=25))
