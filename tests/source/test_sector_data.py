"""Issue #16 item 9: index-constituent and industry sectors exist in QMT only after ``download_sector_data()``.

The source fetches the sector data once per cache day before its first sector answer, never reuses an
answer read before the download, and keeps serving the exchange-structure sectors (retrying later) when the
terminal refuses the download (no data permission).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qmtgate.source import xtdata_source
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig

from .fake_xtdata import SECTORS, FakeXtdata

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))
HS300 = ["600000.SH", "000001.SZ"]


class SectorTerminal(FakeXtdata):
    """The fake terminal with QMT's sector download: 沪深300 and SW1银行 appear only after it."""

    def __init__(self) -> None:
        super().__init__()
        self.downloaded = False

    def download_sector_data(self) -> None:
        self._enter("download_sector_data", {})
        self.downloaded = True

    def _sectors(self) -> dict[str, list[str]]:
        extra = {"沪深300": HS300, "SW1银行": ["600000.SH", "000001.SZ"]} if self.downloaded else {}
        return {**SECTORS, **extra}

    def get_sector_list(self) -> list[str]:
        self._enter("get_sector_list", {})
        return list(self._sectors())

    def get_stock_list_in_sector(self, sector_name: str, real_timetag: Any = -1) -> list[str]:
        self._enter("get_stock_list_in_sector", {"sector_name": sector_name})
        return list(self._sectors().get(sector_name, []))


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 1, 6, 10, 0, tzinfo=CST).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def terminal() -> SectorTerminal:
    return SectorTerminal()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def source(terminal: SectorTerminal, clock: Clock) -> AsyncIterator[XtdataSource]:
    src = XtdataSource(
        terminal, name="simulated", config=XtdataSourceConfig(reconnect_interval=0.02), clock=clock
    )
    await src.start()
    yield src
    await src.stop()


async def test_first_sector_answer_follows_one_download_per_day(
    source: XtdataSource, terminal: SectorTerminal, clock: Clock
) -> None:
    assert await source.sector_members("沪深300") == HS300
    assert {"沪深A股", "沪深300", "SW1银行"} <= set(await source.sector_list())
    assert await source.sector_members("SW1银行") == ["600000.SH", "000001.SZ"]
    assert terminal.count("download_sector_data") == 1
    names = [call.name for call in terminal.calls]
    assert names.index("download_sector_data") < names.index("get_stock_list_in_sector")
    clock.now += 86_400  # the next cache day: fetched again (QMT refreshes sector data daily)
    await source.sector_list()
    assert terminal.count("download_sector_data") == 2


async def test_a_refused_download_keeps_the_structure_sectors_and_is_retried(
    source: XtdataSource, terminal: SectorTerminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal.fail("download_sector_data", RuntimeError("no data permission"))
    assert await source.sector_members("沪深A股") == ["600000.SH", "000001.SZ"]
    assert await source.sector_members("沪深300") == []
    assert terminal.count("download_sector_data") == 1  # not retried on every call
    terminal.fail("download_sector_data", None)
    monkeypatch.setattr(source, "_sector_data_retry_at", 0.0)  # the retry pause has passed
    # the answer read before the download is not reused once the data is there
    assert await source.sector_members("沪深300") == HS300
    assert terminal.count("download_sector_data") == 2


async def test_a_terminal_without_the_function_is_asked_for_sectors_as_is(fake: FakeXtdata) -> None:
    src = XtdataSource(fake, name="simulated", config=XtdataSourceConfig(reconnect_interval=0.02))
    await src.start()
    try:
        assert "沪深A股" in await src.sector_list()
    finally:
        await src.stop()
    assert not hasattr(fake, "download_sector_data") and xtdata_source.SECTOR_DATA_RETRY_SECONDS > 0
