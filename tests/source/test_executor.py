from __future__ import annotations

import asyncio
import threading

import pytest

from qmtgate.errors import SourceBusy, SourceTimeout, SourceUnavailable
from qmtgate.source.executor import ExecutorConfig, ExecutorState, Lane, XtdataExecutor

from .fake_xtdata import FakeXtdata
from .helpers import block_worker, eventually

pytestmark = pytest.mark.anyio


async def test_lanes_run_by_priority_then_fifo(executor: XtdataExecutor) -> None:
    gate, blocker = await block_worker(executor)
    order: list[str] = []

    def job(label: str) -> str:
        order.append(label)
        return label

    submissions = [
        (Lane.DOWNLOAD, "download"),
        (Lane.HISTORY, "history-1"),
        (Lane.SNAPSHOT, "snapshot"),
        (Lane.HISTORY, "history-2"),
        (Lane.CONTROL, "control"),
    ]
    tasks = [asyncio.create_task(executor.submit(lane, job, label)) for lane, label in submissions]
    await eventually(lambda: sum(executor.queue_depths().values()) == len(submissions))
    assert executor.queue_depths() == {"control": 1, "snapshot": 1, "history": 2, "download": 1}

    gate.set()
    results = await asyncio.gather(*tasks)
    await blocker

    assert results == [label for _, label in submissions]
    assert order == ["control", "snapshot", "history-1", "history-2", "download"]


async def test_result_and_exception_are_delivered(executor: XtdataExecutor) -> None:
    assert await executor.submit(Lane.HISTORY, lambda a, b=0: a + b, 2, b=3) == 5

    def broken() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await executor.submit(Lane.HISTORY, broken)
    # The worker survives a failing job.
    assert await executor.submit(Lane.CONTROL, lambda: "still alive") == "still alive"
    status = executor.status()
    assert status.calls["broken"].errors == 1
    assert status.lanes["history"].errors == 1
    assert status.lanes["history"].completed == 2


async def test_timeout_while_queued_drops_the_job(executor: XtdataExecutor) -> None:
    gate, blocker = await block_worker(executor)
    ran = threading.Event()

    with pytest.raises(SourceTimeout) as info:
        await executor.submit(Lane.HISTORY, ran.set, timeout=0.05, name="late")
    assert info.value.details["phase"] == "queued"
    assert executor.queue_depths()["history"] == 0

    gate.set()
    await blocker
    await executor.submit(Lane.CONTROL, lambda: None)  # everything queued before has been handled
    assert not ran.is_set()
    assert executor.state is ExecutorState.RUNNING
    assert executor.status().lanes["history"].timeouts == 1


async def test_timeout_while_running_marks_degraded_without_second_thread(executor: XtdataExecutor) -> None:
    stuck = threading.Event()
    with pytest.raises(SourceTimeout) as info:
        await executor.submit(Lane.HISTORY, stuck.wait, 10, timeout=0.05, name="get_market_data_ex")
    assert info.value.details["phase"] == "running"
    assert info.value.code.value == "source_timeout"

    status = executor.status()
    assert status.state is ExecutorState.DEGRADED
    assert status.degraded_call == "get_market_data_ex"
    assert status.current_call == "get_market_data_ex"
    workers = [t for t in threading.enumerate() if t.name == executor.config.thread_name]
    assert len(workers) == 1

    # New work queues behind the stuck call instead of running elsewhere.
    pending = asyncio.create_task(executor.submit(Lane.SNAPSHOT, threading.get_ident))
    await eventually(lambda: executor.queue_depths()["snapshot"] == 1)
    stuck.set()
    assert await pending == executor.thread_ident
    await eventually(lambda: executor.state is ExecutorState.RUNNING)
    assert executor.status().degraded_call is None


