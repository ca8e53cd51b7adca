"""The NATS publisher against a real nats-server: every update reaches a consumer on another connection,
in order, with a seq chain that proves nothing is missing (docs/nats.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pyarrow as pa

from qmtgate.bus.publisher import NatsPublisher
from qmtgate.client.bus import NatsStream
from qmtgate.client.stream import Batch, Event
from qmtgate.natswire import FRAME_META_KEY

try:
    from bus.feed import ALL, CODES, burst, make_hub, publish, settings
except ImportError:
    from tests.bus.feed import ALL, CODES, burst, make_hub, publish, settings  # type: ignore[no-redef]


async def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def collect(stream: NatsStream, until: Any, timeout: float = 10.0) -> list[Batch | Event]:
    got: list[Batch | Event] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(got):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"timed out; got {len(got)} items")
        try:
            got.append(await stream.next(timeout=left))
        except asyncio.TimeoutError:
            continue
    return got


def rows(items: list[Batch | Event]) -> list[dict[str, Any]]:
    return [r for i in items if isinstance(i, Batch) for r in i.items]


def test_every_update_reaches_a_consumer_with_an_unbroken_seq_chain(nats_server: Any) -> None:
    async def run() -> None:
        hub = make_hub()
        await hub.start()
        pub = NatsPublisher(hub, settings(nats_server.url, "gwa"))
        whole = NatsStream(nats_server.url, gateway="gwa")
        await whole.subscribe(["SH", "SZ", "BJ"])
        one = NatsStream(nats_server.url, gateway="gwa")
        await one.subscribe(["600003.SH", "000007.SZ"])
        arrow = NatsStream(nats_server.url, gateway="gwa", encoding="arrow")
        await arrow.subscribe(["SZ"])
        for s in (whole, one, arrow):
            assert await s.wait_connected(5)
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)
        expected = []
        for b in range(20):
            expected += [(u.seq, u.code) for u in hub.publish("tick", burst(b))]
            await asyncio.sleep(0.01)
        total = len(expected)
        got = await collect(whole, lambda g: len(rows(g)) >= total)
        assert [(r["seq"], r["code"]) for r in rows(got)] == expected
        assert not [e for e in got if isinstance(e, Event) and e.kind == "gap"]
        assert all(b.gap == 0 for b in got if isinstance(b, Batch))
        r0 = rows(got)[0]
        assert r0["gw"] == "gwa" and r0["code"] == expected[0][1] and isinstance(r0["last_price"], float)

        mine = [(s, c) for s, c in expected if c in ("600003.SH", "000007.SZ")]
        got_one = await collect(one, lambda g: len(rows(g)) >= len(mine))
        assert [(r["seq"], r["code"]) for r in rows(got_one)] == mine

        sz = [s for s, c in expected if c.endswith(".SZ")]
        got_arrow = await collect(arrow, lambda g: sum(len(b) for b in g if isinstance(b, Batch)) >= len(sz))
        tables = [b.table for b in got_arrow if isinstance(b, Batch)]
        assert all(t is not None for t in tables)
        assert pa.concat_tables(tables).column("seq").to_pylist() == sz

        await pub.stop()
        for s in (whole, one, arrow):
            await s.close()
        await hub.stop()
        assert pub.stats.dropped_messages == 0 and pub.stats.published_updates == total

    asyncio.run(run())


def test_batch_message_header_names_its_predecessor(nats_server: Any) -> None:
    """Raw nats-py consumer: the Arrow batch subject's header chain (prev_seq -> seq_to) per market."""
    import nats

    async def run() -> None:
        hub = make_hub()
        await hub.start()
        pub = NatsPublisher(hub, settings(nats_server.url, "gwb", ticks=False))
        nc = await nats.connect(nats_server.url)
        headers: list[dict[str, Any]] = []

        async def cb(msg: Any) -> None:
            table = pa.ipc.open_stream(pa.py_buffer(msg.data)).read_all()
            headers.append(orjson.loads(table.schema.metadata[FRAME_META_KEY]) | {"n": table.num_rows})

        await nc.subscribe("qmtgate.gwb.batch.SH", cb=cb)
        await nc.flush()
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)
        for b in range(5):
            publish(hub, b)
        await wait_for(lambda: len(headers) >= 5)
        assert [h["prev_seq"] for h in headers[1:]] == [h["seq_to"] for h in headers[:-1]]
        assert headers[0]["prev_seq"] is None and all(h["market"] == "SH" for h in headers)
        assert sum(h["n"] for h in headers) == sum(
            1 for b in range(5) for k, c in enumerate(ALL) if c in CODES["SH"] and (k + b) % 4
        )
        await pub.stop()
        await nc.close()
        await hub.stop()

    asyncio.run(run())


def test_batch_compression_setting_changes_the_bytes_not_the_rows(nats_server: Any) -> None:
    """``batch_compression`` lz4 / zstd / none: the same rows decoded from every setting's batches, and the
    uncompressed ones the largest."""
    import nats

    async def one(compression: str) -> tuple[list[dict[str, Any]], int]:
        hub = make_hub()
        await hub.start()
        gw = f"gwc{compression}"
        pub = NatsPublisher(hub, settings(nats_server.url, gw, ticks=False, batch_compression=compression))
        nc = await nats.connect(nats_server.url)
        got: list[pa.Table] = []
        sizes: list[int] = []

        async def cb(msg: Any) -> None:
            sizes.append(len(msg.data))
            got.append(pa.ipc.open_stream(pa.py_buffer(msg.data)).read_all())

        await nc.subscribe(f"qmtgate.{gw}.batch.SH", cb=cb)
        await nc.flush()
        await pub.start()
        await asyncio.wait_for(pub.connected.wait(), 5)
        for b in range(3):
            publish(hub, b)
        await wait_for(lambda: len(got) >= 3)
        await pub.stop()
        await nc.close()
        await hub.stop()
        rows = [r for t in got for r in t.drop_columns(["seq"]).to_pylist()]
        return rows, sum(sizes)

    async def run() -> None:
        results = {c: await one(c) for c in ("lz4", "zstd", "none")}
        assert results["lz4"][0] == results["zstd"][0] == results["none"][0]
        assert results["lz4"][0]  # something was published
        assert results["none"][1] > results["lz4"][1]
        assert results["none"][1] > results["zstd"][1]

    asyncio.run(run())
