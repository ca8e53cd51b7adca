"""REST API benchmark (issue 3): Arrow vs JSON for bulk K-lines, whole-market snapshots, concurrency.

Run: ``.venv/bin/python bench/rest_bench.py`` (about a minute; the first whole-market generation of the
simulated market costs ~10-15 s of CPU). It prints the figures and rewrites the "REST API (issue 3)"
section of bench/RESULTS.md, leaving other sections alone.

1. **200 codes x 240 daily bars into a client DataFrame**, against ``qmtgate serve --source sim`` started
   as a separate process (real uvicorn on loopback), with httpx:
   JSON path = the normalized JSON records route (what published bridges serve) -> ``pd.DataFrame(records)``;
   Arrow path = the same route with ``Accept: application/vnd.apache.arrow.stream`` -> ``read_all().to_pandas()``.
   Both warm (history cached, as a repeated read is); the cold first read is reported too.
2. **Whole-market snapshot** (all A-shares, sector 沪深A股) server-side time, from the ``Server-Timing``
   header (request received -> response head sent, encoding included), JSON and Arrow.
3. **8 concurrent snapshot requests** for different code lists against a source whose ``get_full_tick``
   takes 100 ms (quote cache off, so every request reaches the source); the gateway over the fake xtdata
   runs in its own process (tests/api/fake_server.py).
4. **Liveness while a 5 s history call is in flight** on the one xtdata thread (and snapshots from the
   quote cache meanwhile), same setup.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.ipc as ipc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake xtdata server with per-call latencies lives with the tests

from api.support import spawn_fake_server  # noqa: E402

ARROW = "application/vnd.apache.arrow.stream"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## REST API (issue 3)"
REPEATS = 9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(match.group(1)) if match else float("nan")


def wait_live(client: httpx.Client, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = client.get("/api/v1/health/ready").json()
            if body.get("quotes", {}).get("live"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the gateway's quote cache did not become live")


# -- 1 and 2: the simulated gateway in its own process ---------------------------------------------


def bench_sim() -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "QMTGATE_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "qmtgate.cli", "serve", "--source", "sim", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            started = time.monotonic()
            wait_live(client)
            startup = time.monotonic() - started
            return {"startup_s": startup, **bench_klines(client), **bench_snapshot(client)}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def bench_klines(client: httpx.Client) -> dict[str, Any]:
    members = client.get("/api/v1/sectors/沪深A股/members").json()["data"]
    codes = ",".join(members[:200])
    params = {"codes": codes, "period": "1d", "count": 240}

    def json_path() -> tuple[float, pd.DataFrame, httpx.Response]:
        began = time.perf_counter()
        response = client.get("/api/v1/klines", params=params)
        response.raise_for_status()
        frame = pd.DataFrame(response.json()["data"])
        return time.perf_counter() - began, frame, response

    def arrow_path() -> tuple[float, pd.DataFrame, httpx.Response]:
        began = time.perf_counter()
        response = client.get("/api/v1/klines", params=params, headers={"Accept": ARROW})
        response.raise_for_status()
        frame = ipc.open_stream(io.BytesIO(response.content)).read_all().to_pandas()
        return time.perf_counter() - began, frame, response

    cold_seconds, cold_frame, cold_response = arrow_path()  # downloads + reads the source once
    json_path()  # warm the JSON encoder too
    json_runs = [json_path() for _ in range(REPEATS)]
    arrow_runs = [arrow_path() for _ in range(REPEATS)]
    json_frame, arrow_frame = json_runs[-1][1], arrow_runs[-1][1]
    assert len(json_frame) == len(arrow_frame) == len(cold_frame) == 200 * 240, (
        len(json_frame),
        len(arrow_frame),
    )
    assert json_frame["volume"].tolist() == arrow_frame["volume"].tolist()
    json_s = statistics.median(run[0] for run in json_runs)
    arrow_s = statistics.median(run[0] for run in arrow_runs)
    json_bytes = len(json_runs[-1][2].content)
    arrow_bytes = len(arrow_runs[-1][2].content)
    return {
        "rows": len(arrow_frame),
        "cold_arrow_s": cold_seconds,
        "cold_server_ms": server_ms(cold_response),
        "json_s": json_s,
        "arrow_s": arrow_s,
        "json_server_ms": statistics.median(server_ms(run[2]) for run in json_runs),
        "arrow_server_ms": statistics.median(server_ms(run[2]) for run in arrow_runs),
        "json_bytes": json_bytes,
        "arrow_bytes": arrow_bytes,
        "speedup": json_s / arrow_s,
        "size_ratio": json_bytes / arrow_bytes,
    }


def bench_snapshot(client: httpx.Client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, headers in (("json", {}), ("arrow", {"Accept": ARROW})):
        client.get("/api/v1/snapshots", params={"sector": "沪深A股"}, headers=headers)  # warm
        server: list[float] = []
        wall: list[float] = []
        rows = size = 0
        for _ in range(20):
            began = time.perf_counter()
            response = client.get("/api/v1/snapshots", params={"sector": "沪深A股"}, headers=headers)
            wall.append((time.perf_counter() - began) * 1000)
            server.append(server_ms(response))
            size = len(response.content)
            if label == "json":
                body = response.json()
                rows = body["count"]
                assert body["from_cache"] is True
        out[f"snap_{label}_server_ms"] = statistics.median(server)
        out[f"snap_{label}_server_p95_ms"] = sorted(server)[int(len(server) * 0.95) - 1]
        out[f"snap_{label}_wall_ms"] = statistics.median(wall)
        out[f"snap_{label}_bytes"] = size
        if rows:
            out["snap_rows"] = rows
    return out


# -- 3 and 4: a slow fake source, in-process uvicorn -----------------------------------------------


def bench_concurrent_snapshots() -> dict[str, Any]:
    server = spawn_fake_server("--latency", "get_full_tick=0.1", "--no-hub")
    codes = ["600000.SH", "000001.SZ", "000001.SH", "430047.BJ", "510300.SH"]
    lists = [",".join(codes[i % 5 : i % 5 + 1 + i % 3]) for i in range(8)]

    async def run() -> list[float]:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            # Warm: existence checks cached, eight keep-alive connections open (as a polling client has).
            await asyncio.gather(*(client.get("/api/v1/snapshots", params={"codes": c}) for c in lists))
            totals, calls = [], []
            for _ in range(REPEATS):
                before = await full_tick_calls(client)
                began = time.perf_counter()
                responses = await asyncio.gather(
                    *(client.get("/api/v1/snapshots", params={"codes": c}) for c in lists)
                )
                totals.append((time.perf_counter() - began) * 1000)
                calls.append(await full_tick_calls(client) - before)
                assert all(r.status_code == 200 and not r.json()["from_cache"] for r in responses)
            return totals, calls

    async def full_tick_calls(client: httpx.AsyncClient) -> int:
        ready = (await client.get("/api/v1/health/ready")).json()
        return ready["executor"]["calls"].get("get_full_tick", {}).get("count", 0)

    try:
        totals, calls = asyncio.run(run())
    finally:
        server.stop()
    return {
        "conc_median_ms": statistics.median(totals),
        "conc_max_ms": max(totals),
        "conc_calls": f"{min(calls)}-{max(calls)}" if min(calls) != max(calls) else str(calls[0]),
        "conc_serial_ms": 8 * 100,
    }


def bench_liveness() -> dict[str, Any]:
    server = spawn_fake_server("--latency", "get_market_data_ex=5", "--push")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            wait_live(client, 10)
            client.get("/api/v1/snapshots", params={"codes": "600000.SH,000001.SZ"}).raise_for_status()
            slow: dict[str, float] = {}

            def history() -> None:
                began = time.perf_counter()
                with httpx.Client(base_url=server.url, timeout=30) as other:
                    other.get("/api/v1/klines/600000.SH").raise_for_status()
                slow["s"] = time.perf_counter() - began

            thread = threading.Thread(target=history)
            thread.start()
            # Wait until the history call is running on the xtdata thread.
            deadline = time.monotonic() + 10
            while (
                client.get("/api/v1/health/ready").json()["executor"]["current_call"] != "get_market_data_ex"
            ):
                assert time.monotonic() < deadline, "the history call never reached xtdata"
                time.sleep(0.01)
            live_ms, snap_ms = [], []
            for _ in range(25):
                began = time.perf_counter()
                client.get("/api/v1/health/live").raise_for_status()
                live_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                client.get("/api/v1/snapshots", params={"codes": "600000.SH,000001.SZ"}).raise_for_status()
                snap_ms.append((time.perf_counter() - began) * 1000)
                time.sleep(0.05)
            in_flight = thread.is_alive()
            thread.join()
    finally:
        server.stop()
    assert in_flight, "the probes must run while the history call is in flight"
    return {
        "live_median_ms": statistics.median(live_ms),
        "live_max_ms": max(live_ms),
        "snap_during_max_ms": max(snap_ms),
        "history_s": slow["s"],
    }


# -- report ----------------------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    mb = 1024 * 1024
    lines = [
        HEADING,
        "",
        f"Measured by `bench/rest_bench.py` on {time.strftime('%Y-%m-%d')} ({os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}); httpx against a real uvicorn on loopback; medians of {REPEATS} runs.",
        "",
        f"**200 codes x 240 daily bars -> client DataFrame** ({r['rows']:,} rows, simulated source, "
        "`GET /api/v1/klines?codes=...&count=240`):",
        "",
        "| path | end to end | server (Server-Timing) | body |",
        "|---|---|---|---|",
        f"| JSON records | {r['json_s'] * 1000:.0f} ms | {r['json_server_ms']:.0f} ms | {r['json_bytes'] / mb:.2f} MB |",
        f"| Arrow IPC (zstd) | {r['arrow_s'] * 1000:.0f} ms | {r['arrow_server_ms']:.0f} ms | "
        f"{r['arrow_bytes'] / mb:.2f} MB |",
        f"| **ratio** | **{r['speedup']:.1f}x faster** | | **{r['size_ratio']:.1f}x smaller** |",
        "",
        f"Cold first read (Arrow; downloads checked and history read from the source once): "
        f"{r['cold_arrow_s'] * 1000:.0f} ms end to end, {r['cold_server_ms']:.0f} ms server-side. Warm reads "
        "reuse the complete-session cache; today's bar comes from the live quote cache.",
        "",
        f"**Whole-market snapshot** (all A-shares, `GET /api/v1/snapshots?sector=沪深A股`, {r['snap_rows']:,} rows "
        "with a snapshot; served from the quote cache):",
        "",
        "| format | server median | server p95 | end to end | body |",
        "|---|---|---|---|---|",
        f"| JSON | {r['snap_json_server_ms']:.1f} ms | {r['snap_json_server_p95_ms']:.1f} ms | "
        f"{r['snap_json_wall_ms']:.1f} ms | {r['snap_json_bytes'] / mb:.2f} MB |",
        f"| Arrow | {r['snap_arrow_server_ms']:.1f} ms | {r['snap_arrow_server_p95_ms']:.1f} ms | "
        f"{r['snap_arrow_wall_ms']:.1f} ms | {r['snap_arrow_bytes'] / mb:.2f} MB |",
        "",
        f"**8 concurrent snapshot requests**, different code lists, source `get_full_tick` = 100 ms per call, quote "
        f"cache off: {r['conc_median_ms']:.0f} ms median, {r['conc_max_ms']:.0f} ms worst for all 8 "
        f"({r['conc_calls']} upstream calls per burst: the executor's gather window merges requests arriving "
        f"together, later ones merge into the next call; serialized calls would take {r['conc_serial_ms']} ms).",
        "",
        f"**Liveness while a 5 s history call is in flight** on the xtdata thread: `/api/v1/health/live` "
        f"{r['live_median_ms']:.1f} ms median, {r['live_max_ms']:.1f} ms worst; snapshots from the quote cache "
        f"meanwhile {r['snap_during_max_ms']:.1f} ms worst; the history call took {r['history_s']:.2f} s.",
        "",
        f"Gateway start to live quote cache (simulated market, first whole-universe generation): "
        f"{r['startup_s']:.1f} s.",
        "",
    ]
    return "\n".join(lines)


def write_results(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    results = {**bench_sim(), **bench_concurrent_snapshots(), **bench_liveness()}
    section = report(results)
    print(section)
    checks = {
        "Arrow >= 10x faster end to end": results["speedup"] >= 10,
        "Arrow >= 5x smaller": results["size_ratio"] >= 5,
        "whole-market snapshot <= 50 ms server-side": results["snap_json_server_ms"] <= 50,
        "8 concurrent snapshots <= 250 ms (median burst)": results["conc_median_ms"] <= 250,
        "liveness < 50 ms during a 5 s history call": results["live_max_ms"] < 50,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    write_results(section)


if __name__ == "__main__":
    main()
