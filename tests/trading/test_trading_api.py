"""Trading over REST on the simulated paper broker: place -> order/trade pushes -> position and asset,
idempotent retries, an unknown outcome reconciled, the kill switch, the audit trail (docs/trading.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import sim_env

ORDERS = "/api/v1/trading/orders"


def tick(code: str) -> dict[str, Any]:
    return sys.modules["xtquant.xtdata"].get_full_tick([code])[code]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def audit_kinds(client: TestClient, coid: str) -> list[str]:
    return [row["kind"] for row in client.app.state.trading.audit.rows(coid)]


def broker_orders_with_remark(client: TestClient, coid: str) -> list[dict]:
    return [o for o in client.get(ORDERS).json() if o["order_remark"] == coid]


def order_body(coid: str, code: str, price: float, volume: int = 100, side: str = "buy") -> dict:
    return {"code": code, "side": side, "volume": volume, "price": price, "client_order_id": coid}


def test_place_fill_updates_position_and_asset(trading_client: TestClient) -> None:
    code = "600000.SH"
    before = trading_client.get("/api/v1/trading/asset").json()
    ask1 = tick(code)["askPrice"][0]
    r = trading_client.post(ORDERS, json={**order_body("e2e-1", code, ask1), "strategy_name": "s1"})
    assert r.status_code == 200, r.text
    placed = r.json()
    assert placed["status"] == "accepted" and placed["order_id"] > 0

    # the SDK's pushes reach the audit trail: reported, traded, succeeded
    def statuses() -> list[int]:
        rows = trading_client.app.state.trading.audit.rows("e2e-1")
        return [row["payload"]["order_status"] for row in rows if row["kind"] == "push.order"]

    wait_for(lambda: 56 in statuses())
    assert "push.trade" in audit_kinds(trading_client, "e2e-1")
    statuses = statuses()
    assert statuses[0] == 49 and statuses[-1] == 56
    state = trading_client.get(f"{ORDERS}/e2e-1").json()
    assert state["order"]["order_status"] == 56 and state["order"]["traded_volume"] == 100
    trades = [
        t for t in trading_client.get("/api/v1/trading/trades").json() if t["order_id"] == placed["order_id"]
    ]
    assert sum(t["traded_volume"] for t in trades) == 100 and trades[0]["traded_price"] == ask1
    position = {p["stock_code"]: p for p in trading_client.get("/api/v1/trading/positions").json()}[code]
    assert position["volume"] == 100 and position["can_use_volume"] == 0  # T+1
    after = trading_client.get("/api/v1/trading/asset").json()
    fees = sum(t["commission"] for t in trades)
    assert after["cash"] == pytest.approx(before["cash"] - ask1 * 100 - fees)


def test_retry_with_same_client_order_id_never_sends_twice(trading_client: TestClient) -> None:
    code = "600036.SH"
    body = order_body("idem-1", code, tick(code)["bidPrice"][2])  # rests in the book
    first = trading_client.post(ORDERS, json=body).json()
    second = trading_client.post(ORDERS, json=body).json()
    assert first["status"] == "accepted"
    assert second["order_id"] == first["order_id"] and second["replayed"] is True
    assert len(broker_orders_with_remark(trading_client, "idem-1")) == 1
    conflict = trading_client.post(ORDERS, json={**body, "volume": 200})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert len(broker_orders_with_remark(trading_client, "idem-1")) == 1


def test_dropped_sdk_answer_is_unknown_then_reconciled(trading_client: TestClient) -> None:
    """The SDK's answer is dropped (fault injection) and its pushes are lost too: the gateway says
    ``unknown`` (not rejected), never resends, and learns the order id from the SDK's order list."""
    service = trading_client.app.state.trading
    code = "601318.SH"
    real_push = service.lane._on_push
    service.lane._on_push = lambda kind, data: None  # the pushes get lost
    sim_env().broker.faults.drop_order_responses(1)
    try:
        r = trading_client.post(ORDERS, json=order_body("unk-1", code, tick(code)["bidPrice"][2]))
    finally:
        service.lane._on_push = real_push
    assert r.status_code == 200 and r.json()["status"] == "unknown" and r.json()["order_id"] is None
    assert "sdk.timeout" in audit_kinds(trading_client, "unk-1")
    (live,) = broker_orders_with_remark(trading_client, "unk-1")  # the order is live at the broker
    state = trading_client.get(f"{ORDERS}/unk-1").json()
    assert state["status"] == "accepted" and state["order_id"] == live["order_id"]
    assert state["reconciled_from"] == "query"
    retry = trading_client.post(ORDERS, json=order_body("unk-1", code, tick(code)["bidPrice"][2])).json()
    assert retry["order_id"] == live["order_id"] and retry["replayed"] is True
    assert len(broker_orders_with_remark(trading_client, "unk-1")) == 1


