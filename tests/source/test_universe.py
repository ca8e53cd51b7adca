"""InstrumentIndex: one load per cache day, a rate-limited reload on a miss, concurrent reloads shared."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from qmtgate.source.universe import InstrumentIndex

pytestmark = pytest.mark.anyio


class Loader:
    def __init__(self, codes: set[str]) -> None:
        self.codes = codes
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> set[str]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return set(self.codes)


def make(loader: Loader, day: list[dt.date], now: list[float]) -> InstrumentIndex:
    return InstrumentIndex(loader, cache_day=lambda: day[0], miss_refresh=60.0, monotonic=lambda: now[0])


async def test_misses_reload_at_most_once_per_interval_and_days_roll() -> None:
    loader = Loader({"600000.SH", "000001.SZ"})
    day, now = [dt.date(2025, 1, 6)], [1000.0]
    index = make(loader, day, now)
    assert await index.missing(["600000.SH", "000001.SZ"]) == []
    assert loader.calls == 1
    assert await index.missing(["600000.SH", "999999.SH"]) == ["999999.SH"]
    assert loader.calls == 1  # loaded a moment ago: the miss is answered from the loaded set
    loader.codes.add("999999.SH")  # listed since
    now[0] += 59
    assert await index.missing(["999999.SH"]) == ["999999.SH"] and loader.calls == 1
    now[0] += 1
    assert await index.missing(["999999.SH"]) == [] and loader.calls == 2
    assert await index.missing(["888888.SH"]) == ["888888.SH"] and loader.calls == 2
    day[0] = dt.date(2025, 1, 7)
    assert await index.missing(["600000.SH"]) == [] and loader.calls == 3


async def test_concurrent_requests_share_one_load_and_hits_do_not_wait_for_a_miss_reload() -> None:
    loader = Loader({"600000.SH"})
    day, now = [dt.date(2025, 1, 6)], [0.0]
    index = make(loader, day, now)
    answers = await asyncio.gather(*(index.missing(["600000.SH"]) for _ in range(20)))
    assert answers == [[]] * 20 and loader.calls == 1
    now[0] += 61
    loader.gate = asyncio.Event()
    miss = asyncio.create_task(index.missing(["999999.SH"]))  # starts a reload that hangs
    await asyncio.sleep(0.01)
    assert loader.calls == 2 and not miss.done()
    # a request whose codes are all known is answered meanwhile
    assert await asyncio.wait_for(index.missing(["600000.SH"]), 1) == []
    loader.gate.set()
    assert await miss == ["999999.SH"]


async def test_an_empty_index_cannot_tell_and_is_not_reloaded_on_every_request() -> None:
    loader = Loader(set())
    day, now = [dt.date(2025, 1, 6)], [0.0]
    index = make(loader, day, now)
    assert await index.missing(["600000.SH"]) is None
    assert await index.missing(["600000.SH"]) is None
    assert loader.calls == 1


async def test_without_waiting_a_stale_index_loads_in_the_background() -> None:
    loader = Loader({"600000.SH"})
    loader.gate = asyncio.Event()
    day, now = [dt.date(2025, 1, 6)], [0.0]
    index = make(loader, day, now)
    assert await index.missing(["600000.SH"], wait=False) is None  # not loaded: the caller checks
    assert await index.missing(["600000.SH"], wait=False) is None
    await asyncio.sleep(0.01)
    assert loader.calls == 1  # one background load, however many requests
    loader.gate.set()
    await index.codes()
    assert await index.missing(["600000.SH", "999999.SH"], wait=False) == ["999999.SH"]
    now[0] += 61  # a miss after the pause: answered at once, the reload runs behind it
    assert await index.missing(["999999.SH"], wait=False) == ["999999.SH"]
    await asyncio.sleep(0.01)
    assert loader.calls == 2
