"""An order's outcome is written exactly once, before it is answered: by the thread that delivers the
SDK's answer, or by the loop (``unknown``) when no answer came in time (source/trading/service.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qmtgate.source.trading.service import _reply_from_thread, _run_to_end, _Settlement

from .test_trading_api import ORDERS, order_body, tick


def test_the_first_outcome_stands_and_is_written_once() -> None:
    writes: list[dict[str, Any]] = []
    settlement = _Settlement(writes.append)
    answer = {"status": "accepted", "order_id": 7}
    assert settlement.settle(answer) is answer
    assert settlement.settle({"status": "unknown"}) is answer  # the late one is dropped
    assert writes == [answer] and settlement.written.result() is answer


def _race(settlement: _Settlement, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settle each outcome from its own thread, all released at once; what each settler got back."""
    start = threading.Barrier(len(outcomes))
    got: list[dict[str, Any]] = []

    def settle(outcome: dict[str, Any]) -> None:
        start.wait()
        got.append(settlement.settle(outcome))

    threads = [threading.Thread(target=settle, args=(o,)) for o in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_racing_settlers_write_one_outcome() -> None:
    for _ in range(200):
        writes: list[dict[str, Any]] = []
        settlement = _Settlement(writes.append)
        got = _race(settlement, [{"status": "accepted"}, {"status": "unknown"}])
        assert len(writes) == 1 and got[0] is got[1] is writes[0] is settlement.written.result()


def test_a_failed_write_reaches_the_waiter_and_leaves_the_outcome_open() -> None:
    def failing(outcome: dict[str, Any]) -> None:
        raise OSError("disk full")

    settlement = _Settlement(failing)
    with pytest.raises(OSError):
        settlement.settle({"status": "accepted"})
    assert settlement.outcome is None
    with pytest.raises(OSError, match="disk full"):
        settlement.written.result()


def test_a_waiter_that_gave_up_does_not_break_the_write() -> None:
    writes: list[dict[str, Any]] = []
    settlement = _Settlement(writes.append)
    assert settlement.written.cancel()  # what wait_for does to the wrapped future on a timeout
    assert settlement.settle({"status": "accepted"}) == {"status": "accepted"} and len(writes) == 1


def test_then_gets_the_outcome_that_stands_and_nothing_else() -> None:
    handed: list[dict[str, Any]] = []
    settlement = _Settlement(lambda outcome: None)
    answer = {"status": "accepted", "order_id": 7}
    settlement.settle(answer, handed.append)
    settlement.settle({"status": "unknown"}, handed.append)  # dropped: not handed on either
    assert handed == [answer]


def test_then_is_not_called_when_the_write_fails_and_its_failure_spares_the_waiter() -> None:
    def failing(outcome: dict[str, Any]) -> None:
        raise OSError("disk full")

    handed: list[dict[str, Any]] = []
    with pytest.raises(OSError):
        _Settlement(failing).settle({"status": "accepted"}, handed.append)
    assert handed == []

    def broken(outcome: dict[str, Any]) -> None:
        raise RuntimeError("event loop is closed")

    settlement = _Settlement(lambda outcome: None)
    assert settlement.settle({"status": "accepted"}, broken) == {"status": "accepted"}
    assert settlement.written.result() == {"status": "accepted"}  # the loop still learns it


@pytest.mark.anyio
async def test_an_answer_from_another_thread_reaches_the_caller_before_the_placement_ends() -> None:
    """The caller's future is resolved from the answering thread (one loop pass), while the placement's
    own coroutine still has work after it (its wait for the written outcome, its bookkeeping): that work
    runs to the end all the same, and its result does not replace the answer."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[Any] = loop.create_future()
    resolve = _reply_from_thread(reply)
    finished = asyncio.Event()
    release = asyncio.Event()

    async def placement() -> dict[str, Any]:
        await release.wait()  # still busy when the answer comes
        finished.set()
        return {"status": "from the coroutine"}

    answer = {"status": "accepted", "order_id": 7}
    threading.Thread(target=resolve, args=(answer,)).start()
    assert await asyncio.wait_for(_run_to_end(placement(), reply), 5) is answer
    assert not finished.is_set()
    release.set()
    await asyncio.wait_for(finished.wait(), 5)


@pytest.mark.anyio
async def test_a_caller_that_goes_away_leaves_the_placement_running() -> None:
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[Any] = loop.create_future()
    finished = asyncio.Event()

    async def placement() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        finished.set()
        return {"status": "accepted"}

    caller = asyncio.ensure_future(_run_to_end(placement(), reply))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.wait_for(finished.wait(), 5)
    _reply_from_thread(reply)({"status": "late"})  # a cancelled reply takes nothing, and nothing raises
    await asyncio.sleep(0.01)
    assert reply.cancelled()


def record_outcome_writes(service: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, str]]:
    """Every outcome ``service`` writes from now on, as (written on the event loop?, status)."""
    writers: list[tuple[bool, str]] = []
    real = service._write_outcome

    def write(coid: str, outcome: dict[str, Any], ctx: dict[str, Any], started: float) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        real(coid, outcome, ctx, started)
        writers.append((on_loop, outcome["status"]))

    monkeypatch.setattr(service, "_write_outcome", write)
    return writers


def test_an_answered_orders_outcome_is_written_off_the_loop_before_the_answer(
    trading_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = trading_client.app.state.trading
    writers = record_outcome_writes(service, monkeypatch)
    code = "600036.SH"
    r = trading_client.post(ORDERS, json=order_body("settle-1", code, tick(code)["bidPrice"][2]))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert writers == [(False, "accepted")]  # written once, by the SDK's answering thread
    # the ledger held it before the client was answered
    assert service.audit.outcome("settle-1")["order_id"] == r.json()["order_id"]
    kinds = [row["kind"] for row in service.audit.rows("settle-1")]
    assert kinds[:2] == ["request.place", "response.place"]


def test_a_late_answer_does_not_replace_the_loops_outcome(
    trading_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer comes after ``trading.response_timeout`` (1 s here): the loop writes the outcome
    (``unknown``, or ``accepted`` when a push told the order id meanwhile) and the late answer writes
    nothing (the reconciler learns from the pushes)."""
    from .conftest import sim_env

    service = trading_client.app.state.trading
    writers = record_outcome_writes(service, monkeypatch)
    faults = sim_env().broker.faults
    faults.delay_order_responses(3.0)  # 2 s past the timeout: a busy CI loop still times out first
    try:
        code = "600036.SH"
        r = trading_client.post(ORDERS, json=order_body("settle-late", code, tick(code)["bidPrice"][2]))
        assert r.status_code == 200 and r.json()["status"] in ("unknown", "accepted")
        time.sleep(2.5)  # the late answer has come and gone
    finally:
        faults.clear()
    assert writers == [(True, r.json()["status"])]
    kinds = [row["kind"] for row in service.audit.rows("settle-late")]
    assert kinds.count("response.place") == 1 and "sdk.timeout" in kinds
