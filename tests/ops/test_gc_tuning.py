"""The start-up freeze: objects alive at start-up leave the collector's generations, young GCs get rarer."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmtgate.ops.gc_tuning import GEN0_THRESHOLD, QuietCollector, freeze_startup_objects


def test_freeze_moves_live_objects_to_the_permanent_generation() -> None:
    before = gc.get_threshold()
    keep = [[i] for i in range(10_000)]  # tracked objects that outlive start-up
    try:
        frozen, seconds = freeze_startup_objects()
        assert frozen >= len(keep) and seconds >= 0
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert not any(gc.get_objects(generation=2)) or len(gc.get_objects(generation=2)) < frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


# -- the quiet collector: CPython's collections, run between bursts --------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Small thresholds so a test can make a collection due; everything restored afterwards."""
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()  # no automatic collection resets the counts under the test
    gc.collect()
    gc.set_threshold(100, 3, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if enabled:
            gc.enable()


def _make_due() -> list[list[int]]:
    return [[i] for i in range(500)]  # 500 tracked objects: past the generation-0 threshold of 100


def test_nothing_is_collected_until_a_collection_is_due(thresholds: None) -> None:
    collector = QuietCollector(lambda: True, clock=_Clock())
    gc.collect()
    assert collector.due() is None and collector.poll() is None
    keep = _make_due()
    assert collector.due() == 0
    assert collector.poll() == 0 and gc.get_count()[0] < 100 and keep
    assert collector.stats.collections == [1, 0, 0] and collector.stats.overdue == 0


def test_a_due_collection_waits_for_quiet_then_runs(thresholds: None) -> None:
    quiet = [False]
    clock = _Clock()
    collector = QuietCollector(lambda: quiet[0], clock=clock, max_deferral=2.0)
    keep = _make_due()
    assert collector.poll() is None  # a burst is on its way: deferred
    clock.now += 1.0
    assert collector.poll() is None and gc.get_count()[0] >= 100
    quiet[0] = True
    assert collector.poll() == 0 and keep
    assert collector.stats.overdue == 0


def test_a_collection_deferred_too_long_runs_even_when_busy(thresholds: None) -> None:
    clock = _Clock()
    seen: list[tuple[int, bool]] = []
    collector = QuietCollector(
        lambda: False, clock=clock, max_deferral=2.0, on_collect=lambda g, _s, o: seen.append((g, o))
    )
    keep = _make_due()
    assert collector.poll() is None
    clock.now += 2.5
    assert collector.poll() == 0 and keep
    assert seen == [(0, True)] and collector.stats.overdue == 1


def test_the_generation_follows_cpython_and_full_collections_are_rationed(thresholds: None) -> None:
    clock = _Clock()
    collector = QuietCollector(lambda: True, clock=clock, full_every=600.0)
    gens = []
    keep = []
    for _ in range(80):  # 16 generation-1 collections: generation 2 is due after the 11th
        keep.append(_make_due())
        gens.append(collector.poll())
    # as CPython: a generation-1 collection once more than 3 (its threshold) young ones ran; generation
    # 2 is due after more than 10 of those, but comes at most once per 600 s: until then a
    # generation-1 collection stands in for it
    assert gens[:6] == [0, 0, 0, 0, 1, 0]
    assert 2 not in gens
    clock.now += 601.0
    keep.append(_make_due())
    assert collector.poll() == 2
    assert collector.stats.collections[2] == 1


def test_the_collector_takes_over_from_automatic_collection_and_gives_it_back() -> None:
    async def run() -> tuple[bool, bool, bool]:
        enabled_before = gc.isenabled()
        collector = QuietCollector(lambda: True, interval=0.01)
        collector.start()
        during = gc.isenabled()
        await asyncio.sleep(0.05)
        await collector.stop()
        return enabled_before, during, gc.isenabled()

    before, during, after = asyncio.run(run())
    assert before and not during and after


def test_an_embedded_app_leaves_the_collector_alone() -> None:
    """Only `qmtgate serve` (process_tuning=True) freezes and takes over collection; an app built by a
    test or embedded in another program must not change the interpreter it lives in."""
    from fastapi.testclient import TestClient

    from qmtgate.api.app import create_app
    from qmtgate.config import Settings

    frozen_before, enabled_before = gc.get_freeze_count(), gc.isenabled()
    app = create_app(Settings(source="sim"))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/api/v1/health/ready").json().get("state") != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while not app.state.services.quotes.is_live():  # once live, serve's freeze would run
            assert time.monotonic() < deadline, "the quote feed never went live"
            time.sleep(0.05)
        time.sleep(0.3)
        assert getattr(app.state, "gc_collector", None) is None
        assert gc.isenabled() == enabled_before
        assert gc.get_freeze_count() == frozen_before


def test_serve_with_the_quote_cache_off_still_freezes_its_start_up_objects(tmp_path: Path) -> None:
    """``qmtgate serve`` with ``quotes.enabled = false`` (every read goes to xtdata): the start-up objects
    are frozen once the source is connected, as they are once the feed is live with the cache on. Without
    it, the rows of each 5,000-code snapshot tipped CPython into a full collection of the simulator's
    objects every other request (bench/RESULTS.md, caches off: 0.16 -> 0.07 s)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    env = {**os.environ, "QMTGATE_QUOTES__ENABLED": "false"}
    cmd = [sys.executable, "-m", "qmtgate", "serve", "--source", "sim", "--port", str(port),
           "--log-level", "info"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "gc: froze" not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "no freeze within 120 s"
                time.sleep(0.2)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
