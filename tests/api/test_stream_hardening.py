"""WebSocket robustness (issue 17, items 1 and 9): closed peers release their hub slot whatever they were
sent, and malformed messages get an ``error`` while the connection stays usable. A real uvicorn on
loopback, real WebSocket clients, the simulator on a manual clock (no data unless a test moves it)."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from qmtgate.api.app import create_app
from qmtgate.hub.clients import Interest

from .sim_support import sim_settings, wait_live
from .support import LiveServer, start_server

CYCLES = 200


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveServer]:
    app = create_app(sim_settings(stream={"max_clients": 250, "max_codes_per_client": 2000}))
    server = start_server(app)
    try:
        with httpx.Client(base_url=server.url, timeout=180) as client:
            wait_live(client)
        server.app = app  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


def ws_url(server: LiveServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def hub_clients(server: LiveServer) -> int:
    """The hub's client count as /metrics reports it (qmtgate_ws_clients)."""
    text = httpx.get(server.url + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("qmtgate_ws_clients "):
            return int(float(line.split()[1]))
    raise AssertionError("qmtgate_ws_clients missing from /metrics")


def wait_for_no_clients(server: LiveServer, within: float = 5.0) -> float:
    started = time.monotonic()
    while True:
        count = hub_clients(server)
        if count == 0:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{count} hub clients left after {within} s"
        time.sleep(0.05)


def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


@pytest.mark.parametrize(
    ("path", "send"),
    [
        ("/ws/realtime", {"stocks": []}),  # the case: nothing is ever delivered to this client
        ("/ws/realtime", None),  # connect and say nothing
        ("/ws/realtime", {"stocks": ["600000.SH"]}),
        ("/api/v1/ws", None),
        ("/api/v1/ws", {"op": "subscribe", "codes": []}),
        ("/api/v1/ws", {"op": "subscribe", "codes": ["600000.SH"]}),
    ],
)
def test_connect_close_cycles_leave_no_hub_clients(
    gateway: LiveServer, path: str, send: dict[str, Any] | None
) -> None:
    """200 connect / (send) / close cycles; every fourth drops the TCP connection without a close frame."""
    assert wait_for_no_clients(gateway) < 5
    for i in range(CYCLES):
        with connect(ws_url(gateway, path), open_timeout=30) as ws:
            if path == "/api/v1/ws":
                assert recv(ws)["type"] == "hello"
            if send is not None:
                ws.send(json.dumps(send))
            if i % 4 == 3:
                ws.socket.shutdown(socket.SHUT_RDWR)  # abrupt: no close handshake
                ws.socket.close()
    assert wait_for_no_clients(gateway, within=5.0) < 5.0
    # the slots are really free: a new client is served
    with connect(ws_url(gateway, "/api/v1/ws")) as ws:
        assert recv(ws)["type"] == "hello"


# -- malformed messages ---------------------------------------------------------------------------------

#: Messages the issue found crashing a route, and their neighbours; each must be answered with an error.
V1_BAD: list[str | bytes] = [
    '{"op":"subscribe","codes":5}',
    '{"op":"subscribe","codes":true}',
    '{"op":"subscribe","markets":5}',
    '{"op":"subscribe","sectors":5}',
    '{"op":"subscribe","codes":"600000.SH"}',
    '{"op":"subscribe","codes":[1,2]}',
    '{"op":"subscribe","codes":[null]}',
    '{"op":"subscribe","markets":[{}]}',
    '{"op":"subscribe","sectors":{"a":1}}',
    '{"op":"unsubscribe","codes":5}',
    '{"op":"subscribe","period":5}',
    '{"op":"subscribe","period":[]}',
    '{"op":"subscribe","period":{}}',
    '{"op":"subscribe","codes":["600000.SH"],"since":"12","epoch":"e"}',
    '{"op":"subscribe","codes":["600000.SH"],"since":-1}',
    '{"op":"subscribe","codes":["600000.SH"],"since":1.5}',
    '{"op":"subscribe","codes":["600000.SH"],"since":true}',
    '{"op":"subscribe","codes":["600000.SH"],"since":3,"epoch":7}',
    '{"op":"subscribe","channel":"trading","since":"abc"}',
    '{"op":"resume","since":"12","epoch":"e"}',
    '{"op":"resume","since":[1]}',
    '{"op":"options","encoding":[]}',
    '{"op":"options","encoding":5}',
    '{"op":"options","compression":{}}',
    '{"op":5}',
    '{"op":[]}',
    '{"op":null}',
    "{}",
    "[1,2]",
    "5",
    '"text"',
    "null",
    "true",
    "{",
    "",
    "\x00",
    "[" * 5000 + "]" * 5000,
    b"\x00\x01\x02",
    b'{"op":"ping"}',
    json.dumps({"op": "subscribe", "codes": ["600000.SH"] * 100_000}),
]

REALTIME_BAD: list[str | bytes] = [
    "[1,2]",
    "5",
    "null",
    '"600000.SH"',
    "{",
    "",
    "[" * 5000 + "]" * 5000,
    b"\x00\x01",
    b'{"stocks":["600000.SH"]}',
    '{"stocks":5}',
    '{"stocks":true}',
    '{"stocks":"600000.SH"}',
    '{"stocks":[1,2]}',
    '{"stocks":[null]}',
    '{"stocks":{"a":1}}',
    '{"stocks":["600000.SH"],"period":5}',
    '{"stocks":["600000.SH"],"period":"7m"}',
    '{"stocks":["600000.SH"],"period":[]}',
    '{"stocks":["NOPE"]}',
    '{"stocks":[]}',
    json.dumps({"stocks": ["600000.SH"] * 100_000}),
]


def _junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**70), rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.uniform(-1e9, 1e9)
    if kind == 4:
        return "".join(rng.choice("abcxyzSHZ.:/ \u2003中") for _ in range(rng.randrange(0, 12)))
    if kind == 5:
        return rng.choice(["SH", "sh", "600000.SH", "tick", "1m", "arrow", "zstd", ""])
    if kind == 6:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    if kind == 7:
        return {str(_junk(rng, 2)): _junk(rng, depth + 1) for _ in range(rng.randrange(0, 4))}
    return rng.choice([[1, 2], {"a": 1}, [None], [[]], ["600000.SH", 5]])


