"""Orders and cancels over the WebSocket (``place`` / ``cancel`` on /api/v1/ws) on the simulator with real
uvicorn on loopback: the same outcomes, error envelopes, scope checks, idempotency and audit as REST;
the Python client's OrderSocket, and its fallback to REST when the socket is down."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection

from .live_support import KEYS, Gateway, ask, live_gateway, recv

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from live_gateway(tmp_path_factory.mktemp("trading-ws-orders") / "audit.sqlite")


def ws_op(ws: ClientConnection, op: str, body: Any, others: list | None = None) -> dict[str, Any]:
    """Send one place / cancel and return its reply (messages arriving meanwhile go to ``others``)."""
    rid = next(_ids)
    ws.send(orjson.dumps({"op": op, "id": rid, "body": body}).decode())
    deadline = time.monotonic() + 20
    while True:
        msg = recv(ws, deadline - time.monotonic())
        if msg["type"] == "reply":
            assert msg["id"] == rid and msg["op"] == op, msg
            return msg
        if others is not None:
            others.append(msg)


def order(coid: str, code: str = "600000.SH", **extra: Any) -> dict[str, Any]:
    return {"code": code, "side": "buy", "volume": 100, "price": ask(code), "client_order_id": coid, **extra}


def test_place_over_the_socket_then_its_events_and_trade_then_an_idempotent_retry(gateway: Gateway) -> None:
    code = "600036.SH"
    body = order("wso-1", code)
    with gateway.ws("trade") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading"}).decode())
        assert recv(ws)["type"] == "subscribed"
        early: list[dict[str, Any]] = []
        reply = ws_op(ws, "place", body, early)
        assert reply["status"] == 200, reply
        placed = reply["result"]
        assert placed["status"] == "accepted" and placed["order_id"] > 0
        assert placed["client_order_id"] == "wso-1"
        # the order's pushes reach the same socket, up to its fill (the buy is at the ask)
        seen = {
            m["event"] for m in early if m["type"] == "trading" and m["data"].get("order_remark") == "wso-1"
        }
        deadline = time.monotonic() + 20
        while not {"order", "trade"} <= seen:
            msg = recv(ws, deadline - time.monotonic())
            if msg["type"] == "trading" and msg["data"].get("order_remark") == "wso-1":
                seen.add(msg["event"])
        again = ws_op(ws, "place", body)
        assert again["status"] == 200
        assert again["result"]["replayed"] is True and again["result"]["order_id"] == placed["order_id"]
    with gateway.http("trade") as http:  # REST knows it too: one order, the same outcome
        rest = http.post("/api/v1/trading/orders", json=body).json()
        assert rest["replayed"] is True and rest["order_id"] == placed["order_id"]
        orders = http.get("/api/v1/trading/orders").json()
    assert [o["order_id"] for o in orders if o["order_remark"] == "wso-1"] == [placed["order_id"]]
    rows = gateway.app.state.trading.audit.rows(client_order_id="wso-1")
    kinds = [r["kind"] for r in rows]
    assert kinds[:3] == ["request.place", "response.place", "push.order"] or kinds[:2] == [
        "request.place",
        "push.order",
    ]
    first = rows[0]
    assert first["request_id"].startswith("ws-") and first["key_id"] == KEYS["trade"].record.id


def test_the_reply_comes_before_the_events_its_answer_brought(gateway: Gateway) -> None:
    """The SDK answers an order before pushing its events; the socket keeps that order: no event of an
    order reaches its subscriber before the order's reply (resting buys: two ``order`` pushes each)."""
    code = "000001.SZ"
    price = round(ask(code) * 0.95, 2)
    with gateway.ws("trade") as ws:
        ws.send(orjson.dumps({"op": "subscribe", "channel": "trading"}).decode())
        assert recv(ws)["type"] == "subscribed"
        seqs: list[int] = []
        placed: list[int] = []
        for i in range(20):
            coid = f"wso-first-{i}"
            early: list[dict[str, Any]] = []
            reply = ws_op(ws, "place", {**order(coid, code), "price": price}, early)
            assert reply["status"] == 200 and reply["result"]["status"] == "accepted", reply
            placed.append(reply["result"]["order_id"])
            mine = [m for m in early if m["type"] == "trading" and m["data"].get("order_remark") == coid]
            assert mine == [], (i, mine)
            seqs += [m["seq"] for m in early if m["type"] == "trading"]
        deadline = time.monotonic() + 20
        while len(seqs) < 40 and time.monotonic() < deadline:  # the held events follow, none lost
            msg = recv(ws, deadline - time.monotonic())
            if msg["type"] == "trading":
                seqs.append(msg["seq"])
        for order_id in placed:  # the cash they hold back is the next tests'
            assert ws_op(ws, "cancel", {"order_id": order_id})["status"] == 200
    assert len(seqs) >= 40 and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, no gap


