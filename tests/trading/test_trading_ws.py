"""Account events over the WebSocket ``trading`` channel, on the simulator with real uvicorn on loopback:
place over REST -> order events -> trade -> position and asset, in one numbered chain; a resume after a
reconnect replays exactly what was missed; read and stream keys get nothing (trading off: test_trading_ws_off.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .live_support import KEYS, Gateway, ask, live_gateway, recv


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from live_gateway(tmp_path_factory.mktemp("trading-ws") / "audit.sqlite")


def subscribe(ws: ClientConnection, **extra: Any) -> dict[str, Any]:
    ws.send(orjson.dumps({"op": "subscribe", "channel": "trading", **extra}).decode())
    answer = recv(ws)
    assert answer["type"] == "subscribed" and answer["channel"] == "trading", answer
    return answer


def events_until(ws: ClientConnection, done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Trading messages until ``done(collected)`` is true."""
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while not done(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"events not complete in time: {[(e['seq'], e['event']) for e in got]}")
        msg = recv(ws, left)
        if msg["type"] == "trading":
            got.append(msg)
    return got


def filled(coid: str, code: str) -> Any:
    """Done when the order is filled and its trade, position and asset pushes have all arrived."""

    def done(events: list[dict[str, Any]]) -> bool:
        kinds = {
            e["event"]
            for e in events
            if e["data"].get("order_remark") == coid or e["data"].get("stock_code") == code
        }
        succeeded = any(
            e["event"] == "order"
            and e["data"].get("order_remark") == coid
            and e["data"]["order_status"] == 56
            for e in events
        )
        return succeeded and {"trade", "position"} <= kinds and any(e["event"] == "asset" for e in events)

    return done


def place(gw: Gateway, coid: str, code: str) -> dict[str, Any]:
    body = {"code": code, "side": "buy", "volume": 100, "price": ask(code), "client_order_id": coid}
    with gw.http() as http:
        r = http.post("/api/v1/trading/orders", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted", r.json()
    return r.json()


def assert_chain(events: list[dict[str, Any]], after: int) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(after + 1, after + 1 + len(events))), seqs
    for e in events:
        assert e["prev_seq"] == (e["seq"] - 1 if e["seq"] > 1 else None)


def test_rest_order_events_trade_position_asset_over_the_trading_channel(gateway: Gateway) -> None:
    code = "600000.SH"
    with gateway.http() as http:
        before = {p["stock_code"]: p["volume"] for p in http.get("/api/v1/trading/positions").json()}
        cash_before = http.get("/api/v1/trading/asset").json()["cash"]
    with gateway.ws("trade") as ws:
        start = subscribe(ws)["seq"]
        placed = place(gateway, "ws-e2e-1", code)
        events = events_until(ws, filled("ws-e2e-1", code))
    assert_chain(events, start)
    mine = [e for e in events if e["data"].get("order_remark") == "ws-e2e-1"]
    orders = [e["data"] for e in mine if e["event"] == "order"]
    assert orders[0]["order_id"] == placed["order_id"]
    assert [o["order_status"] for o in orders][-1] == 56  # ORDER_SUCCEEDED, after reported/part-filled
    trade = next(e["data"] for e in mine if e["event"] == "trade")
    assert trade["order_id"] == placed["order_id"] and trade["traded_volume"] == 100
    position = [e["data"] for e in events if e["event"] == "position" and e["data"]["stock_code"] == code][-1]
    assert position["volume"] == before.get(code, 0) + 100
    asset = [e["data"] for e in events if e["event"] == "asset"][-1]
    assert asset["cash"] < cash_before
    assert all(e["replay"] is False for e in events)
    with gateway.http() as http:  # REST agrees with what the channel said
        now = {p["stock_code"]: p for p in http.get("/api/v1/trading/positions").json()}
        assert now[code]["volume"] == position["volume"]
        assert http.get("/api/v1/trading/asset").json()["cash"] == pytest.approx(asset["cash"])


