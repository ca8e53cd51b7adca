"""``TradingEvents.request_threadsafe``: a sync caller's place / cancel over the trading WebSocket, the
reply handed straight to the waiting thread (client/trading.py). Against a scripted WebSocket server on
loopback: the reply, a socket that closes before it, one that never answers, and the guard against
blocking the socket's own loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import websockets

from qmtgate.client._loop import LoopThread
from qmtgate.client.trading import SocketDown, TradingEvents


async def _serve(ws: Any) -> None:
    """Says hello (an orders-only socket is ready then), then per message: ``body.mode`` ``reply``
    answers it, ``close`` closes the socket, ``silent`` says nothing."""
    await ws.send(orjson.dumps({"type": "hello"}).decode())
    async for raw in ws:
        msg = orjson.loads(raw)
        mode = msg["body"]["mode"]
        if mode == "reply":
            await ws.send(
                orjson.dumps(
                    {"type": "reply", "op": msg["op"], "id": msg["id"], "status": 200, "result": msg["body"]}
                ).decode()
            )
        elif mode == "close":
            await ws.close()
            return


@pytest.fixture
def events() -> Iterator[tuple[TradingEvents, LoopThread]]:
    loop_thread = LoopThread("test-trading-events")
    holder: dict[str, Any] = {}

    async def start_server() -> None:
        holder["server"] = await websockets.serve(_serve, "127.0.0.1", 0)

    loop_thread.run(start_server(), timeout=10)
    port = holder["server"].sockets[0].getsockname()[1]
    ev = TradingEvents(
        f"ws://127.0.0.1:{port}", {}, lambda msg: None, subscribe=False, max_reconnect_delay=0.1
    )
    task = loop_thread.submit(ev.run())
    loop_thread.run(ev.wait_connected(10), timeout=15)
    try:
        yield ev, loop_thread
    finally:
        loop_thread.run(ev.close(), timeout=10)
        task.cancel()

        async def stop_server() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        loop_thread.run(stop_server(), timeout=10)
        loop_thread.stop()


def test_the_reply_reaches_the_calling_thread(events: tuple[TradingEvents, LoopThread]) -> None:
    ev, _ = events
    for i in range(20):
        reply = ev.request_threadsafe("place", {"mode": "reply", "n": i}, timeout=5)
        assert reply["status"] == 200 and reply["result"]["n"] == i
    assert ev._replies == {}  # nothing left waiting


def test_concurrent_callers_each_get_their_own_reply(events: tuple[TradingEvents, LoopThread]) -> None:
    ev, _ = events
    got: dict[int, int] = {}

    def call(i: int) -> None:
        got[i] = ev.request_threadsafe("place", {"mode": "reply", "n": i}, timeout=5)["result"]["n"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {i: i for i in range(8)}


def test_a_socket_that_closes_before_the_reply_says_it_was_sent(
    events: tuple[TradingEvents, LoopThread],
) -> None:
    ev, _ = events
    with pytest.raises(SocketDown) as info:
        ev.request_threadsafe("place", {"mode": "close"}, timeout=5)
    assert info.value.sent is True  # the gateway may have it: only an order with its id may be resent


def test_no_reply_in_time_is_socket_down_sent(events: tuple[TradingEvents, LoopThread]) -> None:
    ev, _ = events
    with pytest.raises(SocketDown, match=r"within 0\.2 s") as info:
        ev.request_threadsafe("place", {"mode": "silent"}, timeout=0.2)
    assert info.value.sent is True and ev._replies == {}


def test_a_closed_socket_refuses_before_sending(events: tuple[TradingEvents, LoopThread]) -> None:
    ev, loop_thread = events
    loop_thread.run(ev.close(), timeout=10)
    with pytest.raises(SocketDown) as info:
        ev.request_threadsafe("place", {"mode": "reply"}, timeout=5)
    assert info.value.sent is False


def test_the_sockets_own_loop_may_not_block_on_it(events: tuple[TradingEvents, LoopThread]) -> None:
    ev, loop_thread = events

    async def from_the_loop() -> None:
        ev.request_threadsafe("place", {"mode": "reply"}, timeout=5)

    with pytest.raises(RuntimeError, match="own loop"):
        loop_thread.run(from_the_loop(), timeout=10)
    # and the coroutine way works there
    reply = loop_thread.run(ev.request("place", {"mode": "reply", "n": 1}, 5), timeout=10)
    assert reply["result"]["n"] == 1
    assert asyncio.iscoroutinefunction(ev.request)
