"""The quote cache and its feed (pushes from foreign threads, resubscription), and download jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator

import pytest

from qmtgate.hub.feed import WholeMarketFeed
from qmtgate.hub.stream import StreamHub
from qmtgate.source.calendar import CalendarService
from qmtgate.source.history import HistoryService
from qmtgate.source.jobs import DownloadJobs, JobState
from qmtgate.source.xtdata_source import XtdataSource

from .fake_xtdata import FakeXtdata
from .helpers import eventually

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))
TICK = {
    "time": 1736474400000,
    "lastPrice": 10.0,
    "open": 9.9,
    "volume": 100,
    "askPrice": [10.01],
    "askVol": [5],
}


# -- the quote cache (the stream hub's last-value cache) -------------------------------------------


async def test_pushes_from_threads_are_applied_once_on_the_loop_and_converted_once() -> None:
    hub = StreamHub(None)
    await hub.start()
    cache = hub.lvc
    cache.expect(1)
    push = hub.tick_sink(1)
    batches = [{f"60000{i}.SH": {**TICK, "lastPrice": 10.0 + k} for i in range(5)} for k in range(20)]
    threads = [threading.Thread(target=push, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await eventually(lambda: cache.stats().pushes == 20 and hub.quiet())
    stats = cache.stats()
    assert stats.live and stats.codes == 5 and stats.applied == 100 and stats.pending == 0
    rows, missing = cache.rows(["600000.SH", "600009.SH"])
    assert missing == ["600009.SH"] and rows[0]["volume"] == 10000 and rows[0]["code"] == "600000.SH"
    latest = cache.get("tick", "600000.SH")
    assert latest is not None and latest.seq == hub.seq - 4  # the last batch's first code
    # one conversion: the snapshot's row is the stream update's row, the raw dict the SDK's own
    assert rows[0] is latest.row and rows[0]["last_price"] == cache.raw_tick("600000.SH")["lastPrice"]
    assert any(cache.raw_tick("600000.SH") is batch["600000.SH"] for batch in batches)
    assert cache.codes(["SH"], ["stock"]) == [f"60000{i}.SH" for i in range(5)]
    assert cache.codes(["SZ"]) == []
    await hub.stop()


async def test_the_cache_is_live_only_for_the_current_subscription() -> None:
    hub = StreamHub(None)
    await hub.start()
    cache = hub.lvc
    cache.expect(2)
    hub.tick_sink(1)({"600000.SH": TICK})  # a push of a dead subscription
    await eventually(lambda: cache.stats().applied == 1)
    assert not cache.is_live()
    hub.tick_sink(2)({"600000.SH": TICK})
    await eventually(cache.is_live)
    await hub.stop()


def test_a_burst_moves_the_cache_version_once_and_keeps_listing_order() -> None:
    hub = StreamHub(None)
    before = hub.lvc.version
    hub.publish("tick", {"600001.SH": TICK, "000001.SZ": TICK, "600000.SH": TICK})
    assert hub.lvc.version == before + 1
    assert hub.lvc.codes() == ["600001.SH", "600000.SH", "000001.SZ"]  # markets sorted, push order within
    hub.publish("tick", {"600000.SH": {**TICK, "lastPrice": 11.0}})
    assert hub.lvc.version == before + 2 and hub.lvc.codes(["SH"]) == ["600001.SH", "600000.SH"]
    (row,), _ = hub.lvc.rows(["600000.SH"])
    assert row["last_price"] == 11.0


async def test_feed_subscribes_and_resubscribes_after_a_reconnect(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    hub = StreamHub(source)
    await hub.start()
    cache = hub.lvc
    feed = WholeMarketFeed(source, hub, ["SH", "SZ"], retry_interval=0.02)
    await feed.start()
    try:
        ((old_seq, (codes, period, callback)),) = fake.subscriptions.items()
        assert codes == ("SH", "SZ") and period == "tick"
        threading.Thread(target=callback, args=({"600000.SH": TICK},)).start()
        await eventually(cache.is_live)

        source._set_connected(False, "QMT restarted")  # as the status callback does
        assert not cache.is_live()
        # the previous connection's subscription is cancelled (it must not push beside the new one)
        await eventually(
            lambda: (
                source.status().connected
                and len(fake.subscriptions) == 1
                and old_seq not in fake.subscriptions
            )
        )
        assert not cache.is_live()  # connected again, but the new subscription has not pushed yet
        callback({"600000.SH": TICK})  # the old subscription is dead: pushes from it do not count
        await asyncio.sleep(0.05)
        assert not cache.is_live()
        new_callback = list(fake.subscriptions.values())[-1][2]
        new_callback({"600000.SH": TICK})
        await eventually(cache.is_live)
    finally:
        await feed.stop()
        await hub.stop()
    assert fake.count("unsubscribe_quote") == 2  # the orphan after the reconnect, then the feed's own


# -- download jobs ---------------------------------------------------------------------------------


@pytest.fixture
async def jobs(source: XtdataSource) -> AsyncIterator[DownloadJobs]:
    calendar = CalendarService(source)
    runner = DownloadJobs(HistoryService(source, calendar), calendar)
    await runner.start()
    yield runner
    await runner.stop()


async def test_a_job_downloads_in_chunks_and_verifies(jobs: DownloadJobs, fake: FakeXtdata) -> None:
    job = jobs.submit(["600000.SH", "000001.SZ"], "1d", dt.date(2025, 1, 3), None)
    await jobs.wait(job.id, 5)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.finished_codes == 2 and job.verification["with_data"] == 2  # type: ignore[index]
    assert job.verification["end"] == "2025-01-09"  # type: ignore[index]
    download = fake.calls_of("download_history_data2")[0].args
    assert (download["start_time"], download["end_time"]) == ("20250103", "20250109235959")


async def test_a_job_whose_data_does_not_land_fails(jobs: DownloadJobs) -> None:
    # The fake answers only daily bars: a 5m download "succeeds" upstream but nothing can be read back.
    job = jobs.submit(["600000.SH"], "5m", dt.date(2025, 1, 3), None)
    await jobs.wait(job.id, 5)
    assert job.state is JobState.FAILED
    assert job.error["code"] == "download_incomplete"  # type: ignore[index]
    assert job.verification["missing"] == ["600000.SH"]  # type: ignore[index]


async def test_cancel_a_running_and_a_queued_job(jobs: DownloadJobs, fake: FakeXtdata) -> None:
    release = fake.hang("download_history_data2")
    running = jobs.submit(["600000.SH"], "1d", None, None)
    queued = jobs.submit(["000001.SZ"], "1d", None, None)
    await eventually(lambda: running.state is JobState.RUNNING and fake.count("download_history_data2") == 1)
    jobs.cancel(queued.id)
    jobs.cancel(running.id)
    assert running.state is JobState.CANCELLED and queued.state is JobState.CANCELLED
    release.set()
    await asyncio.sleep(0.1)
    assert fake.count("download_history_data2") == 1  # the queued job never started
    assert running.state is JobState.CANCELLED


async def test_single_code_subscriptions_go_through_the_control_lane(
    source: XtdataSource, fake: FakeXtdata
) -> None:
    pushes: list[object] = []
    handle = await source.subscribe_quote("600000.SH", "1m", pushes.append)
    ((code, period, callback),) = fake.subscriptions.values()
    assert (code, period) == ("600000.SH", "1m")
    callback({"600000.SH": [{"time": 1, "close": 10.0}]})
    assert pushes == [{"600000.SH": [{"time": 1, "close": 10.0}]}]
    await source.unsubscribe(handle)
    assert fake.subscriptions == {}
    await source.unsubscribe(handle)  # unknown handles are ignored
    assert fake.count("unsubscribe_quote") == 1