def test_risk_refusal_is_a_422_with_its_rule_and_sends_nothing(trading_client: TestClient) -> None:
    code = "600519.SH"
    r = trading_client.post(ORDERS, json=order_body("risk-1", code, tick(code)["askPrice"][0], volume=150))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "risk_refused" and r.json()["error"]["details"]["rule"] == "lot_size"
    assert broker_orders_with_remark(trading_client, "risk-1") == []
    assert "refused" in audit_kinds(trading_client, "risk-1")


def test_kill_switch_cancels_open_orders_and_refuses_new_ones(trading_client: TestClient) -> None:
    code = "000001.SZ"
    placed = trading_client.post(ORDERS, json=order_body("halt-1", code, tick(code)["bidPrice"][2])).json()
    assert placed["status"] == "accepted"
    halted = trading_client.post("/api/v1/trading/halt").json()
    assert placed["order_id"] in halted["cancel_requested"]
    refused = trading_client.post(ORDERS, json=order_body("halt-2", code, tick(code)["bidPrice"][2]))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "trading_halted"
    assert broker_orders_with_remark(trading_client, "halt-2") == []
    env = sim_env()
    env.market.clock.advance(3)  # the cancel reaches the exchange with the next snapshot
    env.broker.sync()
    assert trading_client.get(f"{ORDERS}/halt-1").json()["order"]["order_status"] == 54  # cancelled
    assert trading_client.post("/api/v1/trading/resume").json() == {"halted": False}
    later = trading_client.post(ORDERS, json=order_body("halt-3", code, tick(code)["bidPrice"][2]))
    assert later.json()["status"] == "accepted"