def test_resume_after_a_reconnect_delivers_every_missed_event_without_a_gap(gateway: Gateway) -> None:
    code = "600036.SH"
    with gateway.ws("trade") as ws:
        first = subscribe(ws)
        epoch, last = first["epoch"], first["seq"]
    # away: an order is placed and filled while no one listens
    place(gateway, "ws-away-1", code)
    ring = gateway.app.state.trading.events.ring  # wait until the fill's events are published
    deadline = time.monotonic() + 20
    while not filled("ws-away-1", code)([e for e in list(ring) if e["seq"] > last]):
        assert time.monotonic() < deadline, "the fill's events were not published"
        time.sleep(0.05)
    with gateway.ws("trade") as ws:
        subscribe(ws, since=last, epoch=epoch)
        replay = events_until(ws, filled("ws-away-1", code))
        assert all(e["replay"] is True for e in replay)
        assert_chain(replay, last)  # from last + 1, nothing skipped, nothing twice
        # ... then the live chain continues where the replay ended
        place(gateway, "ws-after-1", code)
        live = events_until(ws, filled("ws-after-1", code))
        assert all(e["replay"] is False for e in live)
        assert_chain(replay + live, last)


def test_a_resume_from_another_epoch_or_outside_the_ring_says_resync(gateway: Gateway) -> None:
    with gateway.ws("trade") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading", "since": 3, "epoch": "old"}).decode())
        assert recv(ws)["type"] == "subscribed"
        resync = recv(ws)
        assert resync["type"] == "resync" and resync["channel"] == "trading"
        assert resync["reason"] == "new_epoch"


@pytest.mark.parametrize(
    ("point", "field"),
    [({"since": "3"}, "since"), ({"since": -1}, "since"), ({"since": 2.0}, "since"),
     ({"since": False}, "since"), ({"since": 3, "epoch": 5}, "epoch")],
)  # fmt: skip
def test_a_malformed_resume_point_is_refused_not_taken_as_start_over(
    gateway: Gateway, point: dict[str, object], field: str
) -> None:
    with gateway.ws("trade") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading", "id": "r", **point}).decode())
        error = recv(ws)
        assert error["type"] == "error" and error["error"]["code"] == "bad_request", error
        assert error["error"]["details"] == {"field": field, "op": "subscribe"}
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading", "id": "ok"}).decode())
        answer = recv(ws)  # nothing was subscribed by the refused message: the next answer is this one's
        assert answer["type"] == "subscribed" and answer["id"] == "ok", answer


def test_read_and_stream_keys_get_nothing_on_the_trading_channel(gateway: Gateway) -> None:
    # a read key may not open the WebSocket at all
    with pytest.raises(Exception) as refused:
        ws = connect(gateway.ws_url, additional_headers={"X-API-Key": KEYS["read"].token}, open_timeout=30)
        with ws:
            while True:
                recv(ws)
    assert isinstance(refused.value, ConnectionClosed) and refused.value.rcvd.code == 4403
    # a stream key connects for quotes but is refused the trading channel, and sees no account event
    with gateway.ws("stream") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading"}).decode())
        error = recv(ws)
        assert error["type"] == "error" and error["error"]["code"] == "forbidden"
        assert error["error"]["details"]["required"] == "trade"
        place(gateway, "ws-stream-1", "600000.SH")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                msg = recv(ws, deadline - time.monotonic())
            except TimeoutError:
                break
            assert msg["type"] != "trading", msg
    # a trade-only key gets the trading channel but no quotes
    with gateway.ws("trade") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "period": "tick", "codes": ["600000.SH"]}).decode())
        error = recv(ws)
        assert error["type"] == "error" and error["error"]["code"] == "forbidden"
        assert error["error"]["details"]["required"] == "stream"


