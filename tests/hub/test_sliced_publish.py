"""A whole-market burst is converted in slices with the event loop free in between (an order or a
request that arrives meanwhile waits for one slice, not the whole market), and what is published is
exactly what converting it at once gives: the same seqs, rows and table, applied at once."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from hub.test_resume_and_cache import MARKET_CODES, _NoSource, tick
from qmtgate.hub import stream as stream_module
from qmtgate.hub.stream import TICK, HubConfig, StreamHub

EVERY = [c for codes in MARKET_CODES.values() for c in codes]


def test_a_large_burst_leaves_the_loop_between_slices_and_publishes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "CONVERT_SLICE", 10)
    burst = {c: tick(10.0 + k / 100, 100 + k) for k, c in enumerate(EVERY)}
    burst[EVERY[3]] = {**burst[EVERY[3]], "lastPrice": float("nan")}  # a null among them

    async def run() -> tuple[StreamHub, list[int]]:
        hub = StreamHub(_NoSource(), HubConfig(ring_capacity=10_000))
        await hub.start()
        seen_mid_burst: list[int] = []  # the pump's progress each time another task got the loop

        async def other_work() -> None:  # an order's or a request's loop work, as it gets the loop
            for _ in range(200):
                if hub._pumping:
                    seen_mid_burst.append(hub.batches_published)
                await asyncio.sleep(0)

        push = hub._pusher(TICK, connection=1)
        push(burst)
        await asyncio.gather(other_work(), asyncio.sleep(0.2))
        await hub.stop()
        return hub, seen_mid_burst

    hub, seen = asyncio.run(run())
    assert hub.batches_published == 1
    assert seen.count(0) >= len(EVERY) // 10 - 1  # the loop was free between the slices of the burst

    direct = StreamHub(_NoSource(), HubConfig(ring_capacity=10_000))
    expected = direct.publish(TICK, burst)
    cached = {code: hub.lvc.get(TICK, code) for code in EVERY}
    assert [cached[u.code].seq for u in expected] == [u.seq for u in expected]
    assert [cached[u.code].row for u in expected] == [u.row for u in expected]
    assert cached[EVERY[3]].row["last_price"] is None
    assert expected[0].burst.columns.table().equals(cached[EVERY[0]].burst.columns.table())


@pytest.mark.anyio
async def test_retired_ticks_are_freed_a_slice_at_a_time_with_the_loop_free_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Freeing is one C call that keeps the interpreter lock: a whole burst's raw ticks freed at once
    held every thread of the gateway for 10-20 ms. The loop runs other work between slices."""
    from qmtgate.hub import lvc

    monkeypatch.setattr(lvc, "RETIRE_SECONDS", 0.0)
    total = 3 * lvc.RETIRE_SLICE + 7
    objects = [{"lastPrice": float(i), "askPrice": [float(i)] * 5} for i in range(total)]
    lvc.retire_later(objects)
    seen = [len(objects)]
    while objects:
        await asyncio.sleep(0)  # another task's turn on the loop
        seen.append(len(objects))
    shrunk = [a - b for a, b in itertools.pairwise(seen) if a != b]
    assert shrunk == [lvc.RETIRE_SLICE] * 3 + [7]


def test_retired_ticks_without_a_loop_are_freed_at_once() -> None:
    from qmtgate.hub import lvc

    objects = [{"lastPrice": 1.0}] * 10
    lvc.retire_later(objects)
    assert objects == []
