"""The kill switch survives a gateway restart: a halt is lifted by ``resume`` only, never by a crash, a
service restart or a reboot (it is kept in the audit database). Also for a trail written before the
switch was kept there: its newest halt/resume row decides, once."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.service import KILL_SWITCH, TradingService

from .conftest import trading_settings

ORDERS = "/api/v1/trading/orders"


def gateway(audit: Path) -> TestClient:
    return TestClient(create_app(trading_settings(audit)), raise_server_exceptions=False)


def order(coid: str) -> dict:
    return {"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0, "client_order_id": coid}


def test_a_halt_outlives_restarts_until_resume(tmp_path: Path) -> None:
    audit = tmp_path / "audit.sqlite"
    with gateway(audit) as client:
        assert client.get("/api/v1/trading/status").json()["halted"] is False
        assert client.post("/api/v1/trading/halt", params={"cancel_open": False}).json()["halted"] is True
        since = client.get("/api/v1/trading/status").json()["halted_since_ms"]
        assert isinstance(since, int) and since > 0

    for run in range(2):  # two restarts: still halted, and nothing reaches the broker
        with gateway(audit) as client:
            status = client.get("/api/v1/trading/status").json()
            assert status["halted"] is True and status["halted_since_ms"] == since
            refused = client.post(ORDERS, json=order(f"ks-{run}"))
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "trading_halted"
            assert [o for o in client.get(ORDERS).json() if o["order_remark"] == f"ks-{run}"] == []
            checked = client.post(f"{ORDERS}/check", json=order(f"ks-check-{run}")).json()
            assert checked["passed"] is False and checked["error"]["code"] == "trading_halted"

    with gateway(audit) as client:
        assert client.post("/api/v1/trading/resume").json() == {"halted": False}
    with gateway(audit) as client:  # resumed stays resumed
        status = client.get("/api/v1/trading/status").json()
        assert status["halted"] is False and status["halted_since_ms"] is None
        kinds = [r["kind"] for r in client.app.state.trading.audit.rows() if r["kind"] in ("halt", "resume")]
        assert kinds == ["halt", "resume"]


def old_trail(path: Path, kinds: list[str]) -> None:
    """An audit file as gateways wrote it before the state table: rows only."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        " request_id TEXT, key_id TEXT, client_order_id TEXT, payload TEXT NOT NULL);"
        "CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, request TEXT NOT NULL, outcome TEXT NOT NULL,"
        " updated_ms INTEGER NOT NULL);"
    )
    for i, kind in enumerate(kinds):
        db.execute(
            "INSERT INTO audit (ts_ms, kind, key_id, payload) VALUES (?, ?, ?, '{}')",
            (1000 + i, kind, "boss"),
        )
    db.execute("INSERT INTO audit (ts_ms, kind, payload) VALUES (5000, 'connected', '{}')")
    db.commit()
    db.close()


def service(path: Path) -> TradingService:
    settings = trading_settings(path).trading
    return TradingService(settings, AuditTrail(path))


def test_a_trail_from_before_the_state_table_keeps_its_halt(tmp_path: Path) -> None:
    for kinds, halted in (
        (["halt"], True),
        (["halt", "resume"], False),
        (["resume", "halt"], True),
        ([], False),
    ):
        path = tmp_path / f"{'-'.join(kinds) or 'none'}.sqlite"
        old_trail(path, kinds)
        first = service(path)
        try:
            assert first.halted is halted, kinds
            if halted:
                assert first.kill_switch == {
                    "halted": True,
                    "since_ms": 1000 + len(kinds) - 1,
                    "key_id": "boss",
                }
            assert first.audit.state(KILL_SWITCH) == first.kill_switch  # kept: no scan on the next start
        finally:
            first.audit.close()
        again = service(path)
        try:
            assert again.audit.had_state and again.halted is halted
        finally:
            again.audit.close()


def test_a_halt_during_a_placement_leaves_no_order_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A placement that yields to the loop before its lane trip (here: the calendar reloading) while a halt
    comes in: the order is refused, never sent after the halt's sweep of open orders."""
    import threading

    with gateway(tmp_path / "audit.sqlite") as client:
        service = client.app.state.trading
        detail = service.lane.xtdata.get_instrument_detail("600000.SH")
        body = {**order("ks-race"), "price": round((detail["UpStopPrice"] + detail["DownStopPrice"]) / 2, 2)}
        assert client.post(f"{ORDERS}/check", json=body).json()["passed"] is True  # an order that would go
        entered = threading.Event()
        check_day = service._check_session_day

        async def slow_calendar(now_ms: int) -> None:
            entered.set()
            await asyncio.sleep(0.3)  # the loop runs the halt meanwhile
            await check_day(now_ms)

        monkeypatch.setattr(service, "_check_session_day", slow_calendar)
        result: dict = {}
        placing = threading.Thread(target=lambda: result.update(r=client.post(ORDERS, json=body)))
        placing.start()
        assert entered.wait(10)
        halted = client.post("/api/v1/trading/halt").json()
        placing.join(10)
        refused = result["r"]
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "trading_halted"
        assert halted["halted"] is True
        assert [o for o in client.get(ORDERS).json() if o["order_remark"] == "ks-race"] == []
        client.post("/api/v1/trading/resume")


def test_a_halt_sweeps_after_the_order_in_flight_is_answered(tmp_path: Path) -> None:
    """The order being placed when the switch turns is answered before the sweep of open orders, so the
    sweep finds it in QMT's list and cancels it (QMT lists an order once it has answered it)."""
    import threading
    import time

    from .conftest import sim_env

    with gateway(tmp_path / "audit.sqlite") as client:
        service = client.app.state.trading
        bid = sys.modules["xtquant.xtdata"].get_full_tick(["600036.SH"])["600036.SH"]["bidPrice"][2]
        body = {**order("ks-flight"), "code": "600036.SH", "price": bid}  # rests below the best bid
        faults = sim_env().broker.faults
        faults.delay_order_responses(0.5)
        done: dict = {}
        try:
            placing = threading.Thread(
                target=lambda: done.update(r=client.post(ORDERS, json=body), t=time.monotonic())
            )
            placing.start()
            deadline = time.monotonic() + 10
            while (service.audit.outcome("ks-flight") or {}).get("status") != "sending":  # sent, unanswered
                assert time.monotonic() < deadline
                time.sleep(0.005)
            halted = client.post("/api/v1/trading/halt").json()
            halted_at = time.monotonic()
            placing.join(10)
        finally:
            faults.delay_order_responses(0)
        placed = done["r"].json()
        assert placed["status"] == "accepted" and done["t"] <= halted_at  # answered before the sweep ended
        assert placed["order_id"] in halted["cancel_requested"]
        client.post("/api/v1/trading/resume")
