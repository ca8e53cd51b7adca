"""What a Python client pays per whole-market JSON frame: row frames against columnar frames (issue 22
item 3).

Run: ``PYTHONPATH=src .venv/bin/python bench/frame_parse_bench.py [--frames 6] [--repeat 10]``

Starts ``qmtgate serve --source sim`` (replay clock at 1x, a whole-market burst every 3 s) on a free
loopback port, connects two WebSocket clients subscribed to SH+SZ+BJ, one on the default row frames and
one with ``{"op": "options", "encoding": "columns"}``, and keeps ``--frames`` live frames of each (the
same bursts). Then, in this one process and on these recorded frames, it times (``process_time``, the
median over frames of the mean of ``--repeat`` runs):

* **parse**: ``orjson.loads`` of the text frame, which is what a client does with every frame it gets
  (the figure the peers' clients were compared on);
* **qmtgate.client**: what ``qmtgate.client`` does to hand over a :class:`Batch` (parse + the batch);
* **+ items**: and then reading ``Batch.items`` (row dicts: free for a row frame, built for a columnar
  one), the most a consumer of rows can pay;
* **+ frame()**: or ``Batch.frame()``, a DataFrame.

The machine is shared with other work: read the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from snapshot_burst_bench import free_port, start, wait_live

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIBE = {"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}


async def record(url: str, encoding: str, frames: int) -> dict[int, str]:
    """Live whole-market frames (text) by seq_from."""
    out: dict[int, str] = {}
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.recv()  # hello
        if encoding != "json":
            await ws.send(json.dumps({"op": "options", "encoding": encoding}))
        await ws.send(json.dumps(SUBSCRIBE))
        while len(out) < frames:
            raw = await asyncio.wait_for(ws.recv(), 30)
            assert isinstance(raw, str)
            if raw.startswith('{"type":"data"'):
                msg = orjson.loads(raw)
                if not msg["replay"] and msg["seq_to"] - msg["seq_from"] > 1_000:
                    out[msg["seq_from"]] = raw
    return out


def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    began = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - began) / repeat * 1000


def client_batch(raw: str) -> Any:
    """As ``qmtgate.client.stream.Stream._on_data`` makes a batch of a text frame."""
    from qmtgate.client.stream import Batch

    msg = orjson.loads(raw)
    columnar = msg if "columns" in msg else None
    return Batch(
        channel=msg["channel"],
        epoch=msg["epoch"],
        seq_from=msg["seq_from"],
        seq_to=msg["seq_to"],
        rows=None if columnar is not None else msg["items"],
        columnar=columnar,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the gateway's qmtgate src tree")
    a = ap.parse_args()
    port = free_port()
    proc = start(a.src.resolve(), port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_live(client, proc)
        url = f"ws://127.0.0.1:{port}/api/v1/ws"

        async def both() -> list[dict[int, str]]:
            return await asyncio.gather(
                record(url, "json", a.frames + 2), record(url, "columns", a.frames + 2)
            )

        rows, cols = asyncio.run(both())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    common = sorted(rows.keys() & cols.keys())[-a.frames :]
    assert common, "no burst reached both clients"
    for seq in common:  # the same burst, the same values
        assert client_batch(rows[seq]).items == client_batch(cols[seq]).items
    print(f"# frame_parse_bench {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs, shared)")
    n = statistics.median(
        orjson.loads(rows[s])["seq_to"] - orjson.loads(rows[s])["seq_from"] + 1 for s in common
    )
    print(f"{len(common)} whole-market frames of ~{n:,.0f} rows, ms per frame (median over frames):")
    print(f"{'':18} {'rows':>9} {'columns':>9} {'ratio':>7}")
    size_r = statistics.median(len(rows[s]) for s in common)
    size_c = statistics.median(len(cols[s]) for s in common)
    print(f"{'size (MB)':18} {size_r / 1e6:>9.2f} {size_c / 1e6:>9.2f} {size_c / size_r:>7.2f}")
    measures: list[tuple[str, Callable[[str], Callable[[], Any]]]] = [
        ("parse", lambda raw: lambda: orjson.loads(raw)),
        ("qmtgate.client", lambda raw: lambda: client_batch(raw)),
        ("+ items", lambda raw: lambda: client_batch(raw).items),
        ("+ frame()", lambda raw: lambda: client_batch(raw).frame()),
    ]
    for label, make in measures:
        r = statistics.median(timed(make(rows[s]), a.repeat) for s in common)
        c = statistics.median(timed(make(cols[s]), a.repeat) for s in common)
        print(f"{label:18} {r:>9.2f} {c:>9.2f} {c / r:>7.2f}")


if __name__ == "__main__":
    main()
