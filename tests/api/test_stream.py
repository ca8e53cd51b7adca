"""WebSocket streaming end to end: a real uvicorn on loopback, real WebSocket clients, the simulator.

The simulator's clock is manual (2025-06-12 10:30 CST); tests move it forward and the simulator's
publisher thread delivers the slots that passed, as a running QMT would.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from qmtgate.api.app import create_app
from qmtgate.hub.clients import Interest

from .sim_support import sim_settings, wait_live
from .support import LiveServer, start_server


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveServer]:
    settings = sim_settings(stream={"outbox_frames": 8, "max_lag_seconds": 2.0, "ring_capacity": 200_000})
    app = create_app(settings)
    server = start_server(app)
    import httpx

    with httpx.Client(base_url=server.url, timeout=180) as client:
        wait_live(client)
    server.app = app  # type: ignore[attr-defined]
    _HUB[:] = [app.state.hub]
    yield server
    server.stop()


def sim_env() -> Any:
    from qmtgate.sim.xtquant import _env

    return _env.current()


_HUB: list[Any] = []


def _gateway_hub() -> Any:
    return _HUB[0] if _HUB else None


def advance(seconds: float, flush: bool = True) -> None:
    """Move the simulated market forward and wait until the publisher has delivered it."""
    env = sim_env()
    env.market.clock.advance(seconds)
    target = env.market.time().slot
    deadline = time.monotonic() + 30
    while env.publisher.delivered_slot < target and time.monotonic() < deadline:
        time.sleep(0.02)
    h = _gateway_hub()
    if h is not None:
        while h.batches_published < h.batches_received and time.monotonic() < deadline:
            time.sleep(0.02)  # the hub has published everything the callbacks delivered
        flush_by = time.monotonic() + (3 if flush else 0)  # and the senders have written it
        while any(len(c.outbox) for c in list(h.clients.values())) and time.monotonic() < flush_by:
            time.sleep(0.02)
    time.sleep(0.2)


def ws_url(server: LiveServer, path: str = "/api/v1/ws") -> str:
    return server.url.replace("http://", "ws://") + path


def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = recv(ws, max(deadline - time.monotonic(), 0.01))
        if msg["type"] == kind:
            return msg


def drain(ws: ClientConnection, quiet: float = 0.5) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(recv(ws, quiet))
        except TimeoutError:
            return out


def drain_until_live(ws: ClientConnection, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Messages until a live data frame has arrived (a busy machine can trail the clock), then drain."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not any(m["type"] == "data" and not m.get("replay") for m in out):
        try:
            out.append(recv(ws, max(deadline - time.monotonic(), 0.01)))
        except TimeoutError:
            break
    return out + drain(ws)


def hub(server: LiveServer) -> Any:
    return server.app.state.hub  # type: ignore[attr-defined]


def test_hello_subscribe_stream_and_unsubscribe(gateway: LiveServer) -> None:
    with connect(ws_url(gateway)) as ws:
        hello = recv(ws)
        assert hello["type"] == "hello" and hello["source"] == "simulated" and hello["epoch"]
        ws.send(
            json.dumps({"op": "subscribe", "id": 1, "period": "tick", "codes": ["600000.SH", "sz000001"]})
        )
        ack = recv_until(ws, "subscribed")
        assert ack["codes"] == ["600000.SH", "000001.SZ"] and ack["errors"] == []
        seed = recv_until(ws, "data")  # the current values first
        assert {i["code"] for i in seed["items"]} == {"600000.SH", "000001.SZ"}
        advance(30)
        frames = [m for m in drain_until_live(ws) if m["type"] == "data"]
        assert frames, "ten bursts passed"
        item = frames[-1]["items"][-1]
        assert item["code"] in ("600000.SH", "000001.SZ")
        assert {"ts", "time", "last_price", "volume", "amount", "bid_price", "ask_volume", "phase"} <= set(
            item
        )
        seqs = [i["seq"] for f in frames for i in f["items"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        ws.send(json.dumps({"op": "unsubscribe", "period": "tick", "codes": ["600000.SH", "000001.SZ"]}))
        recv_until(ws, "unsubscribed")
        after_ack = hub(gateway).seq
        advance(15)
        late = [i for m in drain(ws) if m["type"] == "data" for i in m["items"] if i["seq"] > after_ack]
        assert not late, "nothing published after the unsubscribe reaches the client"


def test_unknown_code_gets_an_error_while_the_valid_ones_stream(gateway: LiveServer) -> None:
    with connect(ws_url(gateway)) as ws:
        recv(ws)
        ws.send(
            json.dumps({"op": "subscribe", "codes": ["600000.SH", "999999.SH", "bogus"], "period": "tick"})
        )
        ack = recv_until(ws, "subscribed")
        assert ack["codes"] == ["600000.SH"]
        errors = {e["code"]: e for e in ack["errors"]}
        assert errors["unknown_code"]["codes"] == ["999999.SH"]
        assert errors["invalid_code"]["codes"] == ["bogus"]
        advance(15)
        data = [m for m in drain(ws) if m["type"] == "data"]
        assert data and {i["code"] for m in data for i in m["items"]} == {"600000.SH"}
        ws.send(
            json.dumps(
                {"op": "subscribe", "period": "tick", "sectors": ["no such sector"], "codes": ["000001.SZ"]}
            )
        )
        ack = recv_until(ws, "subscribed")
        assert ack["codes"] == ["000001.SZ"]
        assert {"code": "unknown_sector", "sectors": ["no such sector"]} in ack["errors"]
        ws.send(json.dumps({"op": "subscribe", "period": "7m", "codes": ["600000.SH"]}))
        err = recv_until(ws, "error")
        assert err["error"]["code"] == "invalid_period"
        ws.send("not json")
        assert recv_until(ws, "error")["error"]["code"] == "bad_request"


def test_ten_clients_on_one_code_make_one_upstream_subscription(gateway: LiveServer) -> None:
    h = hub(gateway)
    env = sim_env()
    key = ("1m", "code", "600519.SH")
    before_calls = h.registry.upstream_calls

    def sim_subs() -> int:
        return sum(1 for s in env.publisher.subscriptions() if s.code == "600519.SH" and s.period == "1m")

    clients = [connect(ws_url(gateway)) for _ in range(10)]
    try:
        for ws in clients:
            recv(ws)
            ws.send(json.dumps({"op": "subscribe", "period": "1m", "codes": ["600519.SH"]}))
            recv_until(ws, "subscribed")
        assert h.registry.refs(key) == 10
        assert h.registry.upstream_calls - before_calls == 1
        assert sim_subs() == 1
        advance(60)
        for ws in clients:
            first = recv_until(ws, "data", 15)  # on a busy machine the bars can trail the clock
            bars = first["items"] + [i for m in drain(ws, 0.3) if m["type"] == "data" for i in m["items"]]
            assert bars and all(b["period"] == "1m" and b["code"] == "600519.SH" for b in bars)
            assert bars[-1]["forming"] is True
        for ws in clients[:9]:
            ws.close()
        time.sleep(0.5)
        assert h.registry.refs(key) == 1 and sim_subs() == 1
    finally:
        for ws in clients:
            ws.close()
    deadline = time.monotonic() + 5
    while sim_subs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.registry.refs(key) == 0 and sim_subs() == 0, "released upstream after the last client left"


def test_resume_after_a_reconnect_has_no_gap(gateway: LiveServer) -> None:
    codes = ["600000.SH", "000001.SZ", "300750.SZ", "600519.SH"]
    sub = {"op": "subscribe", "period": "tick", "codes": codes}
    with connect(ws_url(gateway)) as witness:
        recv(witness)
        witness.send(json.dumps(sub))
        recv_until(witness, "subscribed")
        with connect(ws_url(gateway)) as ws:
            epoch = recv(ws)["epoch"]
            ws.send(json.dumps(sub))
            recv_until(ws, "subscribed")
            advance(15)
            frames = [m for m in drain_until_live(ws) if m["type"] == "data"]
            got = [i for m in frames for i in m["items"]]
            live = [i["seq"] for m in frames if not m["replay"] for i in m["items"]]
            assert live, "live frames arrived after the subscription"
            first_live = min(live)
            last_seq = max(i["seq"] for i in got)
        advance(30)  # bursts while the client is away
        with connect(ws_url(gateway)) as ws:
            recv(ws)
            ws.send(json.dumps({**sub, "since": last_seq, "epoch": epoch}))
            recv_until(ws, "subscribed")
            advance(6)
            after = [m for m in drain(ws) if m["type"] == "data"]
        seen = [i["seq"] for i in got] + [i["seq"] for m in after for i in m["items"]]
        witnessed = [
            i["seq"] for m in drain(witness) if m["type"] == "data" and not m["replay"] for i in m["items"]
        ]
    assert any(m["replay"] for m in after), "the missed updates came as a replay"
    assert not any(m["conflated"] for m in after)
    # no gap: within the span the reconnecting client has covered, it has every update the witness had
    expected = [s for s in witnessed if first_live <= s <= max(seen)]
    missing = sorted(set(expected) - set(seen))
    assert not missing, (
        f"missing {missing[:10]} (last_seq {last_seq}, first_live {first_live}, seen max {max(seen)}, witness max {max(witnessed)})"
    )
    tail = sorted(s for s in seen if s > last_seq)
    assert len(tail) == len(set(tail)), "no duplicates"


def test_resume_outside_the_window_gets_a_resync_and_a_snapshot(gateway: LiveServer) -> None:
    ring = hub(gateway).ring
    deadline = time.monotonic() + 60
    while (ring.first_seq or 0) <= 2 and time.monotonic() < deadline:
        advance(30)  # publish until the ring has evicted its oldest updates
    assert (ring.first_seq or 0) > 2
    with connect(ws_url(gateway)) as ws:
        epoch = recv(ws)["epoch"]
        ws.send(
            json.dumps(
                {"op": "subscribe", "period": "tick", "codes": ["600000.SH"], "since": 1, "epoch": epoch}
            )
        )
        recv_until(ws, "subscribed")
        resync = recv_until(ws, "resync")
        assert resync["reason"] == "out_of_window" and resync["epoch"] == epoch
        snap = recv_until(ws, "data")
        assert snap["conflated"] and [i["code"] for i in snap["items"]] == ["600000.SH"]
        ws.send(json.dumps({"op": "resume", "since": 5, "epoch": "another-run"}))
        assert recv_until(ws, "resync")["reason"] == "new_epoch"


def test_a_slow_client_is_conflated_then_dropped_while_a_fast_one_sees_every_burst(
    gateway: LiveServer,
) -> None:
    h = hub(gateway)
    fast_frames: list[dict[str, Any]] = []
    stop = threading.Event()

    def fast() -> None:
        with connect(ws_url(gateway), max_size=None) as ws:
            recv(ws)
            ws.send(json.dumps({"op": "subscribe", "period": "tick", "markets": ["SH", "SZ"]}))
            while not stop.is_set():
                try:
                    m = recv(ws, 0.2)
                except TimeoutError:
                    continue
                if m["type"] == "data":
                    fast_frames.append(m)

    reader = threading.Thread(target=fast, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while not any("SH" in c.interests.get("tick", Interest()).markets for c in h.clients.values()):
        assert time.monotonic() < deadline, "the fast client subscribed"
        time.sleep(0.05)
    before = set(h.clients)
    # a client that does not read: a tiny receive buffer so the server's sends block quickly
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = gateway.url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    slow = connect(ws_url(gateway), sock=sock, max_size=None, max_queue=1)
    recv(slow)
    slow.send(json.dumps({"op": "subscribe", "period": "tick", "markets": ["SH", "SZ"]}))
    time.sleep(0.5)
    (slow_id,) = set(h.clients) - before
    slow_state = h.clients[slow_id]
    try:
        for _ in range(12):  # whole-market bursts the slow client never reads
            advance(3, flush=False)
            time.sleep(0.3)
        deadline = time.monotonic() + 30
        while slow_state.outbox.closed_reason is None and time.monotonic() < deadline:
            advance(3, flush=False)
        assert slow_state.outbox.stats.conflations > 0, "it was conflated before being dropped"
        assert slow_state.outbox.closed_reason and "too slow" in slow_state.outbox.closed_reason
    finally:
        stop.set()
        reader.join(timeout=10)
        slow.close()
    live = [f for f in fast_frames if not f["replay"]]
    seqs = [i["seq"] for f in live for i in f["items"]]
    assert not any(f["conflated"] for f in live), "the fast client was never conflated"
    published = h.ring.since(seqs[0] - 1)
    assert published is not None
    expected = [u.seq for u in published if u.market in ("SH", "SZ") and seqs[0] <= u.seq <= seqs[-1]]
    assert seqs == expected, "the fast client saw every SH/SZ update, in order"


def test_compat_realtime_route(gateway: LiveServer) -> None:
    h = hub(gateway)
    with connect(ws_url(gateway, "/ws/realtime")) as ws:
        ws.send(json.dumps({"stocks": ["600000.SH"], "period": "tick"}))
        deadline = time.monotonic() + 10  # this protocol has no ack: wait until the hub has the interest
        while not any("600000.SH" in c.interests.get("tick", Interest()).codes for c in h.clients.values()):
            assert time.monotonic() < deadline, "subscribed"
            time.sleep(0.02)
        advance(15)
        msgs = drain(ws)
    # qmt-bridge's shape: {code: [xtquant tick]} (tests/api/test_compat_qmt_bridge_realtime.py)
    assert msgs and all(set(m) == {"600000.SH"} for m in msgs)
    assert msgs[-1]["600000.SH"][-1]["lastPrice"] > 0


def test_arrow_frames_carry_the_same_burst_as_json_frames(gateway: LiveServer) -> None:
    """Two whole-market clients, one JSON, one Arrow: the same seqs and values, one shared encode."""
    from qmtgate.api.stream_codec import decode_arrow

    with (
        connect(ws_url(gateway), max_size=None) as js,
        connect(ws_url(gateway), max_size=None) as ar,
        connect(ws_url(gateway), max_size=None) as lz,
    ):
        hello = recv(ar)
        assert "arrow" in hello["encodings"] and hello["compressions"] == ["zstd", "lz4", "none"]
        recv(js)
        recv(lz)
        ar.send(json.dumps({"op": "options", "encoding": "msgpack"}))
        assert recv_until(ar, "error")["error"]["code"] == "invalid_encoding"
        ar.send(json.dumps({"op": "options", "encoding": "arrow", "compression": "gzip"}))
        err = recv_until(ar, "error")["error"]
        assert err["code"] == "invalid_compression" and err["details"]["allowed"] == ["zstd", "lz4", "none"]
        ar.send(json.dumps({"op": "options", "id": 7, "encoding": "arrow"}))
        assert recv_until(ar, "options") == {
            "type": "options",
            "id": 7,
            "encoding": "arrow",
            "compression": "zstd",
        }
        lz.send(json.dumps({"op": "options", "id": 8, "encoding": "arrow", "compression": "lz4"}))
        assert recv_until(lz, "options")["compression"] == "lz4"
        for ws in (js, ar, lz):
            ws.send(json.dumps({"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}))
        recv_until(js, "subscribed")
        for ws in (ar, lz):
            deadline = time.monotonic() + 10
            while True:  # an arrow client's ack is text; the seed snapshot after it is binary
                msg = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
                if isinstance(msg, str) and json.loads(msg)["type"] == "subscribed":
                    break
        time.sleep(0.5)
        drain(js)
        for ws in (ar, lz):
            while True:
                try:
                    ws.recv(timeout=0.3)
                except TimeoutError:
                    break
        h = hub(gateway)
        bursts = h.stats["bursts"]
        deadline = time.monotonic() + 30
        while h.stats["bursts"] == bursts:  # a slot with whole-market ticks (the next one, normally)
            assert time.monotonic() < deadline, ("no burst", sim_env().market.time(), h.stats)
            advance(3)
        live_json = [m for m in drain(js) if m["type"] == "data" and not m["replay"]]
        binary, lz4 = [], []
        for ws, out in ((ar, binary), (lz, lz4)):
            while True:
                try:
                    msg = ws.recv(timeout=0.5)
                except TimeoutError:
                    break
                assert isinstance(msg, bytes), "data frames are binary once arrow is chosen"
                out.append((len(msg), *decode_arrow(msg)))
    assert live_json and len(binary) == len(live_json) == len(lz4)
    for (zsize, zhead, ztable), (lsize, lhead, ltable) in zip(binary, lz4, strict=True):
        assert lhead == zhead and ltable.equals(ztable), "lz4 frames carry the same data"
        assert lsize != zsize, "and were compressed differently"
    binary = [(head, table) for _, head, table in binary]
    for frame, (head, table) in zip(live_json, binary, strict=True):
        assert head["type"] == "data" and head["channel"] == "tick"
        assert (head["seq_from"], head["seq_to"], head["epoch"]) == (
            frame["seq_from"],
            frame["seq_to"],
            frame["epoch"],
        )
        assert head["gw_ts"] == frame["gw_ts"] and head["gw_ts"] <= time.time() * 1000
        assert table.num_rows == len(frame["items"]) == head["seq_to"] - head["seq_from"] + 1
        assert str(table.schema.field("time").type) == "timestamp[ms, tz=Asia/Shanghai]"
        assert table.column("seq").to_pylist() == [i["seq"] for i in frame["items"]]
        for name in ("code", "ts", "last_price", "volume", "amount", "bid_price", "ask_volume", "phase"):
            assert table.column(name).to_pylist() == [i[name] for i in frame["items"]], name


def test_client_stream_in_arrow_gives_the_same_batches_as_json(gateway: LiveServer) -> None:
    """``qmtgate.client`` streams of the BJ market, one JSON and one Arrow (lz4): the same seqs, the same
    items, and a DataFrame straight from the Arrow table. The BJ frames' seqs jump over the other
    markets' updates, and neither stream calls that a gap (frames chain by ``prev_seq``)."""
    import asyncio

    from qmtgate.client import AsyncClient, Batch, Event

    gap_events: list[Event] = []

    async def scenario() -> tuple[list[Batch], list[Batch]]:
        async with AsyncClient(gateway.url) as client:
            js = client.stream(["BJ"], "tick")
            ar = client.stream(["BJ"], "tick", encoding="arrow", compression="lz4")
            got: dict[str, list[Batch]] = {"js": [], "ar": []}
            async with js, ar:
                for stream in (js, ar):
                    while True:  # subscribed, then the seed snapshot
                        item = await stream.next(timeout=30)
                        if isinstance(item, Batch):
                            break
                await asyncio.to_thread(advance, 9)
                for name, stream in (("js", js), ("ar", ar)):
                    while True:
                        try:
                            item = await stream.next(timeout=1.0)
                        except asyncio.TimeoutError:
                            break
                        if isinstance(item, Batch) and not item.replay:
                            got[name].append(item)
                        elif isinstance(item, Event) and item.kind == "gap":
                            gap_events.append(item)
            return got["js"], got["ar"]

    js, ar = asyncio.run(scenario())
    assert js and [(b.seq_from, b.seq_to) for b in ar] == [(b.seq_from, b.seq_to) for b in js]
    assert any(b.seq_from > a.seq_to + 1 for a, b in itertools.pairwise(js))  # other markets' seqs
    assert not gap_events and all(b.gap == 0 for b in js + ar)
    for a, j in zip(ar, js, strict=True):
        assert a.table is not None and a.rows is None and j.table is None
        assert len(a) == len(j) == a.table.num_rows
        assert a.codes() == j.codes()
        assert a.items == j.items
        frame = a.frame()
        assert str(frame["time"].dt.tz) == "Asia/Shanghai" and frame["seq"].tolist() == [
            i["seq"] for i in j.items
        ]