async def test_full_lane_raises_source_busy() -> None:
    executor = XtdataExecutor(ExecutorConfig(capacity={lane: 2 for lane in Lane}))
    executor.start()
    try:
        gate, blocker = await block_worker(executor)
        queued = [asyncio.create_task(executor.submit(Lane.SNAPSHOT, lambda: "ok")) for _ in range(2)]
        await eventually(lambda: executor.queue_depths()["snapshot"] == 2)

        with pytest.raises(SourceBusy) as info:
            await executor.submit(Lane.SNAPSHOT, lambda: "too many")
        assert info.value.details == {"lane": "snapshot", "capacity": 2, "call": "<lambda>"}
        # Other lanes are not affected by a full snapshot lane.
        history = asyncio.create_task(executor.submit(Lane.HISTORY, lambda: "history"))

        gate.set()
        assert await asyncio.gather(*queued, history) == ["ok", "ok", "history"]
        await blocker
        assert executor.status().lanes["snapshot"].rejected == 1
    finally:
        await executor.stop()


async def test_cancelled_caller_drops_its_queued_job(executor: XtdataExecutor) -> None:
    gate, blocker = await block_worker(executor)
    ran = threading.Event()
    task = asyncio.create_task(executor.submit(Lane.HISTORY, ran.set))
    await eventually(lambda: executor.queue_depths()["history"] == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert executor.queue_depths()["history"] == 0
    gate.set()
    await blocker
    await executor.submit(Lane.DOWNLOAD, lambda: None)
    assert not ran.is_set()


async def test_stop_fails_queued_jobs_and_rejects_new_ones() -> None:
    executor = XtdataExecutor()
    executor.start()
    gate, blocker = await block_worker(executor)
    queued = asyncio.create_task(executor.submit(Lane.HISTORY, lambda: "never"))
    await eventually(lambda: executor.queue_depths()["history"] == 1)

    await executor.stop(timeout=0.05)  # the blocker still holds the thread; stop does not wait forever
    with pytest.raises(SourceUnavailable):
        await queued
    with pytest.raises(SourceUnavailable):
        await executor.submit(Lane.CONTROL, lambda: None)
    assert executor.state is ExecutorState.STOPPED

    gate.set()
    await blocker  # the running call still completes for its caller


async def test_not_started_executor_rejects_work() -> None:
    with pytest.raises(SourceUnavailable):
        await XtdataExecutor().submit(Lane.CONTROL, lambda: None)


async def test_queued_snapshots_merge_into_one_upstream_call(
    executor: XtdataExecutor, fake: FakeXtdata
) -> None:
    gate, blocker = await block_worker(executor)
    requests = [
        ["600000.SH"],
        ["000001.SZ", "600000.SH"],
        ["430047.BJ", "999999.SZ"],
        ["510300.SH"],
        ["000001.SZ"],
    ]
    tasks = [
        asyncio.create_task(executor.submit_merged(Lane.SNAPSHOT, "get_full_tick", codes, fake.get_full_tick))
        for codes in requests
    ]
    await eventually(lambda: executor.queue_depths()["snapshot"] == len(requests))
    gate.set()
    results = await asyncio.gather(*tasks)
    await blocker

    assert fake.count("get_full_tick") == 1
    upstream = fake.calls_of("get_full_tick")[0].args["code_list"]
    assert upstream == ["600000.SH", "000001.SZ", "430047.BJ", "999999.SZ", "510300.SH"]
    for codes, result in zip(requests, results, strict=True):
        assert set(result) == {code for code in codes if code != "999999.SZ"}  # unknown codes are absent
    assert results[1]["600000.SH"]["lastPrice"] == 10.0
    stats = executor.status().calls["get_full_tick"]
    assert (stats.count, stats.requests) == (1, len(requests))


async def test_merging_keeps_keys_apart_and_later_arrivals_form_a_new_batch(
    executor: XtdataExecutor, fake: FakeXtdata
) -> None:
    gate, blocker = await block_worker(executor)
    other_calls: list[list[str]] = []

    def other(items: list[str]) -> dict[str, str]:
        other_calls.append(items)
        return {item: item.lower() for item in items}

    first = asyncio.create_task(
        executor.submit_merged(Lane.SNAPSHOT, "ticks", ["600000.SH"], fake.get_full_tick)
    )
    second = asyncio.create_task(executor.submit_merged(Lane.SNAPSHOT, "other", ["A", "B"], other))
    await eventually(lambda: executor.queue_depths()["snapshot"] == 2)
    fake_gate = fake.hang("get_full_tick")
    gate.set()
    await eventually(lambda: fake.count("get_full_tick") == 1)
    # Arrives while the first merged call is running: cannot join it, forms the next batch.
    third = asyncio.create_task(
        executor.submit_merged(Lane.SNAPSHOT, "ticks", ["000001.SZ"], fake.get_full_tick)
    )
    await eventually(lambda: executor.queue_depths()["snapshot"] == 2)
    fake_gate.set()

    assert set(await first) == {"600000.SH"}
    assert await second == {"A": "a", "B": "b"}
    assert set(await third) == {"000001.SZ"}
    await blocker
    assert other_calls == [["A", "B"]]
    assert fake.count("get_full_tick") == 2


async def test_every_call_runs_on_the_one_worker_thread(executor: XtdataExecutor, fake: FakeXtdata) -> None:
    await asyncio.gather(
        executor.submit(Lane.CONTROL, fake.connect),
        executor.submit_merged(Lane.SNAPSHOT, "t", ["600000.SH"], fake.get_full_tick),
        executor.submit(Lane.HISTORY, fake.get_market_data_ex, [], ["600000.SH"]),
        executor.submit(Lane.DOWNLOAD, fake.download_history_data2, ["600000.SH"], "1d"),
    )
    assert fake.threads == {executor.thread_ident}
    assert executor.thread_ident != threading.get_ident()


async def test_status_reports_latency_and_wait(executor: XtdataExecutor, fake: FakeXtdata) -> None:
    fake.latency["get_market_data_ex"] = 0.02
    await executor.submit(Lane.HISTORY, fake.get_market_data_ex, [], ["600000.SH"])
    stats = executor.status().calls["get_market_data_ex"]
    assert stats.count == 1 and stats.errors == 0
    assert 0.02 <= stats.max_seconds < 1.0
    assert stats.mean_seconds == stats.total_seconds


@pytest.mark.parametrize(("window", "calls"), [(0.5, 1), (0.0, 2)])
async def test_a_gather_window_lets_requests_arriving_together_share_one_call(
    fake: FakeXtdata, window: float, calls: int
) -> None:
    """Issue 22 item 2: with an idle worker the first request used to run alone and the other seven merge
    into a second call; a gather window merges all eight, still one call at a time on one thread."""
    fake.latency["get_full_tick"] = 0.2
    executor = XtdataExecutor(ExecutorConfig(thread_name="qmtgate-xtdata-test-gather", merge_window=window))
    executor.start()
    codes = ["600000.SH", "000001.SZ", "000001.SH", "430047.BJ", "510300.SH"]
    try:
        first = asyncio.create_task(
            executor.submit_merged(Lane.SNAPSHOT, "get_full_tick", codes[:1], fake.get_full_tick)
        )
        await asyncio.sleep(0.02)  # the others arrive a moment later (inside a 0.5 s window)
        others = [
            asyncio.create_task(
                executor.submit_merged(Lane.SNAPSHOT, "get_full_tick", [codes[i % 5]], fake.get_full_tick)
            )
            for i in range(1, 8)
        ]
        answers = await asyncio.gather(first, *others)
    finally:
        await executor.stop(timeout=1.0)
    assert [list(answer) for answer in answers] == [[codes[i % 5]] for i in range(8)]
    assert fake.count("get_full_tick") == calls
    assert executor.status().calls["get_full_tick"].requests == 8
    assert len(fake.threads) == 1
    assert (executor.gathers > 0) is (window > 0)


async def test_a_control_call_is_not_held_by_a_gather_window(fake: FakeXtdata) -> None:
    executor = XtdataExecutor(ExecutorConfig(thread_name="qmtgate-xtdata-test-gather2", merge_window=0.5))
    executor.start()
    try:
        merged = asyncio.create_task(
            executor.submit_merged(Lane.SNAPSHOT, "get_full_tick", ["600000.SH"], fake.get_full_tick)
        )
        await asyncio.sleep(0.02)
        began = asyncio.get_running_loop().time()
        assert await executor.submit(Lane.CONTROL, lambda: "pong") == "pong"
        assert asyncio.get_running_loop().time() - began < 0.4  # ran inside the snapshot's window
        assert not merged.done()
        assert list(await merged) == ["600000.SH"]
    finally:
        await executor.stop(timeout=1.0)