def test_refusals_over_the_socket_have_the_rest_status_and_code(gateway: Gateway) -> None:
    cases = [
        order("wso-lot", volume=150),  # risk: lot size
        order("wso-limit", price=ask("600000.SH") * 3),  # risk: price limit
        {**order("wso-bad"), "code": "600000"},  # validation
        {**order("wso-bad2"), "price_type": "limit", "price": 0},  # model validator
        {**order("wso-extra"), "surprise": 1},  # extra field
        order("wso-1", "600036.SH", volume=200),  # idempotency conflict with the first test's id
    ]
    with gateway.ws("trade") as ws, gateway.http("trade") as http:
        for body in cases:
            rest = http.post("/api/v1/trading/orders", json=body)
            sock = ws_op(ws, "place", body)
            assert sock["status"] == rest.status_code != 200, (body, sock, rest.text)
            assert sock["error"]["code"] == rest.json()["error"]["code"], (sock, rest.text)
            assert sock["error"]["details"] == rest.json()["error"]["details"]
        for bad in ({}, {"order_id": 1, "client_order_id": "x"}, {"client_order_id": "wso-none"}):
            rest = http.post("/api/v1/trading/cancel", json=bad)
            sock = ws_op(ws, "cancel", bad)
            assert sock["status"] == rest.status_code != 200, (bad, sock, rest.text)
            assert sock["error"]["code"] == rest.json()["error"]["code"]
        not_object = ws_op(ws, "place", [1, 2])
        assert not_object["status"] == 422 and not_object["error"]["code"] == "validation_error"


def test_cancel_over_the_socket(gateway: Gateway) -> None:
    code = "601398.SH"
    body = {**order("wso-c", code), "price": round(ask(code) * 0.95, 2)}  # resting below the market
    with gateway.ws("trade") as ws:
        placed = ws_op(ws, "place", body)["result"]
        assert placed["status"] == "accepted"
        cancelled = ws_op(ws, "cancel", {"client_order_id": "wso-c"})
        assert cancelled["status"] == 200
        assert cancelled["result"] == {"order_id": placed["order_id"], "client_order_id": "wso-c",
                                       "cancel": "requested"}  # fmt: skip
    kinds = [r["kind"] for r in gateway.app.state.trading.audit.rows(client_order_id="wso-c")]
    assert "request.cancel" in kinds and "response.cancel" in kinds


def test_a_stream_key_may_open_the_socket_but_not_place(gateway: Gateway) -> None:
    with gateway.ws("stream") as ws:
        reply = ws_op(ws, "place", order("wso-stream"))
        assert reply["status"] == 403 and reply["error"]["code"] == "forbidden"
        assert reply["error"]["details"]["required"] == "trade"
        reply = ws_op(ws, "cancel", {"order_id": 1})
        assert reply["status"] == 403 and reply["error"]["code"] == "forbidden"
    assert gateway.app.state.trading.audit.outcome("wso-stream") is None  # nothing claimed or sent


def test_the_client_order_socket_places_over_the_socket_and_gets_the_events(gateway: Gateway) -> None:
    from qmtgate.client import Client
    from qmtgate.client.errors import Forbidden, GatewayError

    code = "600519.SH"
    events: list[dict[str, Any]] = []
    with (
        Client(gateway.url, api_key=KEYS["trade"].token) as client,
        client.order_socket(events.append) as sock,
    ):
        assert sock.up
        placed = sock.place(code, "buy", 100, ask(code), client_order_id="wso-client")
        assert placed["status"] == "accepted" and placed["order_id"] > 0
        again = sock.place(code, "buy", 100, ask(code), client_order_id="wso-client")
        assert again["replayed"] is True and again["order_id"] == placed["order_id"]
        with pytest.raises(GatewayError) as refused:
            sock.place(code, "buy", 150, ask(code), client_order_id="wso-client-lot")
        assert refused.value.code == "risk_refused" and refused.value.details["rule"] == "lot_size"
        assert (sock.socket_orders, sock.rest_orders) == (3, 0)
        deadline = time.monotonic() + 20
        while not any(e["data"].get("order_remark") == "wso-client" for e in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.02)
    # a read key may not open the WebSocket: the socket is refused and REST answers (403) instead
    with Client(gateway.url, api_key=KEYS["read"].token) as client:
        sock = client.order_socket(connect_timeout=5)
        try:
            assert not sock.up
            with pytest.raises(Forbidden):
                sock.place(code, "buy", 100, ask(code), client_order_id="wso-read")
            assert sock.rest_orders == 1
        finally:
            sock.close()
    assert gateway.app.state.trading.audit.outcome("wso-read") is None


