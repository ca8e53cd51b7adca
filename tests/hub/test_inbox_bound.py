"""A hub whose event loop falls behind the source holds a bounded number of raw batches: past
``MAX_PENDING_BATCHES`` the oldest tick batches are merged (the later tick of a code wins), counted, and
what is finally published is every code's latest tick."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.hub.stream import MAX_PENDING_BATCHES, TICK, HubConfig, StreamHub

EVERY = [c for codes in MARKET_CODES.values() for c in codes]


def test_a_stalled_pump_keeps_at_most_the_bound_and_publishes_the_latest_ticks() -> None:
    async def run() -> tuple[StreamHub, int, list[dict[str, Any]]]:
        hub = StreamHub(_NoSource(), HubConfig(ring_capacity=100_000))
        push = hub._pusher(TICK, connection=1)
        bars = hub._pusher("1m", connection=1)
        n = MAX_PENDING_BATCHES * 3
        # the loop is not running the pump yet: every push waits in the inbox, as when the CPU is starved
        for b in range(n):
            part = EVERY[b % 7 :: 7] if b % 2 else EVERY  # some bursts hold a few codes, others all
            push({c: tick(10.0 + b / 100, 100 + b) for c in part})
            if b == 5:
                bars({"600000.SH": [{"time": 1, "open": 1.0}]})  # another channel is never merged away
        peak = len(hub._inbox)
        await hub.start()
        push({"688999.SH": tick(20.0, 1)})  # the loop's first push wakes the pump, which takes them all
        await asyncio.sleep(0.2)
        rows = [u.row for u in hub.lvc.updates.values() if u.channel == TICK]  # type: ignore[attr-defined]
        await hub.stop()
        return hub, peak, rows

    hub, peak, rows = asyncio.run(run())
    assert peak <= MAX_PENDING_BATCHES + 1  # the bars batch is one more entry
    assert hub.stats["merged_batches"] >= MAX_PENDING_BATCHES * 2 - 2
    assert hub.batches_received == MAX_PENDING_BATCHES * 3 + 2
    assert hub.batches_published == hub.batches_received - hub.stats["merged_batches"]
    latest = {r["code"]: r["last_price"] for r in rows}
    n = MAX_PENDING_BATCHES * 3
    for k, code in enumerate(EVERY):
        last_burst = max(b for b in range(n) if not b % 2 or k % 7 == b % 7)
        assert latest[code] == round(10.0 + last_burst / 100, 2), code
