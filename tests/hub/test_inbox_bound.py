"""A hub whose event loop falls behind the source holds a bounded number of raw tick entries: past
``MAX_PENDING_TICKS`` the oldest tick batches are merged (the later tick of a code wins), counted, and
what is finally published is every code's latest tick. A fast feed of small batches is never merged:
the bound is about memory, and the recorder must see every tick it can."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.hub import stream as stream_module
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

EVERY = [c for codes in MARKET_CODES.values() for c in codes]
BURSTS = 20  # whole-market bursts the bound holds, as in production (110,000 entries / ~5,500 codes)


def _stall_then_drain(pushes: list[dict[str, Any]]) -> tuple[StreamHub, int, list[dict[str, Any]]]:
    """Push every batch while the pump is not running (a CPU-starved loop), then let it drain."""

    async def run() -> tuple[StreamHub, int, list[dict[str, Any]]]:
        hub = StreamHub(_NoSource(), HubConfig(ring_capacity=100_000))
        push = hub._pusher(TICK, connection=1)
        bars = hub._pusher("1m", connection=1)
        peak = 0
        for b, data in enumerate(pushes):
            push(data)
            if b == 5:
                bars({"600000.SH": [{"time": 1, "open": 1.0}]})  # another channel is never merged away
            peak = max(peak, hub._pending_ticks)
        await hub.start()
        push({"688999.SH": tick(20.0, 1)})  # the loop's first push wakes the pump, which takes them all
        for _ in range(500):  # until the pump has published every waiting batch
            await asyncio.sleep(0.02)
            if hub.batches_published == hub.batches_received:
                break
        rows = [u.row for u in hub.lvc.updates.values() if u.channel == TICK]  # type: ignore[attr-defined]
        await hub.stop()
        return hub, peak, rows

    return asyncio.run(run())


def test_a_stalled_pump_keeps_at_most_the_bound_and_publishes_the_latest_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound = BURSTS * len(EVERY)
    monkeypatch.setattr(stream_module, "MAX_PENDING_TICKS", bound)
    n = BURSTS * 3
    # some bursts hold a few codes, others all
    pushes = [
        {c: tick(10.0 + b / 100, 100 + b) for c in (EVERY[b % 7 :: 7] if b % 2 else EVERY)} for b in range(n)
    ]
    hub, peak, rows = _stall_then_drain(pushes)
    assert peak <= bound
    assert hub.stats["merged_batches"] > 0
    assert hub.batches_received == n + 2
    assert hub.batches_published == hub.batches_received - hub.stats["merged_batches"]
    latest = {r["code"]: r["last_price"] for r in rows}
    for k, code in enumerate(EVERY):
        last_burst = max(b for b in range(n) if not b % 2 or k % 7 == b % 7)
        assert latest[code] == round(10.0 + last_burst / 100, 2), code


def test_many_small_batches_are_never_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay at speed or a few subscribed codes: hundreds of small batches waiting are cheap, and
    every tick reaches the ring (and so the recorder)."""
    monkeypatch.setattr(stream_module, "MAX_PENDING_TICKS", BURSTS * len(EVERY))
    pushes = [{EVERY[b % 3]: tick(10.0 + b / 1000, 100 + b)} for b in range(1_000)]
    hub, peak, _rows = _stall_then_drain(pushes)
    assert peak == 1_000
    assert hub.stats["merged_batches"] == 0
    assert hub.batches_published == hub.batches_received == 1_002
    assert hub.stats["updates"] >= 1_001
