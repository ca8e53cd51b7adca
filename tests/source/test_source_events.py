"""Source events (issue 18 item 4): the source announces connected / disconnected / resubscribed, listeners
run on the loop whatever thread emitted, and the hub turns every event into ONE status message shape."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest

from qmtgate.hub.stream import StreamHub
from qmtgate.source.events import SourceEvent, SourceEventKind, SourceEvents
from qmtgate.source.xtdata_source import XtdataSource

from .helpers import eventually

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))
TICK = {"time": 1736474400000, "lastPrice": 10.0, "volume": 100}


async def test_listeners_run_on_the_loop_thread_whatever_thread_emits() -> None:
    events = SourceEvents()
    events.bind(asyncio.get_running_loop())
    seen: list[tuple[str, int]] = []
    done: list[SourceEvent] = []

    async def slow(event: SourceEvent) -> None:  # a coroutine listener runs as a task
        await asyncio.sleep(0)
        done.append(event)

    events.subscribe(lambda e: seen.append((e.kind.value, threading.get_ident())))
    events.subscribe(lambda e: 1 / 0)  # a failing listener does not stop the others
    events.subscribe(slow)
    event = SourceEvent(SourceEventKind.DISCONNECTED, "simulated", 3, False, "QMT disconnected")
    emitter = threading.Thread(target=events.emit, args=(event,))
    emitter.start()
    emitter.join()
    await eventually(lambda: bool(seen) and bool(done))
    assert seen == [("disconnected", threading.get_ident())] and done == [event]
    unsubscribe = events.subscribe(lambda e: seen.append(("late", 0)))
    unsubscribe()
    events.emit(event)  # on the loop: at once, in registration order
    assert seen[-1] == ("disconnected", threading.get_ident())
    await events.drain()


async def test_the_source_announces_disconnect_reconnect_and_renewal(source: XtdataSource) -> None:
    events: list[SourceEvent] = []
    source.events.subscribe(events.append)
    first = source.status().connection
    source._set_connected(False, "QMT restarted")  # as the status callback does
    await eventually(lambda: [e.kind for e in events][-1:] == [SourceEventKind.CONNECTED])
    assert [e.kind for e in events] == [SourceEventKind.DISCONNECTED, SourceEventKind.CONNECTED]
    assert events[0].message == "QMT restarted" and not events[0].connected
    assert events[1].connection == first + 1 == source.status().connection and events[1].renews
    renewed = await source.renew_subscriptions("silent")
    assert events[-1].kind is SourceEventKind.RESUBSCRIBED and events[-1].connection == renewed == first + 2


async def test_every_client_status_has_one_shape_with_prev_seq(source: XtdataSource) -> None:
    hub = StreamHub(source)
    await hub.start()
    try:
        client = hub.connect()
        await hub.subscribe(client, "tick", [], ["SH"])
        hub.publish("tick", {"600000.SH": TICK, "600001.SH": TICK})
        source.announce(SourceEventKind.STALE, stale=("SH",))
        source._set_connected(False, "QMT restarted")
        messages: list[dict] = []
        while len(messages) < 3:  # in order with the data frames, through the client's outbox
            item = await asyncio.wait_for(client.outbox.get(), 5)
            if isinstance(item, dict) and item.get("type") == "status":
                messages.append(item)
        assert [m["event"] for m in messages] == ["stale", "disconnected", "connected"]
        assert {tuple(sorted(m)) for m in messages} == {
            ("event", "message", "prev_seq", "source", "stale", "type")
        }
        assert all(m["prev_seq"] == hub.seq == 2 for m in messages)
        assert all(m["stale"]["markets"] == ["SH"] for m in messages)  # the current set, on every status
        assert messages[1]["source"] == {"connected": False, "epoch": 1, "name": "simulated"}
        assert messages[2]["source"] == {"connected": True, "epoch": 2, "name": "simulated"}
    finally:
        await hub.stop()
