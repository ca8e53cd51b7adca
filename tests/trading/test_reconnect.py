"""After ``on_disconnected`` the lane connects a new trader with a new session, subscribes again, and
records what changed while it was away (an order cancelled from the terminal meanwhile)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app

from .conftest import ACCOUNT_ID, qmt_up_after, sim_env, trading_settings

ORDERS = "/api/v1/trading/orders"
pytestmark = pytest.mark.slow  # each test waits out reconnect retries


def wait_status(client: TestClient, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/v1/trading/status").json()
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched: {status}")
        time.sleep(0.05)


def test_reconnects_with_a_new_session_and_catches_up(tmp_path: Path) -> None:
    with TestClient(
        create_app(trading_settings(tmp_path / "a.sqlite")), raise_server_exceptions=False
    ) as client:
        service = client.app.state.trading
        env = sim_env()
        price = sys.modules["xtquant.xtdata"].get_full_tick(["000001.SZ"])["000001.SZ"]["bidPrice"][2]
        body = {"code": "000001.SZ", "side": "buy", "volume": 100, "price": price, "client_order_id": "rc-1"}
        placed = client.post(ORDERS, json=body).json()
        assert placed["status"] == "accepted"
        first_session = client.get("/api/v1/trading/status").json()["session_id"]
        env.broker.faults.refuse_connect(-1)  # QMT is away for a while
        env.broker.faults.disconnect()
        wait_status(client, lambda s: not s["connected"])
        refused = client.post(ORDERS, json={**body, "client_order_id": "rc-2"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "trading_unavailable"
        # meanwhile the order is cancelled from the terminal itself
        env.broker.cancel_order(ACCOUNT_ID, 2, placed["order_id"], None, None)
        env.market.clock.advance(3)
        env.broker.sync()
        deadline = time.monotonic() + 30
        while "reconnect_failed" not in [r["kind"] for r in service.audit.rows()]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        env.broker.faults.clear()
        status = wait_status(client, lambda s: s["connected"])
        assert status["session_id"] != first_session
        deadline = time.monotonic() + 10  # the status can show the new session before its audit row lands
        while "reconnected" not in (kinds := [r["kind"] for r in service.audit.rows()]):
            assert time.monotonic() < deadline, "no reconnected row in the audit trail"
            time.sleep(0.05)
        assert kinds.index("push.disconnected") < kinds.index("reconnect_failed") < kinds.index("reconnected")
        deadline = time.monotonic() + 10  # the catch-up queries run right after the reconnect, not before it
        while not (catchup := [r for r in service.audit.rows("rc-1") if r["kind"] == "catchup.order"]):
            assert time.monotonic() < deadline, "no catch-up of the order cancelled while away"
            time.sleep(0.05)
        assert catchup and catchup[-1]["payload"]["order_status"] == 54  # cancelled while away
        again = client.post(ORDERS, json={**body, "client_order_id": "rc-3"})
        assert again.status_code == 200 and again.json()["status"] == "accepted"


def test_qmt_not_up_at_start_is_retried_until_it_is(tmp_path: Path, monkeypatch) -> None:
    """The gateway starts before QMT is logged in: trading answers 503 with the reason, keeps trying, and
    comes up by itself (config errors such as a wrong path are not retried: test_trading_access)."""
    failures = qmt_up_after(monkeypatch, failures=2)
    with TestClient(
        create_app(trading_settings(tmp_path / "a.sqlite")), raise_server_exceptions=False
    ) as client:
        r = client.post(ORDERS, json={"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0,
                                      "client_order_id": "early-1"})  # fmt: skip
        assert r.status_code == 503 and r.json()["error"]["details"]["reason"] == "qmt_not_connected"
        status = wait_status(client, lambda s: s["connected"])
        assert status["connect_error"] is None and failures["left"] == 0
        kinds = [r["kind"] for r in client.app.state.trading.audit.rows()]
        assert kinds[0] == "connect_error" and "reconnect_failed" in kinds and "reconnected" in kinds
