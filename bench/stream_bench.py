"""Streaming fan-out benchmark (issue 4): N whole-market tick clients on ``/api/v1/ws``.

Run: ``.venv/bin/python bench/stream_bench.py --clients 50 --speed 1 --encoding arrow``
(one run = ~15 s gateway start + warm-up + the measured window + teardown). ``--runs
"50x1:arrow,50x1:arrow-lz4,50x1:json"`` does several runs in a row (clients x speed : encoding; arrow
means zstd buffers, arrow-lz4 / arrow-none the other compressions).

Per run:

* starts ``qmtgate serve --source sim --sim-clock replay --sim-start 20261120100000 --sim-speed S`` on a
  free loopback port and polls ``/api/v1/health/ready`` until ``quotes.live``;
* spreads N clients over P worker processes (``--procs``; one asyncio loop each, ``websockets`` client,
  ``max_size=None``, keepalive pings off), each subscribing to tick for SH+SZ+BJ (the whole market),
  with data frames as JSON rows, columnar JSON (``{"op": "options", "encoding": "columns"}``) or Arrow IPC
  (``{"op": "options", "encoding": "arrow"}``); ``--src`` runs the gateway from another qmtgate tree (a before /
  after in one sitting);
* every client checks every live frame: seq contiguity between frames (a gap = a missing seq), seq and
  item count inside a frame, conflation, disconnects (close code + reason);
* **latency** = client receipt wall time - the frame's ``gw_ts`` (epoch ms at which the gateway's source
  callback received the burst; same host clock), over every (client, live frame) in the window. This is
  source callback -> hub conversion -> fan-out -> socket -> client receipt. Receipt is when the client's
  WebSocket layer has parsed the message's last frame (``StampedConnection``), not when the bench's task
  gets to it: ten clients share a worker process, and each one's decode (~1-3 ms) would otherwise be
  charged to the receipt of the others. The older measure, when ``recv()`` returned to the task, is
  printed next to it ("recv returned");
* gateway CPU = utime+stime of the gateway process from /proc over the window; CPU per delivered tick =
  gateway CPU seconds / updates delivered to all N clients in the window; client CPU = the workers'
  ``process_time`` over the window (receive, decode, checks) - on a 2-core box it competes with the
  gateway, so it is printed next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import DATA_OPCODES, Frame

ROOT = Path(__file__).resolve().parents[1]
QMTGATE = ROOT / ".venv" / "bin" / "qmtgate"
SIM_START = "20261120100000"
BURST_MARKET_SECONDS = 3.0
SUBSCRIBE = {"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}
CLK_TCK = os.sysconf("SC_CLK_TCK")
FRAME_META_KEY = b"qmtgate.frame"
READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)  # as qmtgate.client decodes frames


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """utime+stime (seconds) of pid and its live children (Linux /proc)."""
    total = 0.0
    pids = [pid]
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    pids.append(int(entry))
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the ")": state=0 ppid=1 ... utime=11 stime=12 (fields 14/15 of stat(5))
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


#: the qmtgate source tree the gateway runs from (``--src``; None: the installed ``qmtgate`` next to this
#: checkout's .venv, else this checkout's ``src`` with the running interpreter)
SRC: Path | None = None


def start_gateway(port: int, speed: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QMTGATE_LOG_LEVEL": "warning"}
    if SRC is None and QMTGATE.exists():
        launcher = [str(QMTGATE)]
    else:
        env["PYTHONPATH"] = str(SRC or ROOT / "src")
        launcher = [sys.executable, "-m", "qmtgate"]
    cmd = [
        *launcher,
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
    ]
    log = open(f"/tmp/stream_bench_gateway_{port}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_live(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    t0 = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}")
            try:
                if client.get("/api/v1/health/ready").json().get("quotes", {}).get("live"):
                    return time.monotonic() - t0
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.25)
    raise RuntimeError("the gateway's quote feed did not become live")


# -- worker process: a share of the clients ---------------------------------------------------------


class StampedConnection(ClientConnection):
    """A client connection that notes the wall time at which each message was complete (its last frame
    parsed), whatever the consuming task is doing then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: collections.deque[float] = collections.deque()

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES and event.fin:
            self.arrivals.append(time.time())
        super().process_event(event)


