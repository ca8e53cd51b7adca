"""HistoryService over the fake xtdata: downloads before reads, the complete-session cache, today's bar."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from qmtgate.source.calendar import CalendarService
from qmtgate.source.convert import day_start_ms
from qmtgate.source.history import HistoryService
from qmtgate.source.ledger import DownloadLedger
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig

from .fake_xtdata import FakeXtdata

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))


class Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


class Ticks:
    """A stand-in for the quote cache."""

    def __init__(self, live: bool = True) -> None:
        self.live = live
        self.ticks: dict[str, Mapping[str, Any]] = {}

    def is_live(self) -> bool:
        return self.live

    def raw_tick(self, code: str) -> Mapping[str, Any] | None:
        return self.ticks.get(code)


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2025, 1, 10, 10, 0, tzinfo=CST))  # Friday, session forming


@pytest.fixture
async def source(fake: FakeXtdata, clock: Clock) -> AsyncIterator[XtdataSource]:
    src = XtdataSource(fake, name="simulated", config=XtdataSourceConfig(reconnect_interval=60), clock=clock)
    await src.start()
    yield src
    await src.stop()


def service(source: XtdataSource, quotes: Ticks | None = None) -> HistoryService:
    return HistoryService(source, CalendarService(source), DownloadLedger(), quotes=quotes)


def reads(fake: FakeXtdata) -> list[dict[str, Any]]:
    return [call.args for call in fake.calls_of("get_market_data_ex")]


async def test_daily_read_downloads_once_then_caches_complete_sessions(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    history = service(source)
    bars = (await history.klines(["600000.SH"], "1d", count=3))["600000.SH"]
    assert bars.time.tolist() == [day_start_ms(dt.date(2025, 1, d)) for d in (8, 9, 10)]
    (download,) = [call.args for call in fake.calls_of("download_history_data2")]
    assert download["stock_list"] == ["600000.SH"] and download["period"] == "1d"
    assert (download["start_time"], download["end_time"]) == ("", "20250109235959")
    first = reads(fake)
    # One read of complete sessions (ending with the last complete one), one of today's forming bar.
    assert [(r["end_time"], r["count"]) for r in first] == [("20250109235959", 3), ("", -1)]
    assert first[1]["start_time"] == "20250110000000"

    again = (await history.klines(["600000.SH"], "1d", count=2))["600000.SH"]
    assert again.time.tolist() == bars.time.tolist()[1:]
    assert fake.count("download_history_data2") == 1  # the ledger covers it
    assert len(reads(fake)) == 3  # only today's bar was read again
    assert history.cache_info()["hits"] == 1


async def test_todays_daily_bar_comes_from_the_live_quote_cache(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    quotes = Ticks()
    today = day_start_ms(dt.date(2025, 1, 10))
    quotes.ticks["600000.SH"] = {
        "time": today + 10 * 3_600_000,
        "lastPrice": 10.5,
        "open": 10.1,
        "high": 10.6,
        "low": 10.0,
        "lastClose": 10.6,
        "volume": 1234,
        "amount": 1.3e6,
        "openInt": 13,
    }
    history = service(source, quotes)
    result = await history.klines(["600000.SH", "000001.SZ"], "1d", count=2)
    pufa = result["600000.SH"]
    assert pufa.time.tolist()[-1] == today
    assert pufa.columns["close"][-1] == 10.5 and pufa.columns["volume"][-1] == 1234
    assert pufa.columns["preClose"][-1] == 10.6
    assert result["000001.SZ"].time.tolist()[-1] < today  # no snapshot today: no forming bar
    assert all(r["end_time"] == "20250109235959" for r in reads(fake))  # never asked the source for today


async def test_minute_reads_download_the_sessions_they_need(source: XtdataSource, fake: FakeXtdata) -> None:
    history = service(source)
    await history.klines(["600000.SH"], "1m", count=300)  # two sessions of 241 bars, plus one spare
    (download,) = [call.args for call in fake.calls_of("download_history_data2")]
    assert download["period"] == "1m" and download["start_time"] == "20250107"
    await history.klines(["600000.SH"], "5m", start_ms=day_start_ms(dt.date(2025, 1, 3)))
    second = fake.calls_of("download_history_data2")[1].args
    assert second["period"] == "5m" and (second["start_time"], second["end_time"]) == (
        "20250103",
        "20250109235959",
    )
    # Extending the range back downloads only the gap.
    await history.klines(["600000.SH"], "5m", start_ms=day_start_ms(dt.date(2025, 1, 2)))
    third = fake.calls_of("download_history_data2")[2].args
    assert (third["start_time"], third["end_time"]) == ("20250102", "20250103235959")


async def test_a_new_session_invalidates_the_cache(
    source: XtdataSource, fake: FakeXtdata, clock: Clock
) -> None:
    history = service(source)
    await history.klines(["600000.SH"], "1d", count=3)
    clock.set(dt.datetime(2025, 1, 10, 15, 30, tzinfo=CST))  # after the close: 01-10 is complete
    bars = (await history.klines(["600000.SH"], "1d", count=3))["600000.SH"]
    assert bars.time.tolist()[-1] == day_start_ms(dt.date(2025, 1, 10))
    last = reads(fake)[-1]
    assert (
        last["end_time"] == "20250110235959" and last["count"] == 3
    )  # complete part re-read, no forming part
    assert fake.calls_of("download_history_data2")[-1].args["end_time"] == "20250110235959"


async def test_ranges_in_the_past_are_read_as_asked(source: XtdataSource, fake: FakeXtdata) -> None:
    history = service(source)
    lo, hi = day_start_ms(dt.date(2025, 1, 3)), day_start_ms(dt.date(2025, 1, 7)) + 86_399_999
    bars = (await history.klines(["600000.SH"], "1d", lo, hi))["600000.SH"]
    assert len(bars) == 3
    (read,) = reads(fake)
    assert (read["start_time"], read["end_time"], read["count"]) == ("20250103000000", "20250107235959", -1)
