"""One recorded session shared by the recording tests: recorded live, stopped, restarted with a backfill.

The simulator's clock is manual and its publisher is stepped by the test (no thread), so every 3-second
snapshot is delivered exactly once and the run is deterministic. The scenario (2025-06-12, eight codes):

1. start a fresh recording at 09:14 and record live until 09:33;
2. stop (the writer closes the database), move the market to 14:56 while nothing records;
3. start again on the same file: the backfill fetches 09:33-14:56 from the source's tick history, then
   live recording continues to 15:01.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qmtgate.config import Settings
from qmtgate.hub.stream import HubConfig, StreamHub
from qmtgate.record.bars import label_ms
from qmtgate.record.recorder import Recorder, RecordTarget
from qmtgate.record.writer import RecordWriter
from qmtgate.source.factory import build_simulated_source

DAY = dt.date(2025, 6, 12)
CST = dt.timezone(dt.timedelta(hours=8))
#: liquid and illiquid names, an index, an ETF, SH/SZ/BJ, main board, ChiNext, STAR
CODES = (
    "600000.SH",
    "000001.SZ",
    "300750.SZ",
    "688981.SH",
    "000300.SH",
    "510300.SH",
    "430934.BJ",
    "002594.SZ",
)


def cst_ms(hh: int, mm: int, ss: int = 0, day: dt.date = DAY) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=CST).timestamp() * 1000)


@dataclass
class Recorded:
    path: Path
    codes: tuple[str, ...]
    first: dict[str, Any]  # stats of the first run
    second: dict[str, Any]  # stats of the restarted run
    env: Any  # the simulator environment (for its own ticks and bars)


async def _advance(env: Any, recorder: Recorder, seconds: float) -> None:
    """Move the market forward in steps of at most 40 slots and let the recorder take every burst."""
    while seconds > 0:
        step = min(seconds, 120.0)
        seconds -= step
        env.market.clock.advance(step)
        await asyncio.to_thread(env.publisher.step)
        await asyncio.sleep(0.01)
        deadline = time.monotonic() + 10
        while recorder.backlog() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


async def _run(env: Any, source: Any, path: Path, create: bool, until_ms: int) -> dict[str, Any]:
    hub = StreamHub(source, HubConfig())
    await hub.start()
    writer = RecordWriter(path, create=create, flush_seconds=0.05, idle_seconds=0.3)
    recorder = Recorder(hub, source, writer, RecordTarget(codes=CODES), clock_interval=0.05, open_wait_s=2)
    await recorder.start()
    await asyncio.to_thread(env.publisher.step)  # the first push: the current snapshot
    for _ in range(2):  # the market moves on: the live span starts with the first push after the snapshot
        env.market.clock.advance(3)
        await asyncio.to_thread(env.publisher.step)
        await asyncio.sleep(0.05)
    await asyncio.wait_for(recorder.backfill_done.wait(), 60)
    await asyncio.wait_for(recorder.reference_done.wait(), 60)  # instrument details, sectors, calendar
    if not create:  # the restart at 14:56: every hole of the day filled before the market moves on
        await asyncio.wait_for(recorder.fill_idle.wait(), 60)
    await _advance(env, recorder, (until_ms - env.market.clock.now_ms()) / 1000)
    if until_ms >= cst_ms(15, 0, 30):
        # after the close nothing trades: the clock alone must close the 15:00 bar
        deadline = time.monotonic() + 10
        while writer.stats.last_bar_ts != label_ms(DAY, 240) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    await asyncio.to_thread(writer.flush)
    info = recorder.info()
    await recorder.stop()
    await hub.stop()
    return info


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    settings = Settings(source="sim", sim={"clock": "manual", "start": "20250612091400"})
    source = build_simulated_source(settings)
    from qmtgate.sim.xtquant import _env

    env = _env.current()
    env.publisher.stop(manual=True)  # the test steps the market itself
    env.market.day_context(env.market.calendar.index_on_or_before(DAY))  # ~15 s once per process
    path = tmp_path_factory.mktemp("rec") / "session.duckdb"

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        await source.start()
        try:
            first = await _run(env, source, path, True, cst_ms(9, 33))
            env.market.clock.set(cst_ms(14, 56))  # the recorder is down for five hours
            # The market moves on meanwhile. Move the simulated session here, in this thread: left to the
            # source's next health probe, the five-hour jump (~15 intraday segments to draw, seconds on a
            # busy machine) would run on the xtdata thread and hold up the recorder's subscribe call
            # past its 5 s control-lane deadline (seen once in a full-suite run).
            await asyncio.to_thread(env.publisher.step)
            second = await _run(env, source, path, False, cst_ms(15, 1))
            return first, second
        finally:
            await source.stop()

    first, second = asyncio.run(scenario())
    yield Recorded(path, CODES, first, second, env)
