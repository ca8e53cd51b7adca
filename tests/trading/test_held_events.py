"""Account events that arrive while an answered order's reply is on its way wait for it, and keep their
order (source/trading/service.py: ``_held``, ``_placed``, ``_release_held``). The end-to-end check over a
real socket is tests/trading/test_trading_ws_orders.py::test_the_reply_comes_before_the_events_its_answer_brought."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from qmtgate.config import TradingSettings
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.service import TradingService


def _service(tmp_path: Path) -> tuple[TradingService, list[tuple[str, Any]], list[str]]:
    service = TradingService(TradingSettings(), audit=AuditTrail(tmp_path / "audit.sqlite"))
    published: list[tuple[str, Any]] = []
    notified: list[str] = []
    service.events.subscribe(lambda e: published.append((e["event"], e["data"].get("n"))))
    service.listeners.append(lambda kind, data: notified.append(kind))
    return service, published, notified


def _answered() -> Future:
    future: Future = Future()
    future.set_result({"status": "accepted"})
    return future


async def _two_passes() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_events_wait_for_the_reply_then_come_in_arrival_order(tmp_path: Path) -> None:
    async def run() -> None:
        service, published, notified = _service(tmp_path)
        service._answered = _answered()  # the order being placed has its answer in
        service._on_push("order", {"n": 1, "order_id": 7, "order_remark": "c1"})
        service.emit_event("protect.triggered", {"n": 2})
        service._on_push("some_sdk_extra", {"n": 3})  # not a channel kind: listeners only
        assert published == [] and notified == []
        assert service._seen == {"c1": 7}  # tracked on arrival: the outcome logic still sees it
        service._placed()
        service._on_push("trade", {"n": 4, "order_remark": ""})  # after the placement, before the release
        assert published == []
        await _two_passes()  # the caller writes its reply in the first pass; the events follow
        assert published == [("order", 1), ("protect.triggered", 2), ("trade", 4)]
        assert notified == ["order", "protect.triggered", "some_sdk_extra", "trade"]
        assert [e["seq"] for e in service.events.ring] == [1, 2, 3]
        service.audit.close()

    asyncio.run(run())


def test_events_pass_at_once_when_no_placement_is_answered(tmp_path: Path) -> None:
    async def run() -> None:
        service, published, _ = _service(tmp_path)
        service._on_push("order", {"n": 1})
        service._answered = Future()  # placing, not answered: a push that comes first goes first
        service._on_push("order", {"n": 2})
        service.emit_event("protect.armed", {"n": 3})
        assert published == [("order", 1), ("order", 2), ("protect.armed", 3)]
        service._placed()
        await _two_passes()
        assert published == [("order", 1), ("order", 2), ("protect.armed", 3)]
        service.audit.close()

    asyncio.run(run())


def test_a_release_leaves_the_next_answered_placements_events_to_it(tmp_path: Path) -> None:
    async def run() -> None:
        service, published, _ = _service(tmp_path)
        service._answered = _answered()
        service._on_push("order", {"n": 1})
        service._placed()
        service._answered = _answered()  # the next order is answered before the release runs
        service._on_push("order", {"n": 2})
        await _two_passes()
        assert published == []  # its reply is not written yet: nothing overtakes it
        service._placed()
        await _two_passes()
        assert published == [("order", 1), ("order", 2)]
        service.audit.close()

    asyncio.run(run())
