"""Audit durability modes (``trading.audit_sync``) and what covers a power cut in ``normal`` mode: the
WAL is fsynced off the order path within the flush interval, and a claim lost with the last window is
rebuilt from QMT's own order at the next start, so a retry is answered and never sent twice."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.source.trading.audit import AuditTrail

from .conftest import ACCOUNT_ID, USERDATA, qmt_up_after

ORDERS = "/api/v1/trading/orders"


def settings(audit: Path, paper: Path, create: bool) -> Settings:
    """A gateway whose paper account outlives it (as QMT's orders outlive a gateway restart)."""
    return Settings(
        source="sim",
        sim={"clock": "manual", "start": "20250612103000", "paper_db": str(paper), "paper_create": create},
        trading={"enabled": True, "account_id": ACCOUNT_ID, "userdata_path": USERDATA,
                 "audit_path": str(audit), "allow_loopback_without_auth": True, "response_timeout": 2.0},
    )  # fmt: skip


def order_body(coid: str) -> dict[str, Any]:
    """A resting buy of 601398.SH at a bid below the best (it stays open)."""
    tick = sys.modules["xtquant.xtdata"].get_full_tick(["601398.SH"])["601398.SH"]
    return {"code": "601398.SH", "side": "buy", "volume": 100, "price": tick["bidPrice"][2],
            "client_order_id": coid}  # fmt: skip


def placed_then_claim_lost(audit_path: Path, paper: Path, coid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A first gateway places ``coid``; then a power cut takes its claim and every audit row of it from the
    file (the last flush window). Returns (the order's body, its outcome)."""
    with TestClient(create_app(settings(audit_path, paper, True)), raise_server_exceptions=False) as client:
        body = order_body(coid)
        first = client.post(ORDERS, json=body).json()
        assert first["status"] == "accepted"
    db = sqlite3.connect(audit_path)
    with db:
        db.execute("DELETE FROM orders WHERE client_order_id = ?", (coid,))
        db.execute("DELETE FROM audit WHERE client_order_id = ?", (coid,))
    db.close()
    return body, first


@pytest.mark.parametrize(("sync", "pragma"), [("normal", 1), ("full", 2)])
def test_the_sync_mode_sets_sqlite_and_normal_fsyncs_the_wal_after_writes(
    tmp_path: Path, sync: str, pragma: int
) -> None:
    trail = AuditTrail(tmp_path / "a.sqlite", sync=sync, flush_interval=0.01)  # type: ignore[arg-type]
    try:
        with trail.connection() as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == pragma
        assert trail.flush_stats()["flushes"] == 0  # nothing written yet: nothing to flush
        trail.append("request.place", {"n": 1})
        deadline = time.monotonic() + 5
        while sync == "normal" and trail.flush_stats()["flushes"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = trail.flush_stats()
        assert stats["sync"] == sync
        assert (stats["flushes"] >= 1) if sync == "normal" else (stats["flushes"] == 0)
    finally:
        trail.close()
    again = AuditTrail(tmp_path / "a.sqlite", sync=sync)  # type: ignore[arg-type]
    try:
        assert [r["kind"] for r in again.rows()] == ["request.place"]
    finally:
        again.close()


def test_an_unknown_sync_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="audit sync"):
        AuditTrail(tmp_path / "a.sqlite", sync="off")  # type: ignore[arg-type]


def test_a_claim_lost_in_a_power_cut_is_rebuilt_from_qmt_and_a_retry_is_not_sent_again(
    tmp_path: Path,
) -> None:
    audit_path = tmp_path / "a.sqlite"
    paper = tmp_path / "paper.sqlite"
    body, first = placed_then_claim_lost(audit_path, paper, "cut-1")
    with TestClient(create_app(settings(audit_path, paper, False)), raise_server_exceptions=False) as client:
        trail = client.app.state.trading.audit
        assert trail.outcome("cut-1") == {
            "client_order_id": "cut-1", "status": "accepted", "order_id": first["order_id"],
            "reconciled_from": "recovered",
        }  # fmt: skip
        assert [r["kind"] for r in trail.rows(client_order_id="cut-1")] == ["recovered"]
        retry = client.post(ORDERS, json=body).json()
        assert retry["replayed"] is True and retry["order_id"] == first["order_id"]
        assert len([o for o in client.get(ORDERS).json() if o["order_remark"] == "cut-1"]) == 1
        other = client.post(ORDERS, json={**body, "volume": 200})  # same id, another order: refused
        assert other.status_code == 409
        assert other.json()["error"]["details"]["first_request"]["recovered_from_sdk"] is True
        # orders placed outside the gateway with a remark that is no client_order_id are left alone
        assert all(
            trail.outcome(o["order_remark"]) is not None
            for o in client.get(ORDERS).json()
            if o["order_remark"] and " " not in o["order_remark"]
        )


def test_a_restart_in_the_session_does_not_refill_the_daily_order_limit(tmp_path: Path) -> None:
    audit_path, paper = tmp_path / "a.sqlite", tmp_path / "paper.sqlite"

    def gateway(create: bool) -> TestClient:
        s = settings(audit_path, paper, create)
        s = s.model_copy(update={"trading": s.trading.model_copy(update={"risk": s.trading.risk.model_copy(
            update={"max_orders_per_day": 3})})})  # fmt: skip
        return TestClient(create_app(s), raise_server_exceptions=False)

    def order(client: TestClient, coid: str) -> Any:
        return client.post(ORDERS, json=order_body(coid))

    with gateway(True) as client:
        assert [order(client, f"day-{i}").json()["status"] for i in (1, 2)] == ["accepted"] * 2
    with gateway(False) as client:
        assert client.app.state.trading.risk.counter.today == 2  # from QMT's orders of the day
        assert order(client, "day-3").json()["status"] == "accepted"
        refused = order(client, "day-4")
        assert refused.status_code == 422 and refused.json()["error"]["details"]["rule"] == "orders_per_day"
        assert order(client, "day-1").json()["replayed"] is True  # a retry is no new order: still answered


def test_a_lost_claim_is_rebuilt_also_when_qmt_comes_up_after_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway restarts before QMT is logged in again: the claims come back at the late connect."""
    body, first = placed_then_claim_lost(tmp_path / "a.sqlite", tmp_path / "paper.sqlite", "late-1")
    qmt_up_after(monkeypatch, failures=1)
    with TestClient(
        create_app(settings(tmp_path / "a.sqlite", tmp_path / "paper.sqlite", False)),
        raise_server_exceptions=False,
    ) as client:
        trail = client.app.state.trading.audit
        deadline = time.monotonic() + 30
        while trail.outcome("late-1") is None:
            assert time.monotonic() < deadline, "the claim was not rebuilt after the late connect"
            time.sleep(0.05)
        assert trail.outcome("late-1")["order_id"] == first["order_id"]
        assert client.app.state.trading.risk.counter.today == 1
        retry = client.post(ORDERS, json=body).json()
        assert retry["replayed"] is True and retry["order_id"] == first["order_id"]
