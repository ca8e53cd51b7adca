"""Dry-run mode, and an order the gateway crashed while sending: ``unknown`` after the restart, then
reconciled from the SDK's order list, never sent again."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.source.trading.audit import AuditTrail

from .conftest import ACCOUNT_ID, sim_env, trading_settings

ORDERS = "/api/v1/trading/orders"


def test_dry_run_checks_everything_and_sends_nothing(tmp_path: Path) -> None:
    settings = trading_settings(tmp_path / "a.sqlite", risk={"dry_run": True})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ask = sys.modules["xtquant.xtdata"].get_full_tick(["600000.SH"])["600000.SH"]["askPrice"][0]
        body = {"code": "600000.SH", "side": "buy", "volume": 100, "price": ask, "client_order_id": "dry-1"}
        r = client.post(ORDERS, json=body)
        assert r.status_code == 200 and r.json()["status"] == "dry_run"
        bad = client.post(ORDERS, json={**body, "volume": 150, "client_order_id": "dry-2"})
        assert bad.status_code == 422 and bad.json()["error"]["details"]["rule"] == "lot_size"
        assert [o for o in client.get(ORDERS).json() if o["order_remark"].startswith("dry-")] == []
        assert client.get("/api/v1/trading/status").json()["dry_run"] is True


def test_order_sent_before_a_crash_is_unknown_then_reconciled(tmp_path: Path) -> None:
    audit_path = tmp_path / "a.sqlite"
    body = {"code": "600036.SH", "side": "buy", "volume": 100, "price": 30.0, "client_order_id": "crash-x",
            "price_type": "limit", "strategy_name": "", "remark": ""}  # fmt: skip
    trail = AuditTrail(audit_path)  # the previous run claimed it and died before the SDK answered
    trail.claim("crash-x", body, {"status": "sending", "client_order_id": "crash-x"})
    trail.close()
    with TestClient(create_app(trading_settings(audit_path)), raise_server_exceptions=False) as client:
        assert client.app.state.trading.audit.outcome("crash-x")["status"] == "unknown"
        # ...but the order had reached the broker (sent with the client_order_id as its remark)
        price = sys.modules["xtquant.xtdata"].get_full_tick(["600036.SH"])["600036.SH"]["bidPrice"][2]
        order_id, _ = sim_env().broker.place_order(
            ACCOUNT_ID, 2, "600036.SH", 23, 100, 11, price, "", "crash-x", 1
        )
        state = client.get(f"{ORDERS}/crash-x").json()
        assert state["status"] == "accepted" and state["order_id"] == order_id
        assert state["reconciled_from"] in ("push", "query")  # its order push, or the query on this GET
        retry = client.post(ORDERS, json=body).json()
        assert retry["order_id"] == order_id and retry["replayed"] is True
        assert len([o for o in client.get(ORDERS).json() if o["order_remark"] == "crash-x"]) == 1
