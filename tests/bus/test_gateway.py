"""A real gateway (uvicorn on loopback over the fake xtdata) publishing to a real nats-server: the client
switches transport with one argument and gets the same batches; /metrics shows the publisher."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from qmtgate.api.app import create_app
from qmtgate.client import AsyncClient, Batch, Client
from qmtgate.config import Settings

try:
    from api.support import FakeXtdata, make_source, start_server
    from bus.feed import burst
    from bus.test_publish import collect, rows
except ImportError:
    from tests.api.support import FakeXtdata, make_source, start_server  # type: ignore[no-redef]
    from tests.bus.feed import burst  # type: ignore[no-redef]
    from tests.bus.test_publish import collect, rows  # type: ignore[no-redef]


def whole_quote_callback(fake: FakeXtdata, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _codes, period, cb in list(fake.subscriptions.values()):
            if period == "tick" and cb is not None:
                return cb
        time.sleep(0.02)
    raise AssertionError("the gateway did not subscribe the whole market")


def test_the_client_switches_to_nats_with_one_argument_and_gets_the_same_batches(nats_server: Any) -> None:
    fake = FakeXtdata()
    settings = Settings(
        source="sim", nats={"url": nats_server.url, "gateway_id": "gwapp", "heartbeat_seconds": 0.2}
    )
    server = start_server(create_app(settings, make_source(fake)))
    try:
        push = whole_quote_callback(fake)

        async def run() -> None:
            async with AsyncClient(server.url) as client:
                ws = client.stream(["SH", "SZ", "BJ"])
                bus = client.stream(["SH", "SZ", "BJ"], nats=nats_server.url, gateway="gwapp")
                assert await ws.wait_connected(10) and await bus.wait_connected(10)
                await asyncio.sleep(0.5)  # the WebSocket subscription is in place
                n = 0
                for b in range(100, 106):
                    data = burst(b)
                    n += len(data)
                    await asyncio.to_thread(push, data)
                    await asyncio.sleep(0.05)

                def mine(g: list[Any]) -> list[dict[str, Any]]:
                    return [r for r in rows(g) if r["ts"] >= burst(100)[next(iter(burst(100)))]["time"]]

                got_ws = await collect(ws, lambda g: len(mine(g)) >= n)
                got_bus = await collect(bus, lambda g: len(mine(g)) >= n)
                from_ws, from_bus = mine(got_ws), mine(got_bus)
                assert [r["seq"] for r in from_bus] == [r["seq"] for r in from_ws]
                assert [{k: v for k, v in r.items() if k != "gw"} for r in from_bus] == from_ws
                assert all(isinstance(i, Batch) and i.gap == 0 for i in got_bus if isinstance(i, Batch))

        asyncio.run(run())

        # the sync client: callbacks on its stream thread, the same switch
        got: list[Batch] = []
        seen = threading.Event()
        with Client(server.url) as client:
            sub = client.subscribe(
                ["600001.SH"],
                callback=lambda b: (got.append(b), seen.set()),
                nats=nats_server.url,
                gateway="gwapp",
            )
            deadline = time.monotonic() + 10
            while not any(e.kind == "connected" for e in sub.events) and time.monotonic() < deadline:
                time.sleep(0.02)
            push(burst(108))  # 600001.SH trades in this one
            assert seen.wait(10)
            assert {r["code"] for b in got for r in b.items} == {"600001.SH"}
            sub.close()

        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        published = [
            line for line in metrics.splitlines() if line.startswith("qmtgate_nats_published_updates_total")
        ]
        assert published and float(published[0].split()[-1]) > 0
        assert "qmtgate_nats_connected 1.0" in metrics
    finally:
        server.stop()
