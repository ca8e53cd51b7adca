"""nats-server killed and restarted mid-stream: the publisher buffers (bounded), reconnects with backoff,
resends what the bus never confirmed, reports what it dropped, and never holds the hub up.

The server is SIGKILLed (no goodbye), restarted on the same port and JetStream store; what the bus kept is
read back with the client's JetStream replay, whose seq checks prove what is there and what is not."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import nats

from qmtgate.bus.publisher import NatsPublisher
from qmtgate.client.bus import NatsStream, replay
from qmtgate.client.stream import Batch, Event
from qmtgate.hub.clients import Frame
from qmtgate.natswire import stream_name

try:
    from bus.feed import burst, make_hub, settings
    from bus.test_publish import collect, rows, wait_for
except ImportError:
    from tests.bus.feed import burst, make_hub, settings  # type: ignore[no-redef]
    from tests.bus.test_publish import collect, rows, wait_for  # type: ignore[no-redef]


async def stored(url: str, gw: str, at_least: int, timeout: float = 10.0) -> None:
    """Wait until the gateway's JetStream stream holds ``at_least`` messages."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + timeout
        while True:
            info = await js.stream_info(stream_name(gw))
            if info.state.messages >= at_least:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"stream holds {info.state.messages} < {at_least}")
            await asyncio.sleep(0.02)
    finally:
        await nc.close()


async def replayed(url: str, gw: str) -> list[Batch | Event]:
    return [item async for item in replay(url, gw, ["SH", "SZ", "BJ"], start=0)]