def v1_fuzz(rng: random.Random, count: int) -> list[str | bytes]:
    fields = ["codes", "markets", "sectors", "period", "since", "epoch", "encoding", "compression", "id", "t"]
    out: list[str | bytes] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.1:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))))
        elif roll < 0.2:
            out.append(json.dumps(_junk(rng)))
        else:
            msg = {"op": rng.choice(["subscribe", "unsubscribe", "resume", "options", "ping", _junk(rng)])}
            for name in rng.sample(fields, rng.randrange(0, 5)):
                msg[name] = _junk(rng)
            out.append(json.dumps(msg))
    return out


def realtime_fuzz(rng: random.Random, count: int) -> list[str | bytes]:
    """Messages that can never be a valid subscription (so each must get exactly one error)."""
    out: list[str | bytes] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.15:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))))
        elif roll < 0.3:
            value = _junk(rng)
            out.append(json.dumps(value if not isinstance(value, dict) else [value]))
        elif roll < 0.6:
            stocks = _junk(rng)
            if isinstance(stocks, list) and all(isinstance(s, str) for s in stocks):
                stocks = [*stocks, 5]  # never a list of strings only
            out.append(json.dumps({"stocks": stocks, "period": _junk(rng)}))
        else:  # codes that cannot exist (letters only), with a valid or a bad period
            stocks = ["".join(rng.choice("abcxyz") for _ in range(rng.randrange(1, 8))) for _ in range(3)]
            out.append(json.dumps({"stocks": stocks, "period": rng.choice(["tick", "1m", 5, "2m"])}))
    return out


def test_malformed_messages_on_the_v1_route_get_errors_and_the_connection_stays_usable(
    gateway: LiveServer,
) -> None:
    rng = random.Random(17)
    with connect(ws_url(gateway, "/api/v1/ws"), max_size=None) as ws:
        assert recv(ws)["type"] == "hello"
        for message in V1_BAD:
            ws.send(message)
            answer = recv(ws)
            assert answer["type"] == "error", (message[:80], answer)
            assert answer["error"]["code"] in {
                "bad_request",
                "invalid_period",
                "too_many_codes",
                "invalid_encoding",
                "invalid_compression",
            }, answer
        for n, message in enumerate(v1_fuzz(rng, 400)):
            ws.send(message)
            ws.send(json.dumps({"op": "ping", "t": f"probe-{n}"}))
            while True:  # whatever the message was answered with, the probe is answered after it
                answer = recv(ws, timeout=30)
                assert answer.get("error", {}).get("code") != "internal_error", (message[:200], answer)
                if answer["type"] == "pong" and answer["t"] == f"probe-{n}":
                    break
        ws.send(json.dumps({"op": "unsubscribe", "codes": [], "markets": ["SH", "SZ", "BJ"]}))
        ws.send(json.dumps({"op": "subscribe", "id": "last", "codes": ["600000.SH"]}))
        while (answer := recv(ws, timeout=30))["type"] != "subscribed" or answer["id"] != "last":
            pass
        assert answer["codes"] == ["600000.SH"] and answer["errors"] == []


def test_malformed_messages_on_the_realtime_route_get_errors_and_the_connection_stays_usable(
    gateway: LiveServer,
) -> None:
    rng = random.Random(9)
    with connect(ws_url(gateway, "/ws/realtime"), max_size=None) as ws:
        for message in [*REALTIME_BAD, *realtime_fuzz(rng, 400)]:
            ws.send(message)
            answer = recv(ws, timeout=30)
            assert answer["type"] == "error", (message[:200], answer)
            assert answer["code"] != "internal_error", (message[:200], answer)
        ws.send(json.dumps({"stocks": ["600000.SH"], "period": "tick"}))
        hub = gateway.app.state.hub  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10  # this protocol has no ack: wait until the hub has the interest
        while not any("600000.SH" in c.interests.get("tick", Interest()).codes for c in hub.clients.values()):
            assert time.monotonic() < deadline, "the connection still subscribes after the junk"
            time.sleep(0.02)
        # a second subscription replaces the first
        ws.send(json.dumps({"stocks": ["000001.SZ"], "period": "tick"}))
        deadline = time.monotonic() + 10
        while not any(
            c.interests.get("tick", Interest()).codes == {"000001.SZ"} for c in hub.clients.values()
        ):
            assert time.monotonic() < deadline, "the new subscription replaces the old one"
            time.sleep(0.02)


def test_too_many_codes_on_the_realtime_route_is_an_error_not_a_crash(gateway: LiveServer) -> None:
    with connect(ws_url(gateway, "/ws/realtime"), max_size=None) as ws:
        ws.send(json.dumps({"stocks": [f"{600000 + i:06d}.SH" for i in range(100_000)]}))
        answer = recv(ws, timeout=30)
        assert answer["type"] == "error" and answer["code"] == "too_many_codes"
        assert answer["details"] == {"limit": 2000, "requested": 100_000}
        ws.send("[1,2]")
        assert recv(ws)["code"] == "bad_request"