def test_the_python_client_trades_with_typed_methods(gateway: Gateway) -> None:
    from qmtgate.client import Client
    from qmtgate.client.errors import ValidationError

    code = "600036.SH"
    with Client(gateway.url, api_key=KEYS["both"].token) as client:
        price = ask(code)
        placed = client.trading_place(code, "buy", 100, price, strategy_name="typed")
        assert placed["status"] == "accepted" and placed["client_order_id"].startswith("q")
        coid = placed["client_order_id"]
        again = client.trading_place(code, "buy", 100, price, strategy_name="typed", client_order_id=coid)
        assert again["order_id"] == placed["order_id"] and again["replayed"] is True  # one order
        orders = client.trading_orders()
        assert list(orders.loc[orders.order_remark == placed["client_order_id"], "order_id"]) == [
            placed["order_id"]
        ]
        assert client.trading_order(placed["client_order_id"])["order"]["order_id"] == placed["order_id"]
        positions = client.trading_positions()
        assert {"stock_code", "volume", "can_use_volume"} <= set(positions.columns)
        assert code in set(positions.stock_code)
        assert not client.trading_trades().empty
        assert client.trading_asset()["total_asset"] > 0
        assert client.trading_status()["connected"] is True
        checked = client.trading_check(code, "buy", 100, price)
        assert checked == {"passed": True, "value": round(price * 100, 2), "error": None}
        refused = client.trading_check(code, "sell", 100, price)  # bought today: nothing sellable (T+1)
        assert refused["passed"] is False and refused["error"]["details"]["rule"] == "insufficient_position"
        latest = client.trading_place(code, "buy", 100, None, price_type="latest")  # no price to give
        assert latest["status"] == "accepted"
        with pytest.raises(ValidationError) as refused_limit:  # a limit order without one: the 422
            client.trading_check(code, "buy", 100, None)
        assert "a limit order needs a positive price" in str(refused_limit.value)
        assert refused_limit.value.details["errors"][0]["type"] == "value_error"  # the gateway's items, kept


def test_client_trading_events_resume_across_a_cut_link(gateway: Gateway) -> None:
    """qmtgate.client.trading.TradingEvents (what the drop-in uses): the socket is cut, an order fills
    while it is away; after its reconnect every event arrives once, in order, with no gap."""
    import asyncio

    from qmtgate.client.trading import TradingEvents

    code = "600000.SH"
    got: list[dict[str, Any]] = []
    feed: list[str] = []

    async def run() -> None:
        events = TradingEvents(
            gateway.ws_url,
            {"X-API-Key": KEYS["trade"].token},
            got.append,
            lambda kind, data: feed.append(kind),
        )
        task = asyncio.create_task(events.run())
        await events.wait_connected(20)
        start = events.since
        assert start is not None
        events._ws.transport.abort()  # the network cuts the link (no close handshake)
        await asyncio.to_thread(place, gateway, "ws-cut-1", code)
        deadline = asyncio.get_running_loop().time() + 20
        while not filled("ws-cut-1", code)(got):
            assert asyncio.get_running_loop().time() < deadline, [(e["seq"], e["event"]) for e in got]
            await asyncio.sleep(0.05)
        await events.close()
        task.cancel()
        assert events.reconnects >= 1 and "disconnected" in feed and "resync" not in feed
        assert_chain(got, start)

    asyncio.run(run())


def test_a_counter_rejection_reaches_the_channel_as_order_and_order_error_events(gateway: Gateway) -> None:
    from .conftest import sim_env

    code = "600000.SH"
    with gateway.ws("trade") as ws:
        start = subscribe(ws)["seq"]
        sim_env().broker.faults.reject_orders(-61, "资金不足 (injected)")
        place(gateway, "ws-junk-1", code)

        def rejected(events: list[dict[str, Any]]) -> bool:
            return any(e["event"] == "order_error" for e in events) and any(
                e["event"] == "order" and e["data"]["order_status"] == 57 for e in events
            )

        events = events_until(ws, rejected)
    assert_chain(events, start)
    error = next(e["data"] for e in events if e["event"] == "order_error")
    assert error["order_remark"] == "ws-junk-1" and error["error_msg"] == "资金不足 (injected)"