class Client:
    """One whole-market subscriber: records (seq_from, seq_to, items, gw_ts, receipt) per live frame."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.frames: list[tuple[int, int, int, float, float, bool, float]] = []
        self.last_seq: int | None = None
        self.epoch: str | None = None
        self.gap_events = 0
        self.gap_seqs = 0
        self.inner_gaps = 0
        self.resyncs = 0
        self.errors: list[str] = []
        self.closed: str | None = None
        self.subscribed = asyncio.Event()
        self.returned = 0.0  # wall time the last recv() returned

    async def run(self, url: str, stop: asyncio.Event) -> None:
        try:
            async with connect(
                url,
                max_size=None,
                ping_interval=None,
                open_timeout=60,
                close_timeout=5,
                create_connection=StampedConnection,
            ) as ws:
                hello = orjson.loads(await ws.recv())
                ws.arrivals.popleft()  # one arrival stamp per message received, this one included
                self.epoch = hello.get("epoch")
                if self.encoding == "columns":  # columnar JSON text frames
                    await ws.send(json.dumps({"op": "options", "encoding": "columns"}))
                elif self.encoding != "json":  # "arrow" (zstd buffers), "arrow-lz4", "arrow-none"
                    _, _, compression = self.encoding.partition("-")
                    options = {"op": "options", "encoding": "arrow", "compression": compression or "zstd"}
                    await ws.send(json.dumps(options))
                await ws.send(json.dumps(SUBSCRIBE))
                while not stop.is_set():
                    try:  # the timeout only lets the loop see ``stop``; bursts come every 3 s at 1x
                        raw = await asyncio.wait_for(ws.recv(), 2.0)
                    except TimeoutError:
                        continue
                    self.returned = time.time()
                    arrived = ws.arrivals.popleft() if ws.arrivals else self.returned
                    if isinstance(raw, bytes):
                        self._arrow(raw, arrived)
                    else:
                        self._text(orjson.loads(raw), arrived)
        except websockets.ConnectionClosed as e:
            rcv = e.rcvd
            self.closed = f"code={rcv.code} reason={rcv.reason!r}" if rcv else f"no close frame ({e!r})"
        except Exception as e:
            self.closed = f"{type(e).__name__}: {e}"

    def _text(self, msg: dict[str, Any], now: float) -> None:
        kind = msg.get("type")
        if kind == "subscribed":
            if msg.get("errors"):
                self.errors.append(f"subscribe errors: {msg['errors']}")
            self.subscribed.set()
        elif kind == "resync":
            self.resyncs += 1
            self.last_seq = None
        elif kind == "error":
            self.errors.append(str(msg.get("error")))
        elif kind == "data" and "columns" in msg:  # columnar: one array per field
            seqs = msg["columns"].get("seq") or []
            self._frame(msg, msg["n"], seqs[0] if seqs else None, seqs[-1] if seqs else None, now)
        elif kind == "data":
            items = msg["items"]
            first = items[0]["seq"] if items else None
            last = items[-1]["seq"] if items else None
            self._frame(msg, len(items), first, last, now)

    def _arrow(self, raw: bytes, now: float) -> None:
        table = pa.ipc.open_stream(pa.py_buffer(raw), options=READ_OPTIONS).read_all()
        head = orjson.loads(table.schema.metadata[FRAME_META_KEY])
        seq = table.column("seq")
        n = table.num_rows
        self._frame(head, n, seq[0].as_py() if n else None, seq[n - 1].as_py() if n else None, now)

    def _frame(self, head: dict[str, Any], n: int, first: int | None, last: int | None, now: float) -> None:
        if head.get("replay"):
            return
        if head.get("epoch") != self.epoch:
            self.epoch = head.get("epoch")
            self.last_seq = None
        lo, hi, conflated = head["seq_from"], head["seq_to"], bool(head["conflated"])
        if not conflated and (first != lo or last != hi or n != hi - lo + 1):
            self.inner_gaps += (hi - lo + 1) - n
        if self.last_seq is not None and lo != self.last_seq + 1:
            self.gap_events += 1
            self.gap_seqs += max(0, lo - self.last_seq - 1)
        self.last_seq = hi
        self.frames.append((lo, hi, n, head["gw_ts"], now, conflated, self.returned))


async def worker_main(url: str, n: int, encoding: str, out: Path) -> None:
    """Run n clients until ``out.stop`` appears; write what they saw and this process's CPU to ``out``."""
    clients = [Client(encoding) for _ in range(n)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(url, stop)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 120)
    Path(str(out) + ".ready").write_text("1")
    window = Path(str(out) + ".window")
    while not window.exists():
        await asyncio.sleep(0.05)
    t0, t1 = (float(x) for x in window.read_text().split())
    # one timer per boundary, not a 100 Hz poll: five such workers polling stole CPU from the gateway at
    # random moments, bursts included
    await asyncio.sleep(max(t0 - time.time(), 0.0))
    cpu0 = time.process_time()
    await asyncio.sleep(max(t1 - time.time(), 0.0))
    cpu1 = time.process_time()
    await asyncio.sleep(1.0)  # frames published just before t1 still arrive
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(
        json.dumps(
            {
                "cpu": cpu1 - cpu0,
                "clients": [
                    {
                        "frames": c.frames,
                        "gap_events": c.gap_events,
                        "gap_seqs": c.gap_seqs,
                        "inner_gaps": c.inner_gaps,
                        "resyncs": c.resyncs,
                        "errors": c.errors,
                        "closed": c.closed,
                    }
                    for c in clients
                ],
            }
        )
    )