def test_columnar_frames_round_trip_through_the_client_to_the_json_rows(gateway: LiveServer) -> None:
    """Whole-market streams through ``qmtgate.client``, one asking for JSON rows and one left on its
    default (columnar JSON, which this gateway offers), plus 1m bars of two codes on each: every batch,
    seed and live, gives exactly the same items in both. On the wire a columnar frame has one array per
    field, the books flat (``depth`` levels per row), no ``items`` and no ``time``."""
    import asyncio

    from qmtgate.client import AsyncClient, Batch

    async def scenario() -> tuple[list[Batch], list[Batch]]:
        async with AsyncClient(gateway.url) as client:
            js = client.stream(["SH", "SZ", "BJ"], "tick", encoding="json")
            co = client.stream(["SH", "SZ", "BJ"], "tick")
            got: dict[str, list[Batch]] = {"js": [], "co": []}
            async with js, co:
                for stream in (js, co):
                    await stream.subscribe(["600000.SH", "000001.SZ"], "1m")
                    while True:  # the whole-market seed snapshot
                        item = await stream.next(timeout=30)
                        if isinstance(item, Batch) and item.channel == "tick":
                            got["js" if stream is js else "co"].append(item)
                            break
                await asyncio.to_thread(advance, 6)
                for name, stream in (("js", js), ("co", co)):
                    while True:
                        try:
                            item = await stream.next(timeout=1.0)
                        except asyncio.TimeoutError:
                            break
                        if isinstance(item, Batch):
                            got[name].append(item)
            return got["js"], got["co"]

    js, co = asyncio.run(scenario())
    live = [b for b in js if b.channel == "tick" and not b.replay]
    assert live and max(len(b) for b in live) > 4_000, "whole-market bursts"
    assert any(b.channel == "1m" for b in js)
    key = sorted((b.channel, b.seq_from, b.seq_to) for b in js)
    assert key == sorted((b.channel, b.seq_from, b.seq_to) for b in co)
    by_key = {(b.channel, b.seq_from, b.seq_to): b for b in co}
    for j in js:
        c = by_key[(j.channel, j.seq_from, j.seq_to)]
        assert j.rows is not None and c.rows is None and c.columnar is not None and c.table is None
        assert (c.replay, c.conflated, len(c)) == (j.replay, j.conflated, len(j))
        assert c.codes() == j.codes()
        assert c.items == j.items  # every field, None where the row has None, time derived from ts
        assert c.frame().equals(pd_frame(j.items)), "the same DataFrame too"


