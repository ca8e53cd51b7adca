"""Snapshot pollers that ask together share one call even when the clients spread their requests out:
items of small jobs that shared a call are *hot*, the next call of their key asks for them too, and a job
arriving while that call runs joins it (issue 22, item 2; the executor's module docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from qmtgate.source.executor import HOT_JOB_ITEMS, ExecutorConfig, Lane, XtdataExecutor

from .fake_xtdata import FakeXtdata, synthetic_codes
from .helpers import eventually

pytestmark = pytest.mark.anyio

CODES = synthetic_codes(2 * HOT_JOB_ITEMS + 20)
A, B, C = CODES[:50], CODES[50:100], CODES[100:150]


@pytest.fixture
def fake() -> FakeXtdata:
    return FakeXtdata(universe=len(CODES))


@pytest.fixture
async def make_executor() -> AsyncIterator[Callable[..., XtdataExecutor]]:
    made: list[XtdataExecutor] = []

    def make(**config: float | int) -> XtdataExecutor:
        ex = XtdataExecutor(ExecutorConfig(thread_name=f"qmtgate-xtdata-join-{len(made)}", **config))  # type: ignore[arg-type]
        ex.start()
        made.append(ex)
        return ex

    yield make
    for ex in made:
        await ex.stop(timeout=1.0)


def snap(
    executor: XtdataExecutor, fake: FakeXtdata, codes: list[str], *, joinable: bool = True
) -> asyncio.Task[dict[str, dict[str, object]]]:
    return asyncio.create_task(
        executor.submit_merged(
            Lane.SNAPSHOT, "get_full_tick", codes, fake.get_full_tick, name="get_full_tick", joinable=joinable
        )
    )


def asked(fake: FakeXtdata, call: int) -> list[str]:
    return list(fake.calls_of("get_full_tick")[call].args["code_list"])


async def share_one_call(executor: XtdataExecutor, fake: FakeXtdata, *lists: list[str]) -> None:
    """Two or more requests arriving together (inside the gather window): one call, their items hot."""
    before = fake.count("get_full_tick")
    await asyncio.gather(*(snap(executor, fake, codes) for codes in lists))
    assert fake.count("get_full_tick") == before + 1


async def test_a_poller_arriving_while_its_partners_call_runs_joins_it(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.05)
    await share_one_call(executor, fake, A, B)
    gathers = executor.gathers
    gate = fake.hang("get_full_tick")
    first = snap(executor, fake, A)
    await eventually(lambda: fake.count("get_full_tick") == 2)
    # A's items are hot: no gather window, and the call also asks for B's (its partner's) items
    assert executor.gathers == gathers
    assert asked(fake, 1) == [*A, *reversed(B)]
    late = snap(executor, fake, B)  # the client sent it a few ms later
    await eventually(lambda: executor.status().lanes["snapshot"].submitted == 4)
    assert executor.queue_depths()["snapshot"] == 0  # it joined the running call rather than queueing
    gate.set()
    got_a, got_b = await asyncio.gather(first, late)
    assert list(got_a) == A and list(got_b) == B  # each caller gets its own items only
    assert fake.count("get_full_tick") == 2
    stats = executor.status().calls["get_full_tick"]
    assert (stats.count, stats.requests, stats.joined) == (2, 4, 1)
    assert executor.status().lanes["snapshot"].submitted == 4


async def test_a_request_for_items_the_running_call_does_not_ask_for_waits_for_the_next_call(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.01)
    await share_one_call(executor, fake, A, B)
    gate = fake.hang("get_full_tick")
    first = snap(executor, fake, A)
    await eventually(lambda: fake.count("get_full_tick") == 2)
    partly = snap(executor, fake, [B[0], C[0]])  # C[0] was never asked for
    await eventually(lambda: executor.queue_depths()["snapshot"] == 1)
    gate.set()
    assert set(await partly) == {B[0], C[0]}
    await first
    assert fake.count("get_full_tick") == 3
    assert executor.status().calls["get_full_tick"].joined == 0


async def test_a_call_older_than_the_join_window_is_not_joined(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.01, join_window=0.05)
    await share_one_call(executor, fake, A, B)
    gate = fake.hang("get_full_tick")
    first = snap(executor, fake, A)
    await eventually(lambda: fake.count("get_full_tick") == 2)
    await asyncio.sleep(0.1)  # the running call began longer ago than the window: its data would be older
    late = snap(executor, fake, B)
    await eventually(lambda: executor.queue_depths()["snapshot"] == 1)
    gate.set()
    await asyncio.gather(first, late)
    assert fake.count("get_full_tick") == 3
    assert executor.status().calls["get_full_tick"].joined == 0


async def test_hot_items_cool_down_and_a_lone_poller_asks_for_its_own_items_only(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.01, hot_seconds=0.2)
    alone = snap(executor, fake, C)
    await alone
    assert asked(fake, 0) == C  # never shared a call: nothing else is asked for
    await share_one_call(executor, fake, A, B)
    await snap(executor, fake, A)
    assert asked(fake, 2) == [*A, *reversed(B)]
    await asyncio.sleep(0.3)
    gathers = executor.gathers
    await snap(executor, fake, A)
    assert asked(fake, 3) == A  # cooled down: A gathers again and asks for its own items
    assert executor.gathers > gathers


async def test_a_large_request_does_not_make_its_items_hot_and_hot_max_caps_the_extra_items(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.01, hot_max=30)
    large = CODES[: HOT_JOB_ITEMS + 1]
    await share_one_call(executor, fake, large, C)  # a sector's chunk beside a poller
    await snap(executor, fake, [CODES[-1]])
    extra = asked(fake, 1)[1:]
    assert len(extra) == 30 and set(extra) <= set(C)  # C's items only, at most hot_max of them


async def test_jobs_that_are_not_joinable_never_join_nor_make_items_hot(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    """Merged calls with per-day caches behind them (instrument details) keep the plain merge."""
    executor = make_executor(merge_window=0.01)
    await asyncio.gather(snap(executor, fake, A, joinable=False), snap(executor, fake, B, joinable=False))
    gate = fake.hang("get_full_tick")
    first = snap(executor, fake, A, joinable=False)
    await eventually(lambda: fake.count("get_full_tick") == 2)
    assert asked(fake, 1) == A
    late = snap(executor, fake, A, joinable=False)
    await eventually(lambda: executor.queue_depths()["snapshot"] == 1)
    gate.set()
    await asyncio.gather(first, late)
    assert fake.count("get_full_tick") == 3


async def test_joining_can_be_switched_off(
    make_executor: Callable[..., XtdataExecutor], fake: FakeXtdata
) -> None:
    executor = make_executor(merge_window=0.01, join_window=0)
    await share_one_call(executor, fake, A, B)
    await snap(executor, fake, A)
    assert asked(fake, 1) == A
