"""The order fast lane (``POST /api/v1/trading/orders`` past FastAPI's routing) answers exactly as the
route: the same outcomes, idempotency, error envelopes, security and headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qmtgate.api.trading_fastlane import TradingOrderFastLane

from .live_support import Gateway, ask, live_gateway

ORDERS = "/api/v1/trading/orders"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from live_gateway(tmp_path_factory.mktemp("trading-fastlane") / "audit.sqlite")


def lane_of(app: Any) -> TradingOrderFastLane:
    layer = app.middleware_stack
    while not isinstance(layer, TradingOrderFastLane):
        layer = layer.app
    return layer


def both(gateway: Gateway, http: httpx.Client, fast_body: Any, route_body: Any) -> tuple[Any, Any]:
    """``fast_body`` through the lane, ``route_body`` through the route (the lane switched off)."""
    lane = lane_of(gateway.app)
    served = lane.served
    fast = http.post(ORDERS, json=fast_body)
    assert lane.served == served + 1, "the lane placed it"
    real = lane._order
    lane._order = lambda scope, body: None  # type: ignore[method-assign]
    try:
        routed = http.post(ORDERS, json=route_body)
    finally:
        lane._order = real  # type: ignore[method-assign]
    assert lane.served == served + 1, "the route placed it"
    return fast, routed


def order(coid: str, code: str = "600000.SH", **extra: Any) -> dict[str, Any]:
    return {"code": code, "side": "buy", "volume": 100, "price": ask(code), "client_order_id": coid, **extra}


def test_the_lane_places_as_the_route(gateway: Gateway) -> None:
    with gateway.http("trade") as http:
        fast, routed = both(gateway, http, order("fl-1"), order("fl-2"))
        assert fast.status_code == routed.status_code == 200
        assert fast.json()["status"] == routed.json()["status"] == "accepted"
        assert set(fast.json()) == set(routed.json())
        for name in ("content-type", "x-source", "server-timing", "x-request-id"):
            assert (name in fast.headers) == (name in routed.headers), name
        # idempotent: a retry through either is the first outcome, and one order
        again, again_routed = both(gateway, http, order("fl-1"), order("fl-1"))
        assert again.json() == again_routed.json() == {**fast.json(), "replayed": True}
        orders = http.get(ORDERS).json()
    assert len([o for o in orders if o["order_remark"] == "fl-1"]) == 1
    rows = gateway.app.state.trading.audit.rows(client_order_id="fl-1")
    assert rows[0]["kind"] == "request.place" and rows[0]["request_id"] == fast.headers["x-request-id"]


def test_refusals_from_the_lane_are_the_routes(gateway: Gateway) -> None:
    with gateway.http("trade") as http:
        for fast_body, route_body in (
            (order("fl-lot", volume=150), order("fl-lot2", volume=150)),  # risk: lot size
            (order("fl-1", volume=200), order("fl-1", volume=300)),  # idempotency conflict
        ):
            fast, routed = both(gateway, http, fast_body, route_body)
            assert fast.status_code == routed.status_code != 200
            assert fast.json()["error"]["code"] == routed.json()["error"]["code"]
            assert fast.headers.get("retry-after") == routed.headers.get("retry-after")


def test_what_the_lane_is_unsure_of_goes_to_the_route(gateway: Gateway) -> None:
    lane = lane_of(gateway.app)
    served = lane.served
    with gateway.http("trade") as http:
        bad = http.post(ORDERS, json={**order("fl-bad"), "code": "600000"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
        text = http.post(ORDERS, content=b'{"a": 1}', headers={"content-type": "text/plain"})
        assert text.status_code == 422
    with gateway.http("stream") as http:  # no trade scope: the route's 403
        refused = http.post(ORDERS, json=order("fl-stream"))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    anonymous = httpx.post(gateway.url + ORDERS, json=order("fl-anon"), timeout=30)
    assert anonymous.status_code == 401
    assert lane.served == served
    assert gateway.app.state.trading.audit.outcome("fl-stream") is None