def pd_frame(items: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame.from_records(items)


def test_columnar_frames_on_the_wire(gateway: LiveServer) -> None:
    """A raw WebSocket client that asks for ``columns``: the options ack, then frames with ``n``,
    ``depth`` and one array of ``n`` values per field (books flat, ``depth`` values per row)."""
    with connect(ws_url(gateway), max_size=None) as ws:
        assert "columns" in recv(ws)["encodings"]
        ws.send(json.dumps({"op": "options", "id": 3, "encoding": "columns"}))
        assert recv_until(ws, "options") == {
            "type": "options",
            "id": 3,
            "encoding": "columns",
            "compression": "zstd",
        }
        ws.send(json.dumps({"op": "subscribe", "period": "tick", "codes": ["600000.SH", "000001.SZ"]}))
        recv_until(ws, "subscribed")
        seed = recv_until(ws, "data")
        assert "items" not in seed and seed["n"] == 2
        cols = seed["columns"]
        assert "time" not in cols and set(cols["code"]) == {"600000.SH", "000001.SZ"}
        assert seed["depth"] == {"bid_price": 5, "bid_volume": 5, "ask_price": 5, "ask_volume": 5}
        assert all(len(v) == (5 if k in seed["depth"] else 1) * 2 for k, v in cols.items())
        assert cols["seq"] == sorted(cols["seq"]) and cols["seq"][-1] == seed["seq_to"]
