"""JetStream replay by time range equals what a live consumer received; two gateways on one bus are
de-duplicated by (code, exchange time); a standby publishes only while the active's heartbeat is missing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from qmtgate.bus.publisher import NatsPublisher
from qmtgate.client.bus import NatsStream, replay
from qmtgate.client.stream import Batch, Event

try:
    from bus.feed import T0, burst, make_hub, settings
    from bus.test_outage import stored
    from bus.test_publish import collect, rows, wait_for
except ImportError:
    from tests.bus.feed import T0, burst, make_hub, settings  # type: ignore[no-redef]
    from tests.bus.test_outage import stored  # type: ignore[no-redef]
    from tests.bus.test_publish import collect, rows, wait_for  # type: ignore[no-redef]


def test_jetstream_replay_of_a_time_range_equals_what_live_consumers_received(nats_server: Any) -> None:
    gw = "gwrep"

    async def run() -> None:
        hub = make_hub()
        await hub.start()
        pub = NatsPublisher(hub, settings(nats_server.url, gw, jetstream=True, heartbeat_seconds=60.0))
        live = NatsStream(nats_server.url, gateway=gw)
        await live.subscribe(["SH", "SZ", "BJ"])
        live_arrow = NatsStream(nats_server.url, gateway=gw, encoding="arrow")
        await live_arrow.subscribe(["SH", "SZ", "BJ"])
        assert await live.wait_connected(5) and await live_arrow.wait_connected(5)
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)

        async def bursts(r: range) -> list[int]:
            seqs: list[int] = []
            for b in r:
                seqs += [u.seq for u in hub.publish("tick", burst(b))]
                await wait_for(lambda: not pub.backlog())
            await stored(nats_server.url, gw, pub.stats.published_messages)
            return seqs

        await bursts(range(0, 4))
        await asyncio.sleep(0.2)
        t1 = dt.datetime.now(dt.timezone.utc)
        await asyncio.sleep(0.2)
        stretch = await bursts(range(4, 10))
        await asyncio.sleep(0.2)
        t2 = dt.datetime.now(dt.timezone.utc)
        await asyncio.sleep(0.2)
        last = await bursts(range(10, 12))

        got = await collect(live, lambda g: bool(rows(g)) and rows(g)[-1]["seq"] == last[-1])
        live_rows = [r for r in rows(got) if stretch[0] <= r["seq"] <= stretch[-1]]
        assert [r["seq"] for r in live_rows] == stretch
        items = [i async for i in replay(nats_server.url, gw, ["SH", "SZ", "BJ"], start=t1, end=t2)]
        assert all(i.replay for i in items if isinstance(i, Batch))
        assert rows(items) == live_rows  # every field of every row, in order
        assert not [e for e in items if isinstance(e, Event) and e.kind == "gap"]

        # the Arrow batches of the same stretch, from the bus's clock in epoch ms
        got_a = await collect(
            live_arrow, lambda g: any(isinstance(b, Batch) and b.seq_to == last[-1] for b in g)
        )
        live_tables = [
            b.table for b in got_a if isinstance(b, Batch) and stretch[0] <= b.seq_from <= stretch[-1]
        ]
        start_ms, end_ms = t1.timestamp() * 1000, t2.timestamp() * 1000
        replayed = [
            i.table
            async for i in replay(
                nats_server.url, gw, ["SH", "SZ", "BJ"], start=start_ms, end=end_ms, encoding="arrow"
            )
            if isinstance(i, Batch)
        ]
        assert len(replayed) == len(live_tables) > 0
        assert all(a.equals(b) for a, b in zip(replayed, live_tables, strict=True))

        await pub.stop()
        await live.close()
        await live_arrow.close()
        await hub.stop()

    asyncio.run(run())


def test_two_gateways_on_one_bus_a_consumer_of_both_sees_each_tick_once(nats_server: Any) -> None:
    async def run() -> None:
        hub_a, hub_b = make_hub(), make_hub()
        await hub_a.start()
        await hub_b.start()
        pub_a = NatsPublisher(hub_a, settings(nats_server.url, "gw-a"))
        pub_b = NatsPublisher(hub_b, settings(nats_server.url, "gw-b"))
        both = NatsStream(nats_server.url)  # gateway="*": de-duplicates by (code, exchange time)
        await both.subscribe(["SH", "SZ", "BJ"])
        only_b = NatsStream(nats_server.url, gateway="gw-b")
        await only_b.subscribe(["600001.SH"])
        assert await both.wait_connected(5) and await only_b.wait_connected(5)
        for p in (pub_a, pub_b):
            await p.start()
            await asyncio.wait_for(p.connected.wait(), 5)
        expected: list[tuple[str, int]] = []
        for b in range(12):  # the same feed on both; A goes away after burst 7, B carries on alone
            data = burst(b)
            expected += [(c, t["time"]) for c, t in data.items()]
            if b < 8:
                hub_a.publish("tick", data)
            hub_b.publish("tick", data)
            await asyncio.sleep(0.01)
            if b == 7:
                await wait_for(lambda: not pub_a.backlog())
                await pub_a.stop()
        got = await collect(both, lambda g: len(rows(g)) >= len(expected))
        await asyncio.sleep(0.3)  # nothing more may come
        while True:
            try:
                got.append(await both.next(timeout=0.05))
            except asyncio.TimeoutError:
                break
        seen = [(r["code"], r["ts"]) for r in rows(got)]
        assert sorted(seen) == sorted(expected) and len(set(seen)) == len(seen)
        assert {r["gw"] for r in rows(got)} == {"gw-a", "gw-b"}
        assert both.cross_duplicates == sum(1 for _c, t in expected if t < T0 + 3000 * 8)
        assert not [e for e in got if isinstance(e, Event) and e.kind == "gap"]
        one = await collect(only_b, lambda g: len(rows(g)) >= sum(1 for c, _ in expected if c == "600001.SH"))
        assert {r["gw"] for r in rows(one)} == {"gw-b"}
        await pub_b.stop()
        await both.close()
        await only_b.close()
        await hub_a.stop()
        await hub_b.stop()

    asyncio.run(run())


def test_a_standby_publishes_only_while_the_active_heartbeat_is_missing(nats_server: Any) -> None:
    async def run() -> None:
        hub_a, hub_s = make_hub(), make_hub()
        await hub_a.start()
        await hub_s.start()
        active = NatsPublisher(hub_a, settings(nats_server.url, "act", heartbeat_seconds=0.1))
        standby = NatsPublisher(
            hub_s,
            settings(nats_server.url, "stb", heartbeat_seconds=0.1, standby_of="act", standby_timeout=0.5),
        )
        consumer = NatsStream(nats_server.url)
        await consumer.subscribe(["SH", "SZ", "BJ"])
        assert await consumer.wait_connected(5)
        await active.start()
        await standby.start()
        await asyncio.wait_for(standby.connected.wait(), 5)
        await asyncio.sleep(0.6)  # the standby has heard the active by now
        for b in range(3):
            hub_a.publish("tick", burst(b))
            hub_s.publish("tick", burst(b))
            await asyncio.sleep(0.05)
        await wait_for(lambda: not active.backlog() and standby.stats.frames >= 3)
        assert standby.stats.published_updates == 0 and standby.stats.standby_skipped_updates > 0
        assert not standby.info()["active"]
        # the active dies without a goodbye: its tasks and connection just stop
        nc = active._nc
        for task in active._tasks:
            task.cancel()
        await asyncio.gather(*active._tasks, return_exceptions=True)
        if not nc.is_closed:
            await nc.close()
        t0 = time.monotonic()
        await wait_for(lambda: standby.info()["active"], 5)
        assert time.monotonic() - t0 < 2.0
        for b in range(3, 6):
            hub_s.publish("tick", burst(b))
            await asyncio.sleep(0.05)
        n = sum(len(burst(b)) for b in range(6))
        got = await collect(consumer, lambda g: len(rows(g)) >= n)
        assert sorted((r["code"], r["ts"]) for r in rows(got)) == sorted(
            (c, t["time"]) for b in range(6) for c, t in burst(b).items()
        )
        assert {r["gw"] for r in rows(got) if r["ts"] >= T0 + 3000 * 3} == {"stb"}
        await standby.stop()
        await consumer.close()
        await hub_a.stop()
        await hub_s.stop()

    asyncio.run(run())


def test_the_jetstream_stream_takes_the_retention_settings_and_follows_their_changes(
    nats_server: Any,
) -> None:
    import nats

    from qmtgate.natswire import stream_name

    async def run() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        for age, size in ((3600.0, 50_000_000), (7200.0, 80_000_000)):  # the second start updates the stream
            hub = make_hub()
            await hub.start()
            pub = NatsPublisher(
                hub,
                settings(
                    nats_server.url,
                    "gwret",
                    jetstream=True,
                    stream_max_age_seconds=age,
                    stream_max_bytes=size,
                ),
            )
            await pub.start()
            await asyncio.wait_for(pub.connected.wait(), 5)
            info = await js.stream_info(stream_name("gwret"))
            assert info.config.max_age == age and info.config.max_bytes == size
            assert info.config.subjects == ["qmtgate.gwret.>"]
            await pub.stop()
            await hub.stop()
        await nc.close()

    asyncio.run(run())