# -- the gateway's own view: callback -> written to the client's socket (Prometheus histogram) -------

WIRE_METRIC = "qmtgate_stream_callback_to_wire_seconds_bucket"


def wire_buckets(port: int) -> dict[float, float]:
    """Cumulative bucket counts of the gateway's callback-to-wire histogram."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    except httpx.HTTPError:  # a gateway swamped by its clients' CPU (50 JSON clients on 2 cores): no figure
        return {}
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(WIRE_METRIC):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile (ms) of the window's observations, linearly interpolated inside its bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    target = q * total
    lo_bound, lo_count = 0.0, 0.0
    for b, c in zip(bounds, counts, strict=True):
        if c >= target:
            if b == float("inf"):
                return lo_bound * 1000
            frac = (target - lo_count) / (c - lo_count) if c > lo_count else 1.0
            return (lo_bound + frac * (b - lo_bound)) * 1000
        lo_bound, lo_count = b, c
    return float("nan")


# -- one run ---------------------------------------------------------------------------------------


def one_run(n: int, speed: float, encoding: str, procs: int, seconds: float, warmup: float) -> dict[str, Any]:
    port = free_port()
    gw = start_gateway(port, speed)
    outs = [Path(f"/tmp/stream_bench_{port}_{i}.json") for i in range(procs)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        ready_s = wait_live(port, gw)
        url = f"ws://127.0.0.1:{port}/api/v1/ws"
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        t_conn = time.monotonic()
        for out, share in zip(outs, shares, strict=True):
            if share:
                cmd = [sys.executable, __file__, "--worker", url, str(share), encoding, str(out)]
                workers.append(subprocess.Popen(cmd))
        live = [o for o, s in zip(outs, shares, strict=True) if s]
        while not all(Path(str(o) + ".ready").exists() for o in live):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited early")
            time.sleep(0.1)
        connect_s = time.monotonic() - t_conn
        t0 = time.time() + warmup
        t1 = t0 + seconds
        for o in live:
            Path(str(o) + ".window").write_text(f"{t0} {t1}")
        time.sleep(max(0.0, t0 - time.time()))
        cpu0 = proc_cpu(gw.pid)
        wire0 = wire_buckets(port)
        time.sleep(max(0.0, t1 - time.time()))
        cpu1 = proc_cpu(gw.pid)
        wire1 = wire_buckets(port)
        for w in workers:
            w.wait(timeout=120)
        results = [json.loads(o.read_text()) for o in live]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        gw.terminate()
        try:
            gw.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gw.kill()
        for o in outs:
            for suffix in ("", ".ready", ".window"):
                Path(str(o) + suffix).unlink(missing_ok=True)
    s = summarize(n, speed, encoding, procs, seconds, t0, t1, cpu1 - cpu0, results, ready_s, connect_s)
    s["wire_p50"] = bucket_quantile(wire0, wire1, 0.50)
    s["wire_p99"] = bucket_quantile(wire0, wire1, 0.99)
    print_block(s)
    return s


def summarize(
    n: int,
    speed: float,
    encoding: str,
    procs: int,
    seconds: float,
    t0: float,
    t1: float,
    gw_cpu: float,
    results: list[dict[str, Any]],
    ready_s: float,
    connect_s: float,
) -> dict[str, Any]:
    clients = [c for r in results for c in r["clients"]]
    lat: list[float] = []
    lat_returned: list[float] = []
    by_burst: dict[int, list[float]] = {}
    updates = 0
    bursts: dict[int, tuple[float, int]] = {}
    conflated = 0
    for c in clients:
        for lo, _hi, items, gw_ts, now, conf, returned in c["frames"]:
            if not t0 <= gw_ts / 1000 <= t1:
                continue
            lat.append(now * 1000 - gw_ts)
            lat_returned.append(returned * 1000 - gw_ts)
            by_burst.setdefault(lo, []).append(now * 1000 - gw_ts)
            updates += items
            conflated += conf
            bursts[lo] = (gw_ts, items)
    order = sorted(bursts.values())
    inter = [(b[0] - a[0]) for a, b in itertools.pairwise(order)]
    per_client = [sum(f[2] for f in c["frames"] if t0 <= f[3] / 1000 <= t1) for c in clients]
    return {
        "clients": n,
        "speed": speed,
        "encoding": encoding,
        "procs": procs,
        "seconds": seconds,
        "ready_s": ready_s,
        "connect_s": connect_s,
        "bursts": len(bursts),
        "burst_size": sorted(b[1] for b in bursts.values())[len(bursts) // 2] if bursts else 0,
        "inter_p50": pct(inter, 50),
        "inter_expected": BURST_MARKET_SECONDS / speed * 1000,
        "updates_min": min(per_client),
        "updates_max": max(per_client),
        "total_updates": updates,
        "gap_events": sum(c["gap_events"] for c in clients),
        "gap_seqs": sum(c["gap_seqs"] for c in clients),
        "inner_gaps": sum(c["inner_gaps"] for c in clients),
        "conflated": conflated,
        "disconnects": sum(1 for c in clients if c["closed"]),
        "close_reasons": sorted({c["closed"] for c in clients if c["closed"]}),
        "errors": sorted({e for c in clients for e in c["errors"]}),
        "resyncs": sum(c["resyncs"] for c in clients),
        "lat_p50": pct(lat, 50),
        "lat_p90": pct(lat, 90),
        "lat_p99": pct(lat, 99),
        "lat_max": max(lat) if lat else float("nan"),
        "slowest_bursts": [  # (first, median, last client's receipt) of the 3 bursts with the latest last
            (round(min(v), 1), round(pct(v, 50), 1), round(max(v), 1))
            for v in sorted(by_burst.values(), key=max)[-3:]
        ],
        "lat_returned_p50": pct(lat_returned, 50),
        "lat_returned_p99": pct(lat_returned, 99),
        "gw_cpu": gw_cpu,
        "client_cpu": sum(r["cpu"] for r in results),
        "gw_cpu_per_tick_us": gw_cpu / updates * 1e6 if updates else float("nan"),
    }


def print_block(s: dict[str, Any]) -> None:
    print(
        f"\n=== {s['clients']} clients in {s['procs']} processes, {s['speed']:g}x, {s['encoding']}, "
        f"{s['seconds']:g} s window ==="
    )
    print(f"  gateway ready in {s['ready_s']:.1f} s; clients subscribed in {s['connect_s']:.1f} s")
    print(
        f"  bursts                 {s['bursts']} (median {s['burst_size']} codes), every "
        f"{s['inter_p50']:.0f} ms (expected {s['inter_expected']:.0f})"
    )
    print(
        f"  updates per client     {s['updates_min']:,}..{s['updates_max']:,} (total {s['total_updates']:,})"
    )
    print(
        f"  seq gaps               {s['gap_events']} events, {s['gap_seqs']} missing seqs; "
        f"inside frames {s['inner_gaps']}; conflated frames {s['conflated']}"
    )
    print(f"  disconnects            {s['disconnects']}  resyncs {s['resyncs']}")
    for r in s["close_reasons"] + s["errors"]:
        print(f"    {r}")
    print(
        f"  latency callback->recv p50 {s['lat_p50']:.1f} ms  p90 {s['lat_p90']:.1f}  p99 {s['lat_p99']:.1f}  "
        f"max {s['lat_max']:.1f} ms  (message complete in the client)"
    )
    print(f"  slowest bursts         (first, median, last client) ms: {s['slowest_bursts']}")
    print(
        f"  (recv returned)        p50 {s['lat_returned_p50']:.1f} ms  p99 {s['lat_returned_p99']:.1f} ms  (after"
        " the decodes of the process's other clients)"
    )
    print(
        f"  gateway callback->wire p50 {s['wire_p50']:.1f} ms  p99 {s['wire_p99']:.1f} ms  (its histogram: the"
        " frame written to every client's socket)"
    )
    wall = s["seconds"]
    print(
        f"  gateway CPU            {s['gw_cpu']:.1f} s ({s['gw_cpu'] / wall:.0%} of a core) = "
        f"{s['gw_cpu_per_tick_us']:.2f} us per delivered tick"
    )
    print(f"  client processes CPU   {s['client_cpu']:.1f} s ({s['client_cpu'] / wall:.0%} of a core)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, n, encoding, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
        asyncio.run(worker_main(url, n, encoding, out))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument(
        "--encoding",
        choices=["json", "columns", "arrow", "arrow-lz4", "arrow-none"],
        default="arrow",
        help="data frames: JSON rows, columnar JSON, or Arrow with zstd (default), lz4 or no compression",
    )
    ap.add_argument("--src", type=Path, default=None, help="run the gateway from this qmtgate src tree")
    ap.add_argument("--procs", type=int, default=5, help="client processes (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="window (default 60 s at 1x, 30 s else)")
    ap.add_argument(
        "--warmup", type=float, default=None, help="before the window (default 15 s at 1x, 5 s else)"
    )
    ap.add_argument("--runs", default=None, help='several runs, e.g. "50x1:arrow,50x1:json,50x10:arrow"')
    ap.add_argument("--json", default=None, help="write the summaries to this JSON file")
    a = ap.parse_args()
    global SRC
    SRC = a.src.resolve() if a.src else None
    plan = [(a.clients, a.speed, a.encoding)]
    if a.runs:
        plan = []
        for r in a.runs.split(","):
            spec, _, enc = r.partition(":")
            c, s = spec.split("x")
            plan.append((int(c), float(s), enc or a.encoding))
    out = []
    for n, speed, enc in plan:
        seconds = a.seconds if a.seconds is not None else (60.0 if speed <= 1 else 30.0)
        warmup = a.warmup if a.warmup is not None else (15.0 if speed <= 1 else 5.0)
        out.append(one_run(n, speed, enc, min(a.procs, n), seconds, warmup))
    if len(out) > 1:
        print("\n=== ratios (vs the first run) ===")
        base = out[0]
        for s in out[1:]:
            print(
                f"  {s['clients']}x{s['speed']:g}:{s['encoding']} / {base['clients']}x{base['speed']:g}:"
                f"{base['encoding']}: p99 {s['lat_p99'] / base['lat_p99']:.2f}x, "
                f"CPU per tick {s['gw_cpu_per_tick_us'] / base['gw_cpu_per_tick_us']:.2f}x, "
                f"client CPU {s['client_cpu'] / base['client_cpu']:.2f}x"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
