"""A stop-loss set before a gateway restart fires after it when the simulated price crosses, through a
real uvicorn on loopback and ``qmtgate.client``; a second restart past the crossing sends nothing more.

The simulated market is deterministic (seeded): the test reads the 2025-06-12 price path of a code from
the simulator and sets the stop at a price that path reaches after 10:30, from a session of the day
before (when the shares were bought: T+1 makes them sellable on the 12th). The paper broker's accounts
and the audit database (with the protections) are files shared by the three gateway runs.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.client import Client
from qmtgate.config import Settings

from .conftest import ACCOUNT_ID, USERDATA, sim_env
from .live_support import connect, recv

try:  # tests/ on sys.path
    from api.support import start_server
except ImportError:  # tests/ itself is a package
    from tests.api.support import start_server  # type: ignore[no-redef]

TODAY = dt.date(2025, 6, 12)
CANDIDATES = ("601318.SH", "600036.SH", "000002.SZ", "600519.SH", "000001.SZ")


def settings(start: str, audit: Path, paper: Path, create: bool) -> Settings:
    return Settings(
        source="sim",
        sim={"clock": "manual", "start": start, "paper_db": str(paper), "paper_create": create},
        trading={
            "enabled": True,
            "account_id": ACCOUNT_ID,
            "userdata_path": USERDATA,
            "audit_path": str(audit),
            "allow_loopback_without_auth": True,
            "response_timeout": 2.0,
        },
    )


def crossing(code: str) -> tuple[float, float, float] | None:
    """(price at 10:30, stop price, seconds after 10:30 when the path first trades at or below it) on
    2025-06-12, or None when the path never falls 3 ticks within 15 minutes."""
    from qmtgate.sim.daypath import SLOT_SECONDS, slot_at

    m = sim_env().market
    path = m.day_path(m.index_of(code), m.calendar.index_of(TODAY))
    k0 = slot_at(10 * 3600 + 30 * 60)
    traded = np.flatnonzero(path.volume[: k0 + 1] > 0)
    start = int(path.price[traded[-1]])
    for k in range(k0 + 1, k0 + 300):
        if path.volume[k] > 0 and path.price[k] <= start - 3:
            return (
                round(start * path.tick, 2),
                round(int(path.price[k]) * path.tick, 2),
                float(SLOT_SECONDS[k] - SLOT_SECONDS[k0]),
            )
    return None


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def test_stop_loss_survives_restart_and_fires_once(tmp_path: Path) -> None:
    audit, paper = tmp_path / "audit.sqlite", tmp_path / "paper.sqlite"
    # -- 2025-06-11: buy, and set the stop-loss
    with TestClient(create_app(settings("20250611103000", audit, paper, True))) as day1:
        code, (start, stop, after) = next(
            (c, x) for c in CANDIDATES if (x := crossing(c)) is not None and x[2] > 3
        )
        ask = day1.post("/api/v1/xt/full_tick", json={"codes": [code]}).json()["data"][code]["askPrice"][0]
        body = {"code": code, "side": "buy", "volume": 300, "price": ask, "client_order_id": "pr-buy"}
        assert day1.post("/api/v1/trading/orders", json=body).json()["status"] == "accepted"
        wait_for(lambda: any(p["stock_code"] == code for p in day1.get("/api/v1/trading/positions").json()))
        created = day1.post(
            "/api/v1/trading/protections", json={"kind": "stop_loss", "code": code, "stop_price": stop}
        )
        assert created.status_code == 200, created.text
        pid = created.json()["id"]
        assert created.json()["status"] == "armed"

    # -- restart on 2025-06-12: the stop is remembered, armed, and fires when the price crosses it
    env_orders: list[dict[str, Any]] = []
    server = start_server(create_app(settings("20250612103000", audit, paper, False)))
    ws = connect("ws://" + server.url.removeprefix("http://") + "/api/v1/ws", open_timeout=30)
    try:
        assert recv(ws)["type"] == "hello"
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading"}).decode())
        assert recv(ws)["type"] == "subscribed"
        with Client(server.url, format="json") as client:
            listed = client.trading_protections()
            assert list(listed["id"]) == [pid] and listed["status"].iloc[0] == "armed"
            assert client.trading_protection(pid)["last_price"] == start  # the seed quote, above the stop
            env = sim_env()
            assert env.broker is not None
            moved = 0.0
            while moved < after:  # 3 s market steps until the path crosses the stop
                env.market.clock.advance(3)
                moved += 3
            try:
                fired = wait_for(
                    lambda: (p := client.trading_protection(pid))["status"] in ("triggered", "failed") and p
                )
            except AssertionError:
                with httpx_client(server.url) as http:
                    pos = http.get("/api/v1/trading/positions").json()
                    odr = http.get("/api/v1/trading/orders").json()
                raise AssertionError((client.trading_protection(pid), pos, odr)) from None
            assert fired["status"] == "triggered", fired
            assert fired["trigger"]["last_price"] <= stop
            order = fired["order"]
            assert order["client_order_id"] == f"pt-{pid}-0" and order["side"] == "sell"
            assert order["volume"] == 300  # all of the sellable position
            assert stop * 0.98 - 0.01 <= order["price"] <= fired["trigger"]["last_price"]
            assert fired["outcome"]["status"] == "accepted"
            with httpx_client(server.url) as http:
                env_orders = [
                    o
                    for o in http.get("/api/v1/trading/orders").json()
                    if o["order_remark"] == order["client_order_id"]
                ]
            assert len(env_orders) == 1
            # the trigger is an account event on the WebSocket trading channel, beside its order's pushes
            # (which may come before or after it: the SDK pushes on its own thread)
            events: list[dict[str, Any]] = []

            def order_pushed() -> bool:
                return any(
                    e["event"] == "order" and e["data"].get("order_remark") == order["client_order_id"]
                    for e in events
                )

            while "protect.triggered" not in [e["event"] for e in events] or not order_pushed():
                msg = recv(ws)
                if msg["type"] == "trading":
                    events.append(msg)
            kinds = [e["event"] for e in events]
            assert kinds.count("protect.triggered") == 1
            triggered = events[kinds.index("protect.triggered")]["data"]
            assert (
                triggered["id"] == pid and triggered["order"]["client_order_id"] == order["client_order_id"]
            )
            metrics = client_metrics(server.url)
            assert (
                'qmtgate_trading_protect_triggers_total{kind="stop_loss",outcome="accepted"} 1.0' in metrics
            )
    finally:
        ws.close()
        server.stop()

    # -- a second restart, past the crossing again: nothing more is sent
    with TestClient(create_app(settings("20250612103000", audit, paper, False))) as day2b:
        env = sim_env()
        moved = 0.0
        while moved < after + 6:
            env.market.clock.advance(3)
            moved += 3
        time.sleep(0.5)
        state = day2b.get(f"/api/v1/trading/protections/{pid}").json()
        assert state["status"] == "triggered" and state["attempt"] == 1
        sells = [o for o in day2b.get("/api/v1/trading/orders").json() if o["order_remark"].startswith("pt-")]
        assert len(sells) == 1
        kinds = [r["kind"] for r in day2b.app.state.trading.audit.rows(f"pt-{pid}-0")]
        assert kinds.count("event.protect.triggered") == 1


def httpx_client(url: str) -> Any:
    import httpx

    return httpx.Client(base_url=url, timeout=30)


def client_metrics(url: str) -> str:
    with httpx_client(url) as http:
        return http.get("/metrics").text
