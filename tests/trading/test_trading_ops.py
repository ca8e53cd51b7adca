"""Trading operations on the simulator: Prometheus series after a session (orders by outcome, refusals by
rule, round-trip latency, trader connected), alerts on an ``unknown`` outcome and on a trader disconnect,
the kill switch's treatment of protective sells, and the protection routes' 4xx answers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app

from .conftest import sim_env, trading_settings

ORDERS = "/api/v1/trading/orders"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    audit = tmp_path_factory.mktemp("ops") / "audit.sqlite"
    settings = trading_settings(audit, response_timeout=0.5, risk={"max_orders_per_second": 1000})
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = "^" + re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in /metrics"
    return float(found.group(1))


def price(client: TestClient, code: str, side: str = "bidPrice", level: int = 2) -> float:
    return client.post("/api/v1/xt/full_tick", json={"codes": [code]}).json()["data"][code][side][level]


def sent_alerts(client: TestClient) -> list[Any]:
    """Every alert sent so far, after one more check round (the monitor also checks by itself)."""
    monitor = client.app.state.ops.monitor
    client.portal.call(monitor.check)  # type: ignore[union-attr]
    return list(monitor.sender.sent)


def wait_status(client: TestClient, connected: bool) -> None:
    deadline = time.monotonic() + 30
    while client.get("/api/v1/trading/status").json()["connected"] is not connected:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_metrics_and_the_unknown_outcome_alert(client: TestClient) -> None:
    code = "600036.SH"
    ok = client.post(ORDERS, json={"code": code, "side": "buy", "volume": 100, "price": price(client, code),
                                   "client_order_id": "m-ok"})  # fmt: skip
    assert ok.json()["status"] == "accepted"
    refused = client.post(ORDERS, json={"code": code, "side": "buy", "volume": 150, "price": price(client, code),
                                        "client_order_id": "m-lot"})  # fmt: skip
    assert refused.status_code == 422
    env = sim_env()
    service = client.app.state.trading
    real_push = service.lane._on_push
    service.lane._on_push = lambda kind, data: None  # the answer and the pushes get lost
    env.broker.faults.drop_order_responses(1)
    try:
        lost = client.post(ORDERS, json={"code": code, "side": "buy", "volume": 100,
                                         "price": price(client, code), "client_order_id": "m-unknown"})  # fmt: skip
    finally:
        service.lane._on_push = real_push
    assert lost.json()["status"] == "unknown"
    text = client.get("/metrics").text
    assert metric(text, "qmtgate_trading_orders_total", 'outcome="accepted"') >= 1
    assert metric(text, "qmtgate_trading_orders_total", 'outcome="unknown"') == 1
    assert metric(text, "qmtgate_trading_refusals_total", 'code="lot_size"') == 1
    assert metric(text, "qmtgate_trading_order_round_trip_seconds_count") >= 2
    assert metric(text, "qmtgate_trading_connected") == 1
    assert metric(text, "qmtgate_trading_unknown_outcomes_total") == 1
    assert metric(text, "qmtgate_trading_audit_flushes_total") >= 1  # the orders' rows were fsynced
    assert metric(text, "qmtgate_trading_audit_last_flush_seconds") > 0
    deadline = time.monotonic() + 5  # the audit WAL is checkpointed off the order path, at most once a second
    while metric(client.get("/metrics").text, "qmtgate_trading_audit_checkpoints_total") < 1:
        assert time.monotonic() < deadline, "no audit checkpoint after the orders"
        time.sleep(0.05)
    unknown = [a for a in sent_alerts(client) if a.kind == "trading_unknown_outcome"]
    assert len(unknown) == 1 and unknown[0].details["client_order_id"] == "m-unknown"
    assert unknown[0].severity == "critical"
    again = [a for a in sent_alerts(client) if a.kind == "trading_unknown_outcome"]
    assert len(again) == 1  # once per order


def trading_kinds(client: TestClient, since: int) -> list[str]:
    return [a.kind for a in sent_alerts(client)[since:] if a.kind.startswith("trading_")]


def test_disconnect_alert_and_gauge(client: TestClient) -> None:
    service = client.app.state.trading
    since = len(client.app.state.ops.monitor.sender.sent)
    env = sim_env()
    env.broker.faults.refuse_connect(-1)  # QMT stays away
    try:
        env.broker.faults.disconnect()
        wait_status(client, False)
        deadline = time.monotonic() + 10  # the push reaches the loop after its audit row is on disk
        while service.disconnects < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert trading_kinds(client, since) == ["trading_disconnected"]
        text = client.get("/metrics").text
        assert metric(text, "qmtgate_trading_connected") == 0
        assert metric(text, "qmtgate_trading_disconnects_total") >= 1
    finally:
        env.broker.faults.clear()
        wait_status(client, True)
    deadline = time.monotonic() + 10  # connect_error is cleared just after the lane reports connected
    while len(kinds := trading_kinds(client, since)) < 2:
        assert time.monotonic() < deadline, kinds
        time.sleep(0.05)
    assert kinds == ["trading_disconnected", "trading_reconnected"]


def test_halt_refuses_new_orders_but_not_protective_sells(client: TestClient) -> None:
    service = client.app.state.trading
    code = "000001.SZ"
    assert client.post("/api/v1/trading/halt", params={"cancel_open": "false"}).status_code == 200
    try:
        body = {"code": code, "side": "buy", "volume": 100, "price": price(client, code),
                "client_order_id": "h-new"}  # fmt: skip
        assert client.post(ORDERS, json=body).json()["error"]["code"] == "trading_halted"

        async def protective() -> dict:
            req = {
                **body,
                "client_order_id": "h-prot",
                "price_type": "limit",
                "strategy_name": "",
                "remark": "",
            }
            return await service.place(req, {"request_id": None,
                                       "key_id": "protect"}, protective=True)  # fmt: skip

        outcome = client.portal.call(protective)  # type: ignore[union-attr]
        assert outcome["status"] == "accepted"  # act_when_halted (default): goes through risk and out
    finally:
        client.post("/api/v1/trading/resume")


def test_protection_routes_answer_4xx_for_bad_input(client: TestClient) -> None:
    base = "/api/v1/trading/protections"
    bad = [
        {"kind": "stop_loss", "code": "600000.SH"},  # no stop price
        {"kind": "trailing_stop", "code": "600000.SH", "trail": 0.1, "trail_ratio": 0.1},
        {"kind": "stop_loss", "code": "600000", "stop_price": 9.0},  # not a code
        {"kind": "stop_loss", "code": "600000.SH", "stop_price": -1},
        {"kind": "take_profit", "client_order_id": "nope", "target_price": 9.0},  # no such order
        {"kind": "nope", "code": "600000.SH"},
    ]
    for spec in bad:
        r = client.post(base, json=spec)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (spec, r.text)
    unknown = client.post(base, json={"kind": "stop_loss", "code": "999999.SH", "stop_price": 9.0})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_code", unknown.text
    assert "999999.SH" not in [p["code"] for p in client.get(base).json()]
    assert client.get(f"{base}/0123456789").status_code == 404
    assert client.delete(f"{base}/0123456789").status_code == 404
    assert client.patch(f"{base}/zz", json={}).status_code == 422
    made = client.post(base, json={"kind": "take_profit", "code": "600000.SH", "target_price": 999.0})
    assert made.status_code == 200 and made.json()["status"] == "armed"
    pid = made.json()["id"]
    assert client.patch(f"{base}/{pid}", json={"target_price": 998.0}).json()["target_price"] == 998.0
    assert client.delete(f"{base}/{pid}").json()["status"] == "cancelled"
    assert client.delete(f"{base}/{pid}").status_code == 400
    listed = client.get(base, params={"status": "cancelled"}).json()
    assert pid in [p["id"] for p in listed]
    text = client.get("/metrics").text
    assert metric(text, "qmtgate_trading_protections", 'status="cancelled"') >= 1


_ = anyio  # the TestClient portal runs the coroutines above on the app's loop


def test_a_stop_on_a_suspended_stock_does_not_fire_on_its_flat_tick(client: TestClient) -> None:
    """A suspended stock's tick stands at yesterday's close (phase 1, docs/trading.md): a stop far above
    it would fire on any tradable tick, yet stays armed; the tick is counted as a halted one."""
    env = sim_env()
    t = env.now()
    d = t.day_index
    ctx = env.market.day_context(d)
    suspended = [
        env.market.universe.instruments[i] for i in range(len(ctx.susp_days)) if ctx.susp_days[i] > 0
    ]
    code = next(inst.code for inst in suspended if inst.kind == "stock")
    tick = client.post("/api/v1/xt/full_tick", json={"codes": [code]}).json()["data"][code]
    assert tick["openInt"] == 1 and tick["lastPrice"] == tick["lastClose"] > 0
    base = "/api/v1/trading/protections"
    before = metric(client.get("/metrics").text, "qmtgate_trading_protect_halted_ticks_total")
    made = client.post(base, json={"kind": "stop_loss", "code": code, "stop_price": 999.0})
    assert made.status_code == 200, made.text
    pid = made.json()["id"]
    try:
        deadline = time.monotonic() + 10  # the watch hands over the code's current tick at once
        while metric(client.get("/metrics").text, "qmtgate_trading_protect_halted_ticks_total") <= before:
            assert time.monotonic() < deadline, "the suspended tick never reached the engine"
            time.sleep(0.05)
        view = client.get(f"{base}/{pid}").json()
        assert view["status"] == "armed" and view["halted"] is True and view["trigger"] is None
    finally:
        client.delete(f"{base}/{pid}")


def test_the_fat_finger_check_refuses_people_and_lets_protective_sells_cross(tmp_path: Any) -> None:
    settings = trading_settings(
        tmp_path / "a.sqlite", risk={"max_orders_per_second": 1000, "max_price_deviation": 0.01}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        service = c.app.state.trading
        code = "600036.SH"
        tick = c.post("/api/v1/xt/full_tick", json={"codes": [code]}).json()["data"][code]
        last = tick["lastPrice"]
        far = {"code": code, "side": "buy", "volume": 100, "price": round(last * 1.05, 2),
               "client_order_id": "ff-1"}  # fmt: skip
        refused = c.post(ORDERS, json=far)
        assert refused.status_code == 422 and refused.json()["error"]["details"]["rule"] == "price_deviation"
        assert c.post(f"{ORDERS}/check", json=far).json()["error"]["details"]["rule"] == "price_deviation"
        passive = c.post(ORDERS, json={**far, "price": tick["bidPrice"][1], "client_order_id": "ff-2"})
        assert passive.json()["status"] == "accepted"
        deep_sell = {**far, "side": "sell", "price": round(last * 0.95, 2), "price_type": "limit",
                     "strategy_name": "", "remark": ""}  # fmt: skip

        async def sell(coid: str, protective: bool) -> str:
            try:
                await service.place({**deep_sell, "client_order_id": coid}, {"request_id": None,
                                    "key_id": "t"}, protective=protective)  # fmt: skip
            except Exception as e:  # the refusal names the first rule that failed
                return e.rule  # type: ignore[attr-defined]
            return "sent"

        assert c.portal.call(sell, "ff-3", False) == "price_deviation"  # type: ignore[union-attr]
        # a protective sell passes the deviation check (its band sets the price); here nothing is sellable
        assert c.portal.call(sell, "ff-4", True) == "insufficient_position"  # type: ignore[union-attr]