class Watcher:
    """A stand-in for a WebSocket client: a hub client whose task drains its outbox on the same loop as the
    publisher, recording each frame's delay from the hub's receipt of the burst to the drain."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.client = hub.connect()
        self.delays: list[float] = []
        self.seqs: list[int] = []
        self.conflated = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.hub.subscribe(self.client, "tick", [], ["SH", "SZ", "BJ"])
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            frame = await self.client.outbox.get()
            if isinstance(frame, Frame):
                self.delays.append(time.time() - frame.ts_pub)
                self.seqs += [u.seq for u in frame.updates]
                self.conflated += frame.conflated

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def test_kill_and_restart_loses_nothing_within_the_buffer_and_never_delays_others(nats_server: Any) -> None:
    gw = "gwkill"

    async def run() -> None:
        hub = make_hub()
        await hub.start()
        pub = NatsPublisher(hub, settings(nats_server.url, gw, jetstream=True, heartbeat_seconds=60.0))
        live = NatsStream(nats_server.url, gateway=gw, reconnect_delay=0.05)
        await live.subscribe(["SH", "SZ", "BJ"])
        assert await live.wait_connected(5)
        watcher = Watcher(hub)
        await watcher.start()
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)
        phases: dict[str, list[tuple[int, str]]] = {"A": [], "B": [], "C": []}
        delays: dict[str, list[float]] = {}

        async def phase(name: str, bursts: range) -> None:
            n0 = len(watcher.delays)
            for b in bursts:
                phases[name] += [(u.seq, u.code) for u in hub.publish("tick", burst(b))]
                await asyncio.sleep(0.05)
            await wait_for(lambda: len(watcher.delays) >= n0 + len(bursts))
            delays[name] = watcher.delays[n0:]

        await phase("A", range(0, 5))
        await wait_for(lambda: not pub.backlog())
        await stored(nats_server.url, gw, pub.stats.published_messages)
        nats_server.kill()
        await wait_for(lambda: not pub.connected.is_set())
        await phase("B", range(5, 10))  # the bus is away: buffered
        await asyncio.sleep(0.3)
        assert len(pub.buffer) > 0 and pub.stats.connects == 1
        nats_server.start()
        await wait_for(lambda: pub.stats.connects == 2 and not pub.backlog(), 15)
        await live.wait_connected(10)
        await wait_for(lambda: live.reconnects >= 1, 10)
        await asyncio.sleep(0.2)
        await phase("C", range(10, 15))
        await wait_for(lambda: not pub.backlog())
        everything = phases["A"] + phases["B"] + phases["C"]

        # the bus has every update, in order, once (repeats of unconfirmed sends are dropped by seq)
        await stored(nats_server.url, gw, len(everything))
        items = await replayed(nats_server.url, gw)
        assert [(r["seq"], r["code"]) for r in rows(items)] == everything
        assert not [e for e in items if isinstance(e, Event) and e.kind == "gap"]
        reconnected = [e for e in items if isinstance(e, Event) and e.data.get("event") == "reconnected"]
        assert len(reconnected) == 1 and reconnected[0].data["dropped_messages"] == 0
        assert pub.stats.dropped_messages == 0 and pub.stats.disconnects == 1

        # a live consumer that reconnected by itself: everything before and after, and a gap event for
        # every code whose updates it missed while both were away
        got = await collect(
            live, lambda g: {s for s, _ in phases["C"]} <= {r["seq"] for r in rows(g)}, timeout=10
        )
        seen = {(r["seq"], r["code"]) for r in rows(got)}
        assert set(phases["A"]) <= seen and set(phases["C"]) <= seen
        missed_codes = {c for s, c in phases["B"] if (s, c) not in seen}
        gap_codes = {e.data["code"] for e in got if isinstance(e, Event) and e.kind == "gap"}
        assert gap_codes == missed_codes
        kinds = [e.kind for e in got if isinstance(e, Event) and e.kind in ("disconnected", "connected")]
        assert kinds == ["connected", "disconnected", "connected"]

        # the WebSocket stand-in got every frame, unconflated, as fast with the bus away as with it up
        assert watcher.seqs == [s for s, _ in everything] and watcher.conflated == 0
        for name in "ABC":
            assert max(delays[name]) < 0.25, (name, delays[name])
        assert statistics.median(delays["B"]) < 0.05

        await watcher.stop()
        await pub.stop()
        await live.close()
        await hub.stop()

    asyncio.run(run())


def test_drops_beyond_the_buffer_are_counted_reported_and_visible_as_gaps(nats_server: Any) -> None:
    gw = "gwdrop"
    bound = 150

    async def run() -> None:
        hub = make_hub()
        await hub.start()
        pub = NatsPublisher(
            hub,
            settings(
                nats_server.url,
                gw,
                jetstream=True,
                batches=False,
                buffer_messages=bound,
                heartbeat_seconds=60.0,
            ),
        )
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)
        before: list[tuple[int, str]] = []
        for b in range(0, 3):  # one at a time: a burst fits the (small) buffer
            before += [(u.seq, u.code) for u in hub.publish("tick", burst(b))]
            await wait_for(lambda: not pub.backlog())
        await stored(nats_server.url, gw, pub.stats.published_messages)
        nats_server.kill()
        await wait_for(lambda: not pub.connected.is_set())
        during: list[tuple[int, str]] = []
        for b in range(3, 9):
            during += [(u.seq, u.code) for u in hub.publish("tick", burst(b))]
            await asyncio.sleep(0.02)
        await wait_for(lambda: pub.stats.frames >= 9 and not pub._encoding and not len(pub._client.outbox))
        dropped = len(during) - bound
        assert dropped > 0
        assert pub.buffer.dropped.messages == dropped == pub.buffer.dropped.updates
        nats_server.start()
        await wait_for(lambda: pub.stats.connects == 2 and not pub.backlog(), 15)
        after: list[tuple[int, str]] = []
        for b in range(9, 11):
            after += [(u.seq, u.code) for u in hub.publish("tick", burst(b))]
            await wait_for(lambda: not pub.backlog())
        kept = during[dropped:]  # the oldest went first
        await stored(nats_server.url, gw, len(before) + len(kept) + len(after))
        items = await replayed(nats_server.url, gw)
        assert [(r["seq"], r["code"]) for r in rows(items)] == before + kept + after
        report = [e.data for e in items if isinstance(e, Event) and e.data.get("event") == "reconnected"]
        assert report and report[0]["dropped_messages"] == dropped and report[0]["dropped_updates"] == dropped
        lost = during[:dropped]
        last_lost = {c: s for s, c in lost}
        expect_gap = {c for c, s in last_lost.items() if any(c2 == c and s2 > s for s2, c2 in kept + after)}
        gap_codes = {e.data["code"] for e in items if isinstance(e, Event) and e.kind == "gap"}
        assert gap_codes == expect_gap
        info = pub.info()
        assert info["dropped_messages"] == dropped and info["connected"]
        await pub.stop()
        await hub.stop()

    asyncio.run(run())
