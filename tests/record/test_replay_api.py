"""The recording through the API: /recorded routes, and ``--source replay`` serving the WebSocket API.

A real uvicorn on loopback serves the replay of the recorded session at 10x; a real WebSocket client
subscribed to the whole market must receive exactly the recorded ticks, in recorded order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest
from websockets.sync.client import connect

from api.support import LiveServer, start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .conftest import DAY, Recorded


@pytest.fixture(scope="module")
def replay(recorded: Recorded) -> Iterator[LiveServer]:
    settings = Settings(
        source="replay",
        replay={"db": recorded.path, "date": "2025-06-12", "speed": 10, "start": "09:30:00"},
    )
    server = start_server(create_app(settings))
    yield server
    server.stop()


def test_recorded_klines_and_ticks_as_json_and_arrow(replay: LiveServer, recorded: Recorded) -> None:
    with httpx.Client(base_url=replay.url, timeout=30) as client:
        body = client.get(
            "/api/v1/recorded/klines", params={"codes": "600000.SH,000001.SZ", "count": 3}
        ).json()
        assert body["count"] == 6 and body["period"] == "1m"
        last = body["data"][2]
        assert last["code"] == "600000.SH" and last["time"] == "2025-06-12T15:00:00+08:00"
        assert {"open", "high", "low", "close", "pre_close", "volume", "amount"} <= set(last)
        arrow = client.get(
            "/api/v1/recorded/ticks",
            params={"codes": "600000.SH", "start": "20250612093000", "end": "20250612093100"},
            headers={"Accept": "application/vnd.apache.arrow.stream"},
        )
        assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(arrow.content).read_all()
        with duckdb.connect(str(recorded.path), read_only=True) as con:
            want = con.execute(
                "SELECT ts FROM ticks WHERE code = '600000.SH' AND ts BETWEEN ? AND ? ORDER BY ts",
                [1749691800000, 1749691860000],
            ).fetchall()
        assert table.column("ts").to_pylist() == [w[0] for w in want] and len(want) > 10
        days = client.get("/api/v1/recorded/days").json()["data"]
        assert [d["date"] for d in days] == ["2025-06-11", "2025-06-12"]
        bad = client.get("/api/v1/recorded/klines", params={"codes": "600000.SH", "period": "5m"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"
        bad = client.get("/api/v1/recorded/ticks", params={"codes": "600000.SH", "fields": "nope"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_field"


def _stored(recorded: Recorded, lo: int) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(recorded.path), read_only=True) as con:
        return con.execute(
            "SELECT code, ts, last_price, volume, amount FROM ticks WHERE date = ? AND ts >= ? ORDER BY ts, seq",
            [DAY, lo],
        ).fetchall()


def test_replay_at_10x_delivers_the_recorded_ticks_in_recorded_order(
    replay: LiveServer, recorded: Recorded
) -> None:
    url = replay.url.replace("http://", "ws://") + "/api/v1/ws"
    got: list[tuple[Any, ...]] = []
    with connect(url) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["source"] == "replay"
        ws.send(json.dumps({"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}))
        seqs: list[int] = []
        deadline = time.monotonic() + 4.0  # 40 recorded seconds at 10x
        while time.monotonic() < deadline:
            try:
                msg = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if msg["type"] != "data" or msg["conflated"] or msg["replay"]:
                continue  # the ack and the current-values seed
            for item in msg["items"]:
                seqs.append(item["seq"])
                got.append((item["code"], item["ts"], item["last_price"], item["volume"], item["amount"]))
    assert len(got) > 5 * len(recorded.codes), "several bursts arrived"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gap"
    stored = _stored(recorded, got[0][1])
    start = stored.index(got[0])
    assert got == stored[start : start + len(got)]
    span = (got[-1][1] - got[0][1]) / 1000
    assert 20 <= span <= 60, f"about 10x: {span:.0f} recorded seconds in ~4 wall seconds"
