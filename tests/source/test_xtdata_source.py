from __future__ import annotations

import asyncio
import datetime as dt
import threading
import types
from collections.abc import AsyncIterator

import pandas as pd
import pytest

from qmtgate.errors import (
    BadRequest,
    InvalidPeriod,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    UnknownCode,
    Unsupported,
)
from qmtgate.source.base import DownloadProgress, SourceState
from qmtgate.source.executor import ExecutorConfig, Lane, XtdataExecutor
from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig

from .fake_xtdata import KLINE_FIELDS, FakeXtdata
from .helpers import block_worker, eventually

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))


class Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2025, 1, 6, 10, 0, tzinfo=CST))


@pytest.fixture
async def source(fake: FakeXtdata, clock: Clock) -> AsyncIterator[XtdataSource]:
    src = XtdataSource(
        fake,
        name="simulated",
        config=XtdataSourceConfig(reconnect_interval=0.02, download_chunk_size=2),
        clock=clock,
    )
    await src.start()
    yield src
    await src.stop()


async def test_start_registers_status_watch_then_connects(source: XtdataSource, fake: FakeXtdata) -> None:
    assert [call.name for call in fake.calls[:2]] == ["watch_xtquant_status", "connect"]
    status = source.status()
    assert status.state is SourceState.READY and status.ready and status.connected
    assert status.name == "simulated"
    assert fake.threads == {source.executor.thread_ident}


async def test_concurrent_snapshots_cost_one_upstream_call(source: XtdataSource, fake: FakeXtdata) -> None:
    gate, blocker = await block_worker(source.executor)
    requests = [["600000.SH"], ["000001.SZ"], ["600000.SH", "430047.BJ"], ["000001.SH", "999999.SH"]] * 3
    tasks = [asyncio.create_task(source.snapshot(codes)) for codes in requests]
    await eventually(lambda: source.executor.queue_depths()["snapshot"] == len(requests))
    gate.set()
    results = await asyncio.gather(*tasks)
    await blocker

    assert fake.count("get_full_tick") == 1
    for codes, result in zip(requests, results, strict=True):
        assert list(result) == [code for code in codes if code != "999999.SH"]
        assert all(result[code]["lastPrice"] > 0 for code in result)


async def test_identical_history_requests_share_one_call(source: XtdataSource, fake: FakeXtdata) -> None:
    fake.latency["get_market_data_ex"] = 0.1
    same = [source.history(["600000.SH", "000001.SZ"], "1d", start="20250103", count=-1) for _ in range(6)]
    results = await asyncio.gather(*same)

    assert fake.count("get_market_data_ex") == 1
    assert all(result is results[0] for result in results)
    frame = results[0]["600000.SH"]
    assert list(frame.columns) == KLINE_FIELDS
    assert list(frame.index)[:2] == ["20250103", "20250106"]
    call = fake.calls_of("get_market_data_ex")[0].args
    assert call["stock_list"] == ["600000.SH", "000001.SZ"] and call["field_list"] == []
    assert (call["period"], call["start_time"], call["dividend_type"], call["fill_data"]) == (
        "1d",
        "20250103",
        "none",
        True,
    )

    # Different arguments are different requests; a finished request is not cached.
    await asyncio.gather(
        source.history(["600000.SH", "000001.SZ"], "1d", start="20250103", fields=["close"]),
        source.history(["600000.SH", "000001.SZ"], "1d", start="20250103", dividend_type="front"),
    )
    assert fake.count("get_market_data_ex") == 3
    await source.history(["600000.SH", "000001.SZ"], "1d", start="20250103")
    assert fake.count("get_market_data_ex") == 4


async def test_history_keeps_xtdata_shapes_for_unknown_codes(source: XtdataSource) -> None:
    result = await source.history(["999999.SH", "600000.SH"], "1d", fields=["time", "close"], count=2)
    assert result["999999.SH"].empty and list(result["999999.SH"].columns) == ["time", "close"]
    assert len(result["600000.SH"]) == 2


