"""A client whose connection is cut while its order is in flight retries with the same
``client_order_id``: one order exists, and the retry gets its outcome (real uvicorn on loopback)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from qmtgate.api.app import create_app

from .conftest import sim_env, trading_settings

try:  # tests/ on sys.path
    from api.support import start_server
except ImportError:  # tests/ itself is a package
    from tests.api.support import start_server  # type: ignore[no-redef]


def sim_trail(tmp_path: Path) -> list[dict]:
    from qmtgate.source.trading.audit import AuditTrail

    trail = AuditTrail(tmp_path / "a.sqlite")
    try:
        return trail.rows("cut-1")
    finally:
        trail.close()


def test_retry_after_a_cut_connection_never_creates_a_second_order(tmp_path: Path) -> None:
    server = start_server(create_app(trading_settings(tmp_path / "a.sqlite", response_timeout=5.0)))
    try:
        url = f"{server.url}/api/v1/trading/orders"
        price = sys.modules["xtquant.xtdata"].get_full_tick(["600036.SH"])["600036.SH"]["bidPrice"][2]
        body = {"code": "600036.SH", "side": "buy", "volume": 100, "price": price, "client_order_id": "cut-1"}
        faults = sim_env().broker.faults
        faults.delay_order_responses(1.5)  # the SDK answers late...
        try:
            with httpx.Client(timeout=0.5) as client:  # ...and the client gives up first
                try:
                    client.post(url, json=body)
                    raise AssertionError("the request should have timed out")
                except httpx.ReadTimeout:
                    pass
        finally:
            faults.clear()
        with httpx.Client(timeout=30) as client:
            retry = client.post(url, json=body).json()  # waits for the first (one order at a time)
            assert retry["status"] == "accepted" and retry["replayed"] is True
            mine = [o for o in client.get(url).json() if o["order_remark"] == "cut-1"]
            assert len(mine) == 1 and mine[0]["order_id"] == retry["order_id"]
            time.sleep(0.2)
            again = client.post(url, json=body).json()
            assert again["order_id"] == retry["order_id"]
        audit = sim_trail(tmp_path)
        first = next(r for r in audit if r["kind"] == "response.place")["payload"]
        assert first["status"] == "accepted" and "replayed" not in first  # recorded though the client left
    finally:
        server.stop()
