"""Cost isolation (issue #17 item 5): does one key running the heaviest requests it is allowed stall others?

Run: ``PYTHONPATH=src .venv/bin/python bench/cost_isolation.py`` (add ``--unlimited`` for the A/B run with
the cost limiter and the row limit opened up, as before the fix).

What it does:

* starts ``qmtgate serve --source sim --sim-clock replay --sim-speed S`` with auth on (a key file with a
  ``read`` key for the heavy client and a ``stream`` key for the witness) on a free loopback port, and
  waits for the quote cache to be live;
* a **witness** process subscribes to the whole market (SH, SZ, BJ ticks, JSON frames) on ``/api/v1/ws``
  and records, per data frame, receipt wall time minus the frame's ``gw_ts`` (when the gateway's source
  callback received the burst; same host clock); a **prober** in that process asks ``/api/v1/health/live``
  every 100 ms and records the round trip;
* phase 1 (``--window`` s): nothing else runs -> witness p50/p99/max and prober p50/p99 *without* load;
* phase 2 (``--window`` s): the heavy client (``--workers`` concurrent loops, one ``read`` key) repeats the
  heaviest requests the gateway allows: 1m K-lines since 1990 for one code (the 142 MB request of the
  issue: expected refused, ``too_large``), then the largest allowed page of 1m bars for one code
  as JSON (``count`` = ``limits.max_text_rows``), a whole-market snapshot as JSON (``markets=SH,SZ,BJ``), and
  ``POST /api/v1/xt/full_tick {"codes": ["SH","SZ","BJ"]}``. A 429 is waited out for its ``Retry-After``
  (at most 1 s at a time), as a client library would -> the same figures *with* load, plus what the
  heavy client got (answers by status, bytes).
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
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parents[1]
SIM_START = "20261120100000"
SUBSCRIBE = {"op": "subscribe", "period": "tick", "markets": ["SH", "SZ", "BJ"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(path: Path) -> tuple[str, str]:
    sys.path.insert(0, str(ROOT / "src"))
    from qmtgate.security.keys import generate_key, write_key_file

    heavy = generate_key("heavy", ["read"])
    witness = generate_key("witness", ["admin"])  # stream, and /metrics for the loop lag and GC pauses
    write_key_file(path, [heavy.record, witness.record])
    return heavy.token, witness.token


def start_gateway(
    port: int, speed: float, keys: Path, unlimited: bool, src: Path | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QMTGATE_LOG_LEVEL": "warning", "PYTHONPATH": str(src or ROOT / "src")}
    if src is not None:
        pass  # another tree (the code before the fix): its own settings and defaults
    elif unlimited:  # as before the fix: no cost bucket to speak of, the old row limit
        env["QMTGATE_RATE_LIMIT__COST_RATE"] = "1000000000"
        env["QMTGATE_RATE_LIMIT__COST_BURST"] = "1000000000"
        env["QMTGATE_LIMITS__MAX_KLINE_ROWS"] = "2000000"
        env["QMTGATE_LIMITS__MAX_TEXT_ROWS"] = "2000000"
    env["QMTGATE_RATE_LIMIT__PER_KEY_RATE"] = "1000"  # the request-rate limit is not what is measured
    env["QMTGATE_RATE_LIMIT__PER_KEY_BURST"] = "1000"
    cmd = [
        sys.executable,
        "-c",
        "from qmtgate.cli import app; app()",
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
        "--keys-file",
        str(keys),
        "--log-level",
        "warning",
    ]
    log = open(f"/tmp/cost_isolation_gateway_{port}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_live(url: str, token: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=5, headers={"X-API-Key": token}) as client:
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}")
            try:
                if client.get("/api/v1/health/ready").json().get("quotes", {}).get("live"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.25)
    raise RuntimeError("the gateway's quote feed did not become live")


# -- the witness process ------------------------------------------------------------------------------


async def witness_main(url: str, token: str, out: Path, seconds: float) -> None:
    """Whole-market WebSocket subscriber + liveness prober; writes (kind, wall time, ms) lines to out."""
    samples: list[tuple[str, float, float]] = []
    stop = time.time() + seconds

    async def stream() -> None:
        ws_url = url.replace("http://", "ws://") + "/api/v1/ws"
        async with websockets.connect(
            ws_url, additional_headers={"X-API-Key": token}, max_size=None, ping_interval=None
        ) as ws:
            await ws.recv()  # hello
            await ws.send(json.dumps(SUBSCRIBE))
            while time.time() < stop:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue
                now = time.time()
                msg = orjson.loads(raw)
                if msg.get("type") == "data" and not msg.get("replay") and "gw_ts" in msg:
                    samples.append(("frame", now, now * 1000 - msg["gw_ts"]))

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.time() < stop:
                t0 = time.perf_counter()
                await client.get("/api/v1/health/live")
                samples.append(("live", time.time(), (time.perf_counter() - t0) * 1000))
                await asyncio.sleep(0.1)

    await asyncio.gather(stream(), probe())
    out.write_text("\n".join(f"{k} {t:.3f} {ms:.2f}" for k, t, ms in samples))


# -- the heavy client -----------------------------------------------------------------------------------


async def heavy(url: str, token: str, stop_at: float, workers: int, max_rows: int) -> dict[str, Any]:
    stats: dict[str, Any] = {"status": collections.Counter(), "bytes": 0, "refused_142mb": 0}
    requests = [
        ("GET", "/api/v1/klines/600000.SH", {"period": "1m", "start": "19900101"}, None),
        ("GET", "/api/v1/klines/600000.SH", {"period": "1m", "count": max_rows}, None),
        ("GET", "/api/v1/snapshots", {"markets": "SH,SZ,BJ"}, None),
        ("POST", "/api/v1/xt/full_tick", None, {"codes": ["SH", "SZ", "BJ"]}),
    ]

    async def loop(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120, headers={"X-API-Key": token}) as client:
            n = i
            while time.time() < stop_at:
                method, path, params, body = requests[n % len(requests)]
                n += 1
                try:
                    answer = await client.request(method, path, params=params, json=body)
                except httpx.HTTPError as e:
                    stats["status"][type(e).__name__] += 1
                    continue
                stats["status"][answer.status_code] += 1
                stats["bytes"] += len(answer.content)
                if params and params.get("start") == "19900101" and answer.status_code == 422:
                    stats["refused_142mb"] += 1
                if answer.status_code == 429:
                    await asyncio.sleep(min(1.0, float(answer.headers.get("Retry-After", "1"))))

    await asyncio.gather(*(loop(i) for i in range(workers)))
    return stats


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(samples: list[tuple[str, float, float]], t0: float, t1: float) -> dict[str, float]:
    frames = [ms for k, t, ms in samples if k == "frame" and t0 <= t < t1]
    live = [ms for k, t, ms in samples if k == "live" and t0 <= t < t1]
    return {
        "frames": len(frames),
        "frame_p50": percentile(frames, 0.5),
        "frame_p99": percentile(frames, 0.99),
        "frame_max": max(frames, default=float("nan")),
        "live_p50": percentile(live, 0.5),
        "live_p99": percentile(live, 0.99),
        "live_max": max(live, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=float, default=5.0, help="simulated seconds per wall second")
    parser.add_argument("--window", type=float, default=40.0, help="seconds per phase")
    parser.add_argument("--workers", type=int, default=4, help="concurrent heavy loops (one key)")
    parser.add_argument("--unlimited", action="store_true", help="A/B: cost limiter and row limit opened up")
    parser.add_argument(
        "--gateway-src", type=Path, help="run the gateway from this src/ (e.g. the code before the fix)"
    )
    parser.add_argument(
        "--witness", nargs=4, metavar=("URL", "TOKEN", "OUT", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.witness:
        url, token, out, seconds = args.witness
        asyncio.run(witness_main(url, token, Path(out), float(seconds)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="cost_isolation_"))
    heavy_token, witness_token = make_keys(tmp / "keys.json")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = start_gateway(port, args.speed, tmp / "keys.json", args.unlimited, args.gateway_src)
    try:
        wait_live(url, heavy_token, gateway)
        caps = httpx.get(f"{url}/api/v1/capabilities", headers={"X-API-Key": heavy_token}).json()
        max_rows = min(1_000_000, int(caps.get("max_text_rows") or caps.get("max_kline_rows") or 1_000_000))
        out = tmp / "witness.txt"
        settle = 15.0  # the witness's first frames (seeds, catching up) are not measured
        total = settle + 2 * args.window + 2
        witness = subprocess.Popen(
            [sys.executable, __file__, "--witness", url, witness_token, str(out), str(total)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        time.sleep(settle)
        quiet0 = time.time()
        time.sleep(args.window)
        load0 = time.time()
        stats = asyncio.run(heavy(url, heavy_token, load0 + args.window, args.workers, max_rows))
        load1 = time.time()
        witness.wait(timeout=total + 60)
        samples = []
        for line in out.read_text().splitlines():
            kind, t, ms = line.split()
            samples.append((kind, float(t), float(ms)))
        quiet = summarize(samples, quiet0, load0)
        loaded = summarize(samples, load0, load1)
        mode = (
            "UNLIMITED (cost limiter and row limit opened up)" if args.unlimited else "limits on (defaults)"
        )
        if args.gateway_src:
            mode = f"gateway from {args.gateway_src}"
        print(
            f"cost isolation, {mode}; sim speed {args.speed}x, {args.workers} heavy loops, {args.window:g} s/phase"
        )
        print(f"largest JSON K-line page {max_rows:,} rows")
        for name, s in (("without load", quiet), ("with heavy load", loaded)):
            print(
                f"  {name:16s} witness frames {s['frames']:4d}: p50 {s['frame_p50']:7.1f} ms  p99 "
                f"{s['frame_p99']:7.1f} ms  max {s['frame_max']:7.1f} ms | liveness p50 {s['live_p50']:6.1f} ms"
                f"  p99 {s['live_p99']:7.1f} ms  max {s['live_max']:7.1f} ms"
            )
        metrics = httpx.get(f"{url}/metrics", headers={"X-API-Key": witness_token}).text
        for line in metrics.splitlines():
            if line.startswith(("qmtgate_gc_pause_seconds_sum", "qmtgate_gc_pause_seconds_count")) or (
                (line.startswith("qmtgate_event_loop_lag_seconds_bucket") and 'le="0.1"' in line)
                or line.startswith(
                    ("qmtgate_event_loop_lag_seconds_count", 'qmtgate_event_loop_lag_seconds_bucket{le="0.5"')
                )
            ):
                print("  gateway", line)
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(stats["status"].items(), key=str))
        print(
            f"  heavy client: {statuses}; {stats['bytes'] / 1e6:,.0f} MB received; "
            f"1m-since-1990 refused {stats['refused_142mb']} times"
        )
    finally:
        gateway.terminate()
        try:
            gateway.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gateway.kill()


if __name__ == "__main__":
    main()