async def test_history_rejects_bad_arguments_before_calling_upstream(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    with pytest.raises(InvalidPeriod) as info:
        await source.history(["600000.SH"], "1M")
    assert "1mon" in info.value.details["allowed"]
    with pytest.raises(BadRequest):
        await source.history(["600000.SH"], "1d", dividend_type="forward")
    with pytest.raises(BadRequest):
        await source.history([f"{i:06d}.SZ" for i in range(1001)], "1d")
    assert fake.count("get_market_data_ex") == 0


async def test_history_timeout_is_typed_and_degrades_until_the_call_returns(fake: FakeXtdata) -> None:
    executor = XtdataExecutor(ExecutorConfig(timeout={lane: 0.05 for lane in Lane} | {Lane.CONTROL: 5.0}))
    source = XtdataSource(fake, name="simulated", executor=executor)
    await source.start()
    try:
        release = fake.hang("get_market_data_ex")
        with pytest.raises(SourceTimeout):
            await source.history(["600000.SH"], "1d")
        assert source.status().state is SourceState.DEGRADED
        assert not source.status().ready
        release.set()
        await eventually(lambda: source.status().state is SourceState.READY)
    finally:
        await source.stop()


async def test_instrument_details_are_cached_until_the_daily_roll(
    source: XtdataSource, fake: FakeXtdata, clock: Clock
) -> None:
    details = await source.instrument_details(["600000.SH", "999999.SH"])
    assert details["600000.SH"]["InstrumentName"] == "浦发银行"
    assert details["999999.SH"] is None
    assert fake.count("get_instrument_detail_list") == 1  # both codes in one batched call

    await source.instrument_details(["600000.SH", "999999.SH", "000001.SZ"])
    assert fake.count("get_instrument_detail_list") == 2  # only the new code was fetched
    assert fake.calls_of("get_instrument_detail_list")[-1].args["stock_list"] == ["000001.SZ"]
    assert (await source.instrument_detail("000001.SZ"))["ExchangeID"] == "SZ"
    with pytest.raises(UnknownCode):
        await source.instrument_detail("999999.SH")
    assert fake.count("get_instrument_detail_list") == 2

    clock.now = dt.datetime(2025, 1, 7, 8, 59, tzinfo=CST).timestamp()  # before 09:00: same cache day
    await source.instrument_details(["600000.SH"])
    assert fake.count("get_instrument_detail_list") == 2
    clock.now = dt.datetime(2025, 1, 7, 9, 0, tzinfo=CST).timestamp()  # the roll
    await source.instrument_details(["600000.SH"])
    assert fake.count("get_instrument_detail_list") == 3
    assert fake.count("get_instrument_detail") == 0


async def test_instrument_details_without_the_batched_call_loop_in_one_job(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    fake.get_instrument_detail_list = None  # an xtdata without it: per-code reads, one executor job
    details = await source.instrument_details(["600000.SH", "999999.SH"])
    assert details["600000.SH"]["InstrumentName"] == "浦发银行" and details["999999.SH"] is None
    assert fake.count("get_instrument_detail") == 2
    assert source.executor.status().calls["get_instrument_detail"].count == 1


async def test_unknown_codes_use_the_day_index_not_one_call_per_code(
    source: XtdataSource, fake: FakeXtdata, clock: Clock
) -> None:
    # cold: the index loads in the background; meanwhile one batched detail call answers
    assert await source.unknown_codes(["600000.SH", "999999.SH"]) == ["999999.SH"]
    assert fake.count("get_instrument_detail_list") == 1
    await source.warm_reference()  # joins the background load
    assert source.universe.loads == 1
    assert 0 < fake.count("get_stock_list_in_sector") <= 8
    assert await source.unknown_codes(["600000.SH", "000001.SZ", "430047.BJ", "510300.SH"]) == []
    assert fake.count("get_instrument_detail_list") == 1  # from the index: no call
    assert fake.count("get_instrument_detail") == 0
    # 000001.SH is in no universe sector of the fake (沪市指数 only): one batched detail call finds it
    assert await source.unknown_codes(["000001.SH", "999999.SH", "600000.SH"]) == ["999999.SH"]
    assert fake.count("get_instrument_detail_list") == 2 and fake.count("get_instrument_detail") == 0
    assert fake.calls_of("get_instrument_detail_list")[-1].args["stock_list"] == ["000001.SH"]
    # a miss within a minute of the load does not reload the index (tests/source/test_universe.py)
    assert source.universe.loads == 1
    assert await source.unknown_codes(["999999.SH"]) == ["999999.SH"]
    assert source.universe.loads == 1 and fake.count("get_instrument_detail_list") == 2  # cached None
    # a listing after the index loaded: found by the batched detail call, not a reload
    fake.instruments["688999.SH"] = ("新股", 20.0, {"stock": True})
    assert await source.unknown_codes(["688999.SH"]) == []
    # the next cache day reloads the index
    clock.now = dt.datetime(2025, 1, 8, 9, 30, tzinfo=CST).timestamp()
    assert await source.unknown_codes(["600000.SH"]) == []
    await source.warm_reference()
    assert source.universe.loads == 2


async def test_reference_data_is_cached(source: XtdataSource, fake: FakeXtdata) -> None:
    for _ in range(2):
        assert "沪深A股" in await source.sector_list()
        assert await source.sector_members("沪深A股") == ["600000.SH", "000001.SZ"]
        assert await source.sector_members("不存在") == []
        assert await source.instrument_type("510300.SH") == {"fund": True, "etf": True}
        assert len(await source.trading_dates("SH", "20250103", "20250107")) == 3
        assert (await source.trading_calendar("SZ"))[0] == "20250102"
        assert "20250101" in await source.holidays()
        factors = await source.divid_factors("600000.SH")
        assert isinstance(factors, pd.DataFrame) and "dr" in factors.columns
    for name in (
        "get_sector_list",
        "get_instrument_type",
        "get_trading_dates",
        "get_trading_calendar",
        "get_holidays",
        "get_divid_factors",
    ):
        assert fake.count(name) == 1, name
    assert fake.count("get_stock_list_in_sector") == 2


async def test_trading_calendar_outside_sh_sz_is_a_bad_request(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    with pytest.raises(BadRequest):
        await source.trading_calendar("BJ")
    assert fake.count("get_trading_calendar") == 0


async def test_qmt_down_maps_to_source_unavailable_and_reconnects(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    fake.down = True
    with pytest.raises(SourceUnavailable):
        await source.snapshot(["600000.SH"])
    status = source.status()
    assert status.state is SourceState.UNAVAILABLE and not status.connected
    fake.down = False
    await eventually(lambda: source.status().ready)
    assert (await source.snapshot(["600000.SH"]))["600000.SH"]["lastPrice"] == 10.0


async def test_start_does_not_raise_when_qmt_is_down(fake: FakeXtdata) -> None:
    fake.down = True
    source = XtdataSource(fake, name="xtquant", config=XtdataSourceConfig(reconnect_interval=0.02))
    await source.start()
    try:
        status = source.status()
        assert status.state is SourceState.UNAVAILABLE
        assert "connect failed" in (status.message or "")
        fake.down = False
        await eventually(lambda: source.status().ready)
    finally:
        await source.stop()
    assert source.status().state is SourceState.STOPPED


async def test_status_callback_from_a_foreign_thread(source: XtdataSource, fake: FakeXtdata) -> None:
    callback = fake.calls_of("watch_xtquant_status")[0].args["callback"]
    thread = threading.Thread(
        target=callback, args=({"address": "127.0.0.1:58610", "status": "disconnected"},)
    )
    thread.start()
    thread.join()
    await eventually(lambda: not source.status().connected)
    assert source.status().message == "QMT disconnected"


async def test_other_upstream_errors_are_source_errors(source: XtdataSource, fake: FakeXtdata) -> None:
    fake.fail("get_full_tick", RuntimeError("decode failed"))
    with pytest.raises(SourceError) as info:
        await source.snapshot(["600000.SH"])
    assert type(info.value) is SourceError
    assert info.value.details == {"call": "get_full_tick", "source": "simulated"}
    assert "decode failed" in info.value.message
    assert source.status().ready  # an error is not a disconnection


async def test_download_runs_in_chunks_and_reports_progress_on_the_loop(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    reports: list[tuple[DownloadProgress, int]] = []
    codes = ["600000.SH", "000001.SZ", "430047.BJ", "510300.SH", "000001.SH"]
    result = await source.download_history(
        codes, "1d", "20250101", "20250110", progress=lambda p: reports.append((p, threading.get_ident()))
    )
    await asyncio.sleep(0)  # let relayed callbacks scheduled by the last chunk run

    assert result.chunks == 3 and result.codes == tuple(codes)
    assert [call.args["stock_list"] for call in fake.calls_of("download_history_data2")] == [
        codes[0:2],
        codes[2:4],
        codes[4:5],
    ]
    assert {thread for _, thread in reports} == {threading.get_ident()}
    assert max(report.finished for report, _ in reports) == 5
    assert all(report.total == 5 for report, _ in reports)


async def test_capabilities_follow_the_module_and_unsupported_is_explicit(fake: FakeXtdata) -> None:
    partial = types.SimpleNamespace(connect=fake.connect, get_full_tick=fake.get_full_tick)
    source = XtdataSource(partial, name="simulated")
    await source.start()
    try:
        caps = source.capabilities()
        assert caps.features["snapshot"] and not caps.features["history"] and not caps.features["download"]
        assert caps.features["trading"] is False
        assert "1mon" in caps.periods and caps.markets == ("SH", "SZ", "BJ")
        with pytest.raises(Unsupported):
            await source.history(["600000.SH"])
        with pytest.raises(Unsupported):
            await source.download_history(["600000.SH"], "1d")
        assert await source.snapshot(["600000.SH"])
    finally:
        await source.stop()