def test_cancel_by_client_order_id(trading_client: TestClient) -> None:
    code = "600030.SH"
    trading_client.post(ORDERS, json=order_body("cx-1", code, tick(code)["bidPrice"][2]))
    r = trading_client.post("/api/v1/trading/cancel", json={"client_order_id": "cx-1"})
    assert r.status_code == 200 and r.json()["cancel"] == "requested"
    missing = trading_client.post("/api/v1/trading/cancel", json={"client_order_id": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_not_found"
    both = trading_client.post("/api/v1/trading/cancel", json={"client_order_id": "cx-1", "order_id": 1})
    assert both.status_code == 400


def test_a_refused_cancel_says_why_from_the_order_itself(trading_client: TestClient) -> None:
    code = "600030.SH"
    placed = trading_client.post(ORDERS, json=order_body("cw-1", code, tick(code)["bidPrice"][2])).json()
    oid = placed["order_id"]
    assert trading_client.post("/api/v1/trading/cancel", json={"order_id": oid}).status_code == 200
    env = sim_env()
    env.market.clock.advance(3)  # the cancel reaches the exchange with the next snapshot
    env.broker.sync()
    again = trading_client.post("/api/v1/trading/cancel", json={"order_id": oid})
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "cancel_refused" and "cancelled" in error["message"]
    assert error["details"] == {"order_id": oid, "order_status": 54, "status_name": "cancelled"}
    unknown = trading_client.post("/api/v1/trading/cancel", json={"order_id": 987654321})
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "order_not_found"
    assert unknown.json()["error"]["details"] == {"order_id": 987654321}


def test_an_order_id_beyond_64_bits_is_a_422_and_the_largest_one_a_404(trading_client: TestClient) -> None:
    """Found by schemathesis: a cancel of order 2**68 answered 500 (its 404 echoed the id, which JSON could
    not write). Ids are 64-bit; beyond that the body is refused up front."""
    huge = trading_client.post("/api/v1/trading/cancel", json={"order_id": 359880067833408782336})
    assert huge.status_code == 422, huge.text
    assert huge.json()["error"]["code"] == "validation_error"
    largest = trading_client.post("/api/v1/trading/cancel", json={"order_id": 2**63 - 1})
    assert largest.status_code == 404, largest.text
    assert largest.json()["error"]["details"] == {"order_id": 2**63 - 1}


def test_an_error_body_with_a_wide_integer_is_still_written() -> None:
    import orjson

    from qmtgate.api.responses import dumps

    body = {"error": {"details": {"ids": [2**70, -(2**64), 2**64 - 1, True], "n": 3}}}
    assert orjson.loads(dumps(body)) == {
        "error": {"details": {"ids": [str(2**70), str(-(2**64)), 2**64 - 1, True], "n": 3}}
    }


def test_bad_order_bodies_are_422(trading_client: TestClient) -> None:
    good = order_body("bad-1", "600000.SH", 10.0)
    for change in (
        {"client_order_id": None},
        {"code": "600000"},
        {"side": "short"},
        {"price": 0},
        {"volume": -1},
    ):
        r = trading_client.post(ORDERS, json={**good, **change})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", change


def test_sdk_raising_while_sending_is_unknown_not_a_500(trading_client: TestClient, monkeypatch) -> None:
    """An exception from order_stock_async (the order may or may not have left) is an ``unknown``
    outcome, recorded; never a 500, never resent."""
    lane = trading_client.app.state.trading.lane

    def boom(*args: Any) -> Any:
        raise OSError("native client gone")

    monkeypatch.setattr(lane.trader, "order_stock_async", boom)
    r = trading_client.post(ORDERS, json=order_body("boom-1", "600000.SH", tick("600000.SH")["askPrice"][0]))
    assert (
        r.status_code == 200
        and r.json()["status"] == "unknown"
        and "native client gone" in r.json()["error_msg"]
    )
    assert "sdk.error" in audit_kinds(trading_client, "boom-1")
    monkeypatch.undo()
    retry = trading_client.post(
        ORDERS, json=order_body("boom-1", "600000.SH", tick("600000.SH")["askPrice"][0])
    )
    assert retry.json()["status"] == "unknown" and retry.json()["replayed"] is True  # not resent
    assert broker_orders_with_remark(trading_client, "boom-1") == []


def test_check_runs_every_pre_trade_check_and_sends_claims_and_counts_nothing(
    trading_client: TestClient,
) -> None:
    code = "600519.SH"
    t = tick(code)
    service = trading_client.app.state.trading
    counted = service.risk.counter.today
    body = order_body("chk-1", code, t["bidPrice"][2])
    passed = trading_client.post(f"{ORDERS}/check", json=body)
    assert passed.status_code == 200, passed.text
    assert passed.json() == {"passed": True, "value": round(t["bidPrice"][2] * 100, 2), "error": None}
    refused = trading_client.post(f"{ORDERS}/check", json={**body, "price": round(t["lastPrice"] * 1.5, 2)})
    assert refused.status_code == 200
    verdict = refused.json()
    assert verdict["passed"] is False and verdict["value"] is None
    assert verdict["error"]["code"] == "risk_refused" and verdict["error"]["details"]["rule"] == "price_limit"
    # the same order placed meets the same refusal
    placed = trading_client.post(
        ORDERS, json={**body, "client_order_id": "chk-2", "price": round(t["lastPrice"] * 1.5, 2)}
    )
    assert placed.status_code == 422 and placed.json()["error"] == verdict["error"]
    without_id = {k: v for k, v in body.items() if k != "client_order_id"}
    assert trading_client.post(f"{ORDERS}/check", json=without_id).json()["passed"] is True
    assert trading_client.post(f"{ORDERS}/check", json={**without_id, "volume": 0}).status_code == 422
    # nothing claimed, sent or counted
    assert service.audit.outcome("chk-1") is None and broker_orders_with_remark(trading_client, "chk-1") == []
    assert service.risk.counter.today == counted
    trading_client.post("/api/v1/trading/halt", params={"cancel_open": False})
    try:
        halted = trading_client.post(f"{ORDERS}/check", json=body).json()
        assert halted["passed"] is False and halted["error"]["code"] == "trading_halted"
    finally:
        trading_client.post("/api/v1/trading/resume")


def test_market_type_is_validated_and_kept_out_of_the_ledger_when_not_given(
    trading_client: TestClient,
) -> None:
    body = {
        "code": "000001.SZ",
        "side": "buy",
        "volume": 100,
        "price_type": "market",
        "client_order_id": "mt-1",
    }
    wrong = trading_client.post(ORDERS, json={**body, "market_type": "best5_limit"})  # an SSE-only type
    assert wrong.status_code == 422 and wrong.json()["error"]["details"]["rule"] == "market_type"
    assert wrong.json()["error"]["details"]["accepted"] == [
        "best5_cancel",
        "peer_best",
        "own_best",
        "ioc",
        "fok",
    ]
    limit = trading_client.post(
        ORDERS, json={**body, "price_type": "limit", "price": 10.0, "market_type": "fok"}
    )
    assert limit.status_code == 422 and limit.json()["error"]["code"] == "validation_error"
    assert trading_client.post(ORDERS, json={**body, "market_type": "nope"}).status_code == 422
    placed = trading_client.post(ORDERS, json={**body, "client_order_id": "mt-2"}).json()
    assert placed["status"] == "accepted"
    # the ledger keeps the request as before the field existed, so an older request's retry compares equal
    assert "market_type" not in trading_client.app.state.trading.audit.entry("mt-2")["request"]
    typed = trading_client.post(ORDERS, json={**body, "client_order_id": "mt-3", "market_type": "fok"}).json()
    assert trading_client.app.state.trading.audit.entry("mt-3")["request"]["market_type"] == "fok"
    assert typed["status"] == "accepted"


def test_a_latest_price_order_is_a_limit_at_the_last_price(trading_client: TestClient) -> None:
    code = "600030.SH"
    last = tick(code)["lastPrice"]
    body = {"code": code, "side": "buy", "volume": 100, "price_type": "latest", "client_order_id": "lp-1"}
    checked = trading_client.post(f"{ORDERS}/check", json=body).json()
    assert checked["passed"] is True and checked["value"] == round(last * 100, 2)
    placed = trading_client.post(ORDERS, json=body).json()
    assert placed["status"] == "accepted"
    order = trading_client.get(f"{ORDERS}/lp-1").json()["order"]
    assert order["price"] == last and order["order_volume"] == 100
