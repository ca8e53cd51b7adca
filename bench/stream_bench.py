"""Streaming fan-out benchmark (issue 4): N whole-market tick clients on ``/api/v1/ws``.

Run: ``.venv/bin/python bench/stream_bench.py --clients 50 --speed 1 --seconds 60``
(one run = ~15 s gateway start + the measured window + ~5 s teardown). It prints one summary block per
run; ``--runs "50x1,50x10,10x10"`` does several runs in a row and prints the ratios between them.

What it does, per run:

* starts ``qmtgate serve --source sim --sim-clock replay --sim-start 20261120100000 --sim-speed S`` on a
  free loopback port and polls ``/api/v1/health/ready`` until ``quotes.live``;
* connects N clients in this one asyncio process (``websockets`` asyncio client, ``max_size=None``,
  client keepalive pings off so a busy client loop cannot disconnect itself), each subscribing to tick
  for SH+SZ+BJ (the whole market), plus one *probe* client in a separate process (see below);
* for each client: frames, updates, seq gaps (missing seqs between consecutive live frames, and inside
  non-conflated frames), conflated frames, disconnects (close code + reason);
* gateway CPU = utime+stime of the gateway process (and any children) from /proc over the window;
  CPU per delivered tick = gateway CPU seconds / updates delivered to all N clients in the window;
* client CPU = ``time.process_time()`` of this process over the window (the N clients' receive, JSON
  parse and checks) - on a 2-core box it competes with the gateway, so it is reported next to it.

Latency. Frames carry no publish time, so latency is measured with what the public protocol gives:

* ``burst_arrival(seq_from)`` = the earliest receipt of that frame over all clients *and the probe*.
  The probe runs in its own process and does nothing but receive and record, so it is not queued behind
  the N clients' JSON parsing: its receipt is the best available stand-in for "the gateway sent the
  burst". **fan-out latency** = receipt - burst_arrival, over every (client, live frame): how far behind
  the first receiver each client gets the same burst (server send order + client-side queueing).
* **source->probe**: the replay clock maps market time to wall time linearly
  (wall = t0 + ts / speed), so probe_receipt - ts/speed = t0 + delay(burst). t0 is unknown; the minimum
  over the window is subtracted, which gives the delay of each burst *relative to the least-delayed
  one* (generation + hub + send jitter; an absolute floor cannot be had from the protocol alone).
* **inter-burst** = gaps between consecutive burst arrivals at the probe (expected 3 s / speed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
QMTGATE = ROOT / ".venv" / "bin" / "qmtgate"
SIM_START = "20261120100000"
BURST_MARKET_SECONDS = 3.0
SUBSCRIBE = {"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


# -- one client ------------------------------------------------------------------------------------


class Client:
    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.frames = 0  # live data frames
        self.replay_frames = 0
        self.updates = 0  # live items
        self.updates_window = 0  # live items received inside the measured window
        self.conflated = 0
        self.gap_events = 0
        self.gap_seqs = 0
        self.inner_gaps = 0  # non-contiguous items inside a non-conflated frame
        self.last_seq: int | None = None
        self.epoch: str | None = None
        self.resyncs = 0
        self.errors: list[str] = []
        self.closed: str | None = None  # set when the server closed / the connection failed early
        self.receipts: dict[int, float] = {}  # seq_from -> wall receipt time (live frames)
        self.subscribed = asyncio.Event()

    async def run(self, url: str, stop_at: float, compression: str | None, window_start: list[float]) -> None:
        try:
            async with connect(
                url,
                max_size=None,
                ping_interval=None,
                compression=compression,
                open_timeout=60,
                close_timeout=5,
            ) as ws:
                self.extensions = ws.response.headers.get("sec-websocket-extensions", "")
                hello = orjson.loads(await ws.recv())
                self.epoch = hello.get("epoch")
                await ws.send(json.dumps(SUBSCRIBE))
                while True:
                    timeout = stop_at - time.time()
                    if timeout <= 0:
                        break
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout)
                    except TimeoutError:
                        break
                    now = time.time()
                    msg = orjson.loads(raw)
                    self._handle(msg, now, window_start[0])
        except websockets.ConnectionClosed as e:
            rcv = e.rcvd
            self.closed = f"closed at {time.time() - stop_at:+.1f}s vs end: " + (
                f"code={rcv.code} reason={rcv.reason!r}" if rcv else f"no close frame ({e!r})"
            )
        except Exception as e:
            self.closed = f"{type(e).__name__}: {e}"

    def _handle(self, msg: dict[str, Any], now: float, window_start: float) -> None:
        kind = msg.get("type")
        if kind == "subscribed":
            if msg.get("errors"):
                self.errors.append(f"subscribe errors: {msg['errors']}")
            self.subscribed.set()
            return
        if kind == "resync":
            self.resyncs += 1
            self.epoch = msg.get("epoch")
            self.last_seq = None
            return
        if kind == "error":
            self.errors.append(str(msg.get("error")))
            return
        if kind != "data":
            return
        if msg.get("replay"):
            self.replay_frames += 1
            return
        if msg.get("epoch") != self.epoch:
            self.epoch = msg.get("epoch")
            self.last_seq = None
        lo, hi, items = msg["seq_from"], msg["seq_to"], msg["items"]
        self.frames += 1
        self.updates += len(items)
        if now >= window_start:
            self.updates_window += len(items)
        self.receipts[lo] = now
        if msg.get("conflated"):
            self.conflated += 1
        elif items and (items[0]["seq"] != lo or items[-1]["seq"] != hi or len(items) != hi - lo + 1):
            self.inner_gaps += (hi - lo + 1) - len(items)
        if self.last_seq is not None and lo != self.last_seq + 1:
            self.gap_events += 1
            self.gap_seqs += max(0, lo - self.last_seq - 1)
        self.last_seq = hi


# -- the probe: a separate process that only receives and records ----------------------------------


# -- one run ---------------------------------------------------------------------------------------


def start_gateway(port: int, speed: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QMTGATE_LOG_LEVEL": "warning"}
    cmd = [
        str(QMTGATE),
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


async def run_clients(
    url: str,
    n: int,
    seconds: float,
    compression: str | None,
    gw_pid: int,
    probe_out: str,
    speed: float,
    warmup: float,
) -> dict[str, Any]:
    # settle time: the connection + seed frames are outside the window
    # plus a warm-up: right after "live" the replay feed still works off the backlog of bursts whose
    # market time passed during start-up (they arrive faster than 3 s / speed until it catches up)
    settle = warmup
    clients = [Client(i) for i in range(n)]
    window = [float("inf")]
    stop_at = time.time() + 60 + settle + seconds  # far deadline; the tasks are cancelled at the end
    # the probe connects first, so it is first in the hub's send order: its receipt ~ the publish time
    probe = subprocess.Popen([sys.executable, __file__, "--probe", url, probe_out, "0"])
    t_probe = time.time()
    while not Path(probe_out + ".ready").exists() and time.time() - t_probe < 60:
        await asyncio.sleep(0.05)
    stop_ref = [stop_at]

    async def one(c: Client) -> None:
        await c.run(url, stop_ref[0], compression, window)

    # the stop time is read when each run() starts; start them all with a shared deadline
    subscribed_by = time.time()
    tasks = [asyncio.create_task(one(c)) for c in clients]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 60)
    subscribed_by = time.time() - subscribed_by
    await asyncio.sleep(settle)
    t_start = time.time()
    window[0] = t_start
    cpu_gw0, cpu_cl0 = proc_cpu(gw_pid), time.process_time()
    t_end = t_start + seconds
    # tell the probe when to stop (it polls a file), and wait out the window
    Path(probe_out + ".stop").write_text(str(t_end + 1.0))
    await asyncio.sleep(max(0.0, t_end - time.time()))
    cpu_gw1, cpu_cl1 = proc_cpu(gw_pid), time.process_time()
    wall = time.time() - t_start
    # stop the clients: they exit at their deadline, which we now pull in
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    probe.wait(timeout=30)
    return {
        "clients": clients,
        "t_start": t_start,
        "t_end": t_end,
        "wall": wall,
        "gw_cpu": cpu_gw1 - cpu_gw0,
        "client_cpu": cpu_cl1 - cpu_cl0,
        "connect_s": subscribed_by,
    }


def summarize(
    n: int,
    speed: float,
    seconds: float,
    compression: str | None,
    res: dict[str, Any],
    probe: dict[str, Any],
    ready_s: float,
) -> dict[str, Any]:
    clients: list[Client] = res["clients"]
    t_start, t_end = res["t_start"], res["t_end"]
    # burst arrivals: earliest receipt per seq_from over all clients and the probe
    arrival: dict[int, float] = {}
    for c in clients:
        for lo, t in c.receipts.items():
            arrival[lo] = min(arrival.get(lo, t), t)
    prows = [r for r in probe["rows"] if t_start <= r[2] <= t_end]
    for lo, _hi, t, *_ in probe["rows"]:
        arrival[lo] = min(arrival.get(lo, t), t)
    fan = [
        (t - arrival[lo]) * 1000
        for c in clients
        for lo, t in c.receipts.items()
        if t_start <= arrival[lo] <= t_end
    ]
    # probe: inter-burst and source->probe (relative)
    inter = [(b[2] - a[2]) * 1000 for a, b in itertools.pairwise(prows)]
    dts = [(b[3] - a[3]) / 1000 for a, b in itertools.pairwise(prows) if a[3] and b[3]]
    market_s = (prows[-1][3] - prows[0][3]) / 1000 if len(prows) > 1 else float("nan")
    rel = [r[2] - r[3] / 1000 / speed for r in prows if r[3]]
    src = [(x - min(rel)) * 1000 for x in rel] if rel else []
    probe_first = sum(1 for r in prows if arrival.get(r[0]) == r[2])
    bursts = len(prows)
    upd = [c.updates_window for c in clients]
    total_updates = sum(upd)
    out = {
        "clients": n,
        "speed": speed,
        "seconds": seconds,
        "compression": compression or "none",
        "extensions": getattr(clients[0], "extensions", "?") if clients else "?",
        "ready_s": ready_s,
        "connect_s": res["connect_s"],
        "bursts": bursts,
        "burst_size": statistics.median([r[4] for r in prows]) if prows else 0,
        "updates_per_client_min": min(upd) if upd else 0,
        "updates_per_client_max": max(upd) if upd else 0,
        "total_updates": total_updates,
        "frames_min": min(c.frames for c in clients),
        "frames_max": max(c.frames for c in clients),
        "gap_events": sum(c.gap_events for c in clients),
        "gap_seqs": sum(c.gap_seqs for c in clients),
        "inner_gaps": sum(c.inner_gaps for c in clients),
        "conflated": sum(c.conflated for c in clients),
        "clients_conflated": sum(1 for c in clients if c.conflated),
        "probe_conflated": sum(1 for r in probe["rows"] if r[5]),
        "disconnects": sum(1 for c in clients if c.closed),
        "resyncs": sum(c.resyncs for c in clients),
        "close_reasons": sorted({c.closed for c in clients if c.closed}),
        "errors": sorted({e for c in clients for e in c.errors}),
        "probe_closed": probe.get("closed"),
        "fan_p50": pct(fan, 50),
        "fan_p99": pct(fan, 99),
        "fan_max": max(fan) if fan else float("nan"),
        "probe_first_share": probe_first / bursts if bursts else float("nan"),
        "src_p50": pct(src, 50),
        "src_p99": pct(src, 99),
        "src_max": max(src) if src else float("nan"),
        "dts_p50": pct(dts, 50),
        "dts_max": max(dts) if dts else float("nan"),
        "market_rate": market_s / ((prows[-1][2] - prows[0][2]) if len(prows) > 1 else float("nan")),
        "inter_expected": BURST_MARKET_SECONDS / speed * 1000,
        "inter_p50": pct(inter, 50),
        "inter_min": min(inter) if inter else float("nan"),
        "inter_max": max(inter) if inter else float("nan"),
        "gw_cpu": res["gw_cpu"],
        "client_cpu": res["client_cpu"],
        "wall": res["wall"],
        "gw_cpu_per_tick_us": res["gw_cpu"] / total_updates * 1e6 if total_updates else float("nan"),
        "client_cpu_per_tick_us": res["client_cpu"] / total_updates * 1e6 if total_updates else float("nan"),
    }
    return out


def print_block(s: dict[str, Any]) -> None:
    print(
        f"\n=== {s['clients']} clients, speed {s['speed']:g}x, {s['seconds']:g} s window, "
        f"compression={s['compression']} (negotiated: {s['extensions'] or 'none'}) ==="
    )
    print(f"  gateway ready in {s['ready_s']:.1f} s; all clients subscribed in {s['connect_s']:.1f} s")
    print(f"  bursts seen by probe   {s['bursts']} (median {s['burst_size']:.0f} codes/burst)")
    print(f"  frames per client      {s['frames_min']}..{s['frames_max']}")
    print(
        f"  updates per client     {s['updates_per_client_min']}..{s['updates_per_client_max']}"
        f"  (total {s['total_updates']:,})"
    )
    print(
        f"  seq gaps               {s['gap_events']} events, {s['gap_seqs']} missing seqs; "
        f"inside frames {s['inner_gaps']}"
    )
    print(
        f"  conflated frames       {s['conflated']} ({s['clients_conflated']} clients; probe {s['probe_conflated']})"
    )
    print(f"  disconnects            {s['disconnects']}  resyncs {s['resyncs']}")
    for r in s["close_reasons"]:
        print(f"    close: {r}")
    for e in s["errors"]:
        print(f"    error: {e}")
    if s["probe_closed"]:
        print(f"    probe: {s['probe_closed']}")
    print(
        f"  fan-out latency        p50 {s['fan_p50']:.1f} ms  p99 {s['fan_p99']:.1f} ms  max {s['fan_max']:.1f} ms"
        f"  (probe first in {s['probe_first_share']:.0%} of bursts)"
    )
    print(
        f"  source->probe (rel.)   p50 {s['src_p50']:.1f} ms  p99 {s['src_p99']:.1f} ms  max {s['src_max']:.1f} ms"
    )
    print(
        f"  inter-burst at probe   median {s['inter_p50']:.0f} ms (expected {s['inter_expected']:.0f}), "
        f"min {s['inter_min']:.0f}, max {s['inter_max']:.0f}"
    )
    print(
        f"  market time per frame  median {s['dts_p50']:.1f} s, max {s['dts_max']:.1f} s; market time advanced "
        f"{s['market_rate']:.2f} s per wall s (speed {s['speed']:g})"
    )
    print(
        f"  gateway CPU            {s['gw_cpu']:.1f} s over {s['wall']:.1f} s wall "
        f"({s['gw_cpu'] / s['wall']:.0%} of a core) = {s['gw_cpu_per_tick_us']:.2f} us per delivered tick"
    )
    print(
        f"  client-process CPU     {s['client_cpu']:.1f} s ({s['client_cpu'] / s['wall']:.0%} of a core) "
        f"= {s['client_cpu_per_tick_us']:.2f} us per tick"
    )


def one_run(n: int, speed: float, seconds: float, compression: str | None, warmup: float) -> dict[str, Any]:
    port = free_port()
    proc = start_gateway(port, speed)
    probe_out = f"/tmp/stream_bench_probe_{port}.json"
    try:
        ready_s = wait_live(port, proc)
        url = f"ws://127.0.0.1:{port}/api/v1/ws"
        res = asyncio.run(run_clients(url, n, seconds, compression, proc.pid, probe_out, speed, warmup))
        probe = json.loads(Path(probe_out).read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        for p in (probe_out, probe_out + ".stop", probe_out + ".ready"):
            Path(p).unlink(missing_ok=True)
    s = summarize(n, speed, seconds, compression, res, probe, ready_s)
    print_block(s)
    return s


def probe_entry(url: str, out: str) -> None:
    # wait for the main process to publish the window's end, then run until then
    async def main() -> None:
        stop = Path(out + ".stop")
        task_deadline = [time.time() + 300]

        async def watcher() -> None:
            while not stop.exists():
                await asyncio.sleep(0.1)
            task_deadline[0] = float(stop.read_text())

        w = asyncio.create_task(watcher())
        # run with a far deadline, re-checking it through a small wrapper
        rows_task = asyncio.create_task(_probe_until(url, out, task_deadline))
        await rows_task
        w.cancel()

    asyncio.run(main())


async def _probe_until(url: str, out: str, deadline: list[float]) -> None:
    rows = []
    closed = None
    try:
        async with connect(url, max_size=None, ping_interval=None, open_timeout=60) as ws:
            await ws.recv()
            await ws.send(json.dumps(SUBSCRIBE))
            Path(out + ".ready").write_text("1")
            while time.time() < deadline[0]:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                msg = orjson.loads(raw)
                if msg.get("type") == "data" and not msg.get("replay"):
                    items = msg["items"]
                    ts = max((i.get("ts") or 0) for i in items) if items else 0
                    rows.append([msg["seq_from"], msg["seq_to"], now, ts, len(items), bool(msg["conflated"])])
    except Exception as e:
        closed = f"{type(e).__name__}: {e}"
    Path(out).write_text(json.dumps({"rows": rows, "closed": closed}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        probe_entry(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument(
        "--seconds", type=float, default=None, help="measured window (default 60 s at 1x, 30 s else)"
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds after subscribing before the window (default 20 s at 1x, 5 s else)",
    )
    ap.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="client offer; deflate is the websockets client's default",
    )
    ap.add_argument("--runs", default=None, help='several runs, e.g. "50x1,50x10,10x10" (clients x speed)')
    ap.add_argument("--json", default=None, help="write the summaries to this JSON file")
    a = ap.parse_args()
    comp = None if a.compression == "none" else "deflate"
    plan = [(a.clients, a.speed)]
    if a.runs:
        plan = [(int(c), float(s)) for c, s in (r.split("x") for r in a.runs.split(","))]
    out = []
    for n, speed in plan:
        seconds = a.seconds if a.seconds is not None else (60.0 if speed <= 1 else 30.0)
        warmup = a.warmup if a.warmup is not None else (20.0 if speed <= 1 else 5.0)
        out.append(one_run(n, speed, seconds, comp, warmup))
    if len(out) > 1:
        print("\n=== ratios (vs the first run) ===")
        base = out[0]
        for s in out[1:]:
            print(
                f"  {s['clients']}x{s['speed']:g} / {base['clients']}x{base['speed']:g}: "
                f"gateway CPU/s {s['gw_cpu'] / s['wall'] / (base['gw_cpu'] / base['wall']):.2f}x, "
                f"CPU per tick {s['gw_cpu_per_tick_us'] / base['gw_cpu_per_tick_us']:.2f}x, "
                f"fan-out p99 {s['fan_p99'] / base['fan_p99']:.2f}x, "
                f"client CPU/s {s['client_cpu'] / s['wall'] / (base['client_cpu'] / base['wall']):.2f}x"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