def test_the_order_socket_falls_back_to_rest(gateway: Gateway) -> None:
    from qmtgate.client import Client
    from qmtgate.client.trading import SocketDown

    code = "000001.SZ"
    with Client(gateway.url, api_key=KEYS["trade"].token) as client, client.order_socket() as sock:
        # without on_event the socket carries orders only (no trading channel subscription)
        assert sock.up and sock.events.subscribe is False
        only = sock.place(code, "buy", 100, ask(code), client_order_id="wso-only")
        assert only["status"] == "accepted" and (sock.socket_orders, sock.rest_orders) == (1, 0)
        # the socket closed after the order was sent: resent over REST with the same client_order_id
        real = sock.events.request_threadsafe

        def lost_reply(op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
            real(op, body, timeout)
            raise SocketDown("closed before the answer", sent=True)

        sock.events.request_threadsafe = lost_reply  # type: ignore[method-assign]
        placed = sock.place(code, "buy", 100, ask(code), client_order_id="wso-lost")
        assert placed["replayed"] is True and placed["status"] == "accepted"  # one order, REST's replay
        assert sock.rest_orders == 1
        sock.events.request_threadsafe = real  # type: ignore[method-assign]
        # the socket is down: REST straight away
        client.run(sock.events.close(), timeout=10)
        assert not sock.up
        other = sock.place(code, "buy", 100, ask(code), client_order_id="wso-rest")
        assert other["status"] == "accepted" and "replayed" not in other
        assert sock.rest_orders == 2
        orders = client.trading_orders()
    assert len(orders[orders.order_remark == "wso-lost"]) == 1


def test_a_key_revoked_while_its_socket_is_open_can_no_longer_trade(gateway: Gateway) -> None:
    store = gateway.app.state.security.store
    record = KEYS["both"].record
    with gateway.ws("both") as ws:
        assert ws_op(ws, "place", order("wso-before-revoke"))["status"] == 200
        store._by_id[record.id] = store._by_id[record.id].model_copy(
            update={"revoked": "2025-06-12T10:30:00"}
        )
        try:
            reply = ws_op(ws, "place", order("wso-after-revoke"))
        finally:
            store._by_id[record.id] = record
    assert reply["status"] == 401 and reply["error"]["code"] == "unauthorized"
    assert gateway.app.state.trading.audit.outcome("wso-after-revoke") is None


def test_concurrent_duplicates_over_rest_and_two_sockets_send_one_order(gateway: Gateway) -> None:
    """A client that retries before the first answer (a short timeout, two processes, a socket and REST)
    sends the same client_order_id many times at once: exactly one order reaches the SDK and every
    request gets its outcome."""
    from concurrent.futures import ThreadPoolExecutor

    body = order("wso-race", "601318.SH")
    sockets = [gateway.ws("trade"), gateway.ws("trade")]
    try:
        with gateway.http("trade") as http, ThreadPoolExecutor(max_workers=24) as pool:

            def rest() -> dict[str, Any]:
                r = http.post("/api/v1/trading/orders", json=body)
                assert r.status_code == 200, r.text
                return r.json()

            def on_socket(ws: ClientConnection) -> list[dict[str, Any]]:
                rids = [next(_ids) for _ in range(5)]
                for rid in rids:  # five at once on one socket: all in flight together
                    ws.send(orjson.dumps({"op": "place", "id": rid, "body": body}).decode())
                replies = {}
                while len(replies) < len(rids):
                    msg = recv(ws)
                    if msg["type"] == "reply":
                        replies[msg["id"]] = msg
                assert sorted(replies) == rids and all(m["status"] == 200 for m in replies.values())
                return [m["result"] for m in replies.values()]

            rest_calls = [pool.submit(rest) for _ in range(20)]
            socket_calls = [pool.submit(on_socket, ws) for ws in sockets]
            outcomes = [f.result(60) for f in rest_calls] + [r for f in socket_calls for r in f.result(60)]
            orders = http.get("/api/v1/trading/orders").json()
    finally:
        for ws in sockets:
            ws.close()
    assert len(outcomes) == 30
    assert {(o["status"], o["order_id"]) for o in outcomes} == {("accepted", outcomes[0]["order_id"])}
    assert sum(not o.get("replayed") for o in outcomes) == 1  # one sent it; the others got its outcome
    assert [o["order_id"] for o in orders if o["order_remark"] == "wso-race"] == [outcomes[0]["order_id"]]
