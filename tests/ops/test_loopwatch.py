"""The event-loop watchdog: measures lag, and names the code that holds the loop during a stall."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from qmtgate.ops.loopwatch import LoopWatch


def _hold_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # a synchronous call on the loop: what the watchdog exists to catch


def test_a_stall_is_reported_with_the_stack_that_held_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    lags: list[float] = []

    async def run() -> LoopWatch:
        watch = LoopWatch(asyncio.get_running_loop(), interval=0.05, threshold=0.3, on_lag=lags.append)
        watch.start()
        await asyncio.sleep(0.3)  # healthy beats first
        _hold_the_loop_for(0.9)
        await asyncio.sleep(0.3)  # the loop answers again; the stall is closed
        watch.stop()
        return watch

    with caplog.at_level(logging.WARNING, logger="qmtgate.ops.loopwatch"):
        watch = asyncio.run(run())
    assert watch.stats.stalls == 1
    stall = watch.stats.recent[0]
    assert stall.ended and 0.8 <= stall.seconds < 2.0
    assert "_hold_the_loop_for" in stall.stack  # the culprit, by name
    assert watch.stats.max_lag >= 0.8 and max(lags) >= 0.8
    assert min(lags) < 0.05  # healthy beats are answered at once
    messages = [r.getMessage() for r in caplog.records]
    assert any("not answering" in m and "_hold_the_loop_for" in m for m in messages)
    assert any("answered again after" in m for m in messages)


def test_a_healthy_loop_has_no_stalls() -> None:
    async def run() -> LoopWatch:
        watch = LoopWatch(asyncio.get_running_loop(), interval=0.02, threshold=0.5)
        watch.start()
        await asyncio.sleep(0.4)
        watch.stop()
        return watch

    watch = asyncio.run(run())
    assert watch.stats.stalls == 0 and watch.stats.beats >= 5


def test_bad_settings_are_refused() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError):
            LoopWatch(loop, interval=0)
    finally:
        loop.close()


def test_a_stall_during_a_garbage_collection_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """A full collection holds the loop at whatever line allocated last; the report must name the GC."""

    async def run() -> LoopWatch:
        watch = LoopWatch(asyncio.get_running_loop(), interval=0.05, threshold=0.3)
        watch.start()
        await asyncio.sleep(0.1)
        watch._on_gc("start", {"generation": 2})  # what gc.callbacks tells it when a collection begins
        _hold_the_loop_for(0.6)
        watch._on_gc("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
        await asyncio.sleep(0.2)
        watch.stop()
        return watch

    with caplog.at_level(logging.WARNING, logger="qmtgate.ops.loopwatch"):
        watch = asyncio.run(run())
    # a loaded box may add a stall of its own (the start-up sleep held past the threshold): the held one
    # is the one during the collection
    assert watch.stats.stalls >= 1 and any(s.gc_generation == 2 for s in watch.stats.recent)
    assert 0.5 <= watch.stats.gc_max_seconds[2] < 3.0 and watch.stats.gc_seconds >= 0.5
    assert any("generation-2 garbage collection" in r.getMessage() for r in caplog.records)
    assert watch._on_gc not in __import__("gc").callbacks  # stop() unhooks it
