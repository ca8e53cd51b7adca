"""A client_order_id is a retry key within its market day: the same id and body on a later day is refused
(409 ``idempotency_conflict``, ``reason: earlier_day``), never answered with the old day's outcome (which
would report an order working today that was never sent) and never sent a second time."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.source.trading.audit import AuditTrail
from qmtgate.source.trading.service import TradingService

from .conftest import trading_settings

ORDERS = "/api/v1/trading/orders"
CODE = "600036.SH"


def body(coid: str) -> dict:
    bid = sys.modules["xtquant.xtdata"].get_full_tick([CODE])[CODE]["bidPrice"][2]
    return {"code": CODE, "side": "buy", "volume": 100, "price": bid, "client_order_id": coid}


def test_the_same_id_on_a_later_market_day_is_refused_not_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(
        create_app(trading_settings(tmp_path / "audit.sqlite")), raise_server_exceptions=False
    ) as c:
        order = body("daily-0001")
        first = c.post(ORDERS, json=order).json()
        assert first.get("status") == "accepted", first
        today = c.app.state.trading.audit.entry("daily-0001")["market_day"]
        again = c.post(ORDERS, json=order).json()  # the same day: a retry, replayed
        assert again["replayed"] is True and again["order_id"] == first["order_id"]

        monkeypatch.setattr(TradingService, "_market_day", lambda self: "2099-01-05")  # a later market day
        later = c.post(ORDERS, json=order)
        assert later.status_code == 409
        error = later.json()["error"]
        assert error["code"] == "idempotency_conflict" and error["details"]["reason"] == "earlier_day"
        assert error["details"]["first_day"] == today
        assert error["details"]["first_outcome"]["order_id"] == first["order_id"]
        assert "new client_order_id" in error["message"]
        sent = [o for o in c.get(ORDERS).json() if o["order_remark"] == "daily-0001"]
        assert len(sent) == 1  # nothing sent again
        changed = c.post(ORDERS, json={**order, "volume": 200})  # a different body: the other reason
        assert changed.json()["error"]["details"]["reason"] == "different_order"


def test_a_claim_from_before_market_days_has_none(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, request TEXT NOT NULL, outcome TEXT NOT NULL,"
        " updated_ms INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO orders VALUES ('old-1', '{}', '{\"status\": \"accepted\"}', 1749695400000)")
    db.commit()
    db.close()
    trail = AuditTrail(path)
    try:
        assert trail.entry("old-1")["market_day"] is None  # unknown: replayed as before, never refused
        trail.claim("new-1", {}, {"status": "sending"}, "2025-06-13")
        assert trail.entry("new-1")["market_day"] == "2025-06-13"
    finally:
        trail.close()
