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


def test_record_from_nats_stores_what_the_gateway_published(nats_server: Any, tmp_path: Any) -> None:
    """``qmtgate record --url GW --nats BUS --nats-id ID``: live ticks from the bus, reference data from
    the gateway's REST; the recording holds every tick pushed while it ran."""
    import duckdb
    from typer.testing import CliRunner

    from qmtgate.cli import app

    fake = FakeXtdata()
    settings = Settings(source="sim", nats={"url": nats_server.url, "gateway_id": "gwrec"})
    server = start_server(create_app(settings, make_source(fake)))
    db = tmp_path / "bus.duckdb"
    pushed: list[tuple[str, int]] = []
    try:
        push = whole_quote_callback(fake)
        stop = threading.Event()

        def feed() -> None:
            b = 200
            time.sleep(2.0)  # the recorder subscribes meanwhile
            while not stop.is_set() and b < 260:
                data = burst(b)
                pushed.extend((c, t["time"]) for c, t in data.items())
                push(data)
                b += 1
                time.sleep(0.1)

        pusher = threading.Thread(target=feed, daemon=True)
        pusher.start()
        args = ["record", "--db", str(db), "--create", "--url", server.url, "--nats", nats_server.url]
        args += ["--nats-id", "gwrec", "--markets", "SH,SZ,BJ", "--no-backfill", "--duration", "6"]
        result = CliRunner().invoke(app, args)
        stop.set()
        pusher.join(10)
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    with duckdb.connect(str(db), read_only=True) as con:
        stored = {(c, int(t)) for c, t in con.execute("SELECT code, ts FROM ticks").fetchall()}
    assert len(stored) > 500
    assert stored <= set(pushed)
    # everything pushed between the first and the last stored tick's burst is there: no tick lost
    lo, hi = min(t for _, t in stored), max(t for _, t in stored)
    assert {k for k in pushed if lo <= k[1] <= hi} <= stored


def test_record_nats_needs_the_gateway_and_its_id(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from qmtgate.cli import app

    result = CliRunner().invoke(app, ["record", "--db", str(tmp_path / "x.duckdb"), "--nats", "nats://h:1"])
    assert result.exit_code == 2 and "--nats needs --url" in result.output
    assert not (tmp_path / "x.duckdb").exists()
