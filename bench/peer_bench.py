"""The peer harness's caches-off rows (issue 22, "must show"), reproducible from the project.

Run: ``PYTHONPATH=src .venv/bin/python bench/peer_bench.py [--skip-sim]`` (about a minute; the simulated
market's first generation costs ~10-30 s of CPU). Every gateway runs in its own process on loopback, with
the quote cache OFF, so every read reaches xtdata as the peers' do:

a. **5,000-code snapshot**: ``GET /api/v1/snapshots?sector=沪深A股`` against ``qmtgate serve --source sim``
   (``QMTGATE_QUOTES__ENABLED=false``), JSON and Arrow, median end to end.
b. **8 concurrent 50-code snapshots**, different code lists, 100 ms per xtdata call (fake xtdata with 400
   extra stocks, tests/api/fake_server.py), median burst and upstream ``get_full_tick`` calls per burst,
   after one warm round and the instrument index's background load.
c. **First round after start**: a fresh gateway (100 ms per xtdata call, nothing seen yet) answers one
   request for 200 unseen codes, then 8 concurrent 50-code requests: status codes, time, and the reference
   calls it made (``get_instrument_detail*``, ``get_stock_list_in_sector``), counted by the executor.

Prints a markdown table row per figure; bench/RESULTS.md keeps the before/after sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from api.support import spawn_fake_server  # noqa: E402
from qmtgate.source.universe import UNIVERSE_SECTORS  # noqa: E402
from source.fake_xtdata import synthetic_codes  # noqa: E402

ARROW = "application/vnd.apache.arrow.stream"
REPEATS = 9
LATENCY = 0.1
#: every xtdata call the snapshot path (and its existence checks) can make gets the 100 ms
SLOW_CALLS = (
    "get_full_tick",
    "get_instrument_detail",
    "get_instrument_detail_list",
    "get_stock_list_in_sector",
    "get_sector_list",
)
REFERENCE_CALLS = ("get_instrument_detail", "get_instrument_detail_list", "get_stock_list_in_sector")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slow_server() -> Any:
    latency = [arg for name in SLOW_CALLS for arg in ("--latency", f"{name}={LATENCY}")]
    window = ["--merge-window", os.environ["MERGE_WINDOW"]] if os.environ.get("MERGE_WINDOW") else []
    return spawn_fake_server(*latency, "--no-hub", "--universe", "400", *window)


async def upstream_calls(client: httpx.AsyncClient, names: tuple[str, ...]) -> int:
    calls = (await client.get("/api/v1/health/ready")).json()["executor"]["calls"]
    return sum(calls.get(name, {}).get("count", 0) for name in names)


# -- a ------------------------------------------------------------------------------------------------


def bench_market_snapshot() -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "QMTGATE_LOG_LEVEL": "warning", "QMTGATE_QUOTES__ENABLED": "false"}
    cmd = [sys.executable, "-m", "qmtgate.cli", "serve", "--source", "sim", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if client.get("/api/v1/health/live").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulated gateway did not start")
                time.sleep(0.2)
            for label, headers in (("json", {}), ("arrow", {"Accept": ARROW})):
                first = client.get("/api/v1/snapshots", params={"sector": "沪深A股"}, headers=headers)
                if first.status_code != 200:
                    out[f"snap5k_{label}"] = f"HTTP {first.status_code} {first.text[:120]}"
                    continue
                wall = []
                for _ in range(REPEATS):
                    began = time.perf_counter()
                    response = client.get("/api/v1/snapshots", params={"sector": "沪深A股"}, headers=headers)
                    response.raise_for_status()
                    wall.append(time.perf_counter() - began)
                out[f"snap5k_{label}"] = f"{statistics.median(wall):.3f} s"
                if label == "json":
                    out["snap5k_rows"] = response.json()["count"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return out


# -- b ------------------------------------------------------------------------------------------------


def bench_concurrent() -> dict[str, Any]:
    universe = synthetic_codes(400)
    lists = [",".join(universe[i * 50 : (i + 1) * 50]) for i in range(8)]
    server = slow_server()

    async def run() -> tuple[list[float], list[int]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            warm = await asyncio.gather(
                *(client.get("/api/v1/snapshots", params={"codes": c}) for c in lists)
            )
            failed = sorted({r.status_code for r in warm if r.status_code != 200})
            if failed:
                raise RuntimeError(f"the warm-up round answered HTTP {failed}")
            # steady state: the instrument index's sector calls (100 ms each here, background, on the
            # history lane) have finished, so a burst does not wait behind one of them
            deadline = time.monotonic() + 5
            while await upstream_calls(client, ("get_stock_list_in_sector",)) < len(UNIVERSE_SECTORS):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            totals, calls = [], []
            for _ in range(REPEATS):
                before = await upstream_calls(client, ("get_full_tick",))
                began = time.perf_counter()
                responses = await asyncio.gather(
                    *(client.get("/api/v1/snapshots", params={"codes": c}) for c in lists)
                )
                totals.append(time.perf_counter() - began)
                calls.append(await upstream_calls(client, ("get_full_tick",)) - before)
                assert all(r.status_code == 200 and r.json()["count"] == 50 for r in responses)
            return totals, calls

    try:
        totals, calls = asyncio.run(run())
    except RuntimeError as e:
        return {"conc8_median": f"fails: {e}"}
    finally:
        server.stop()
    return {
        "conc8_median": f"{statistics.median(totals):.3f} s",
        "conc8_worst": f"{max(totals):.3f} s",
        "conc8_calls": ", ".join(
            f"{n} call{'s' if n > 1 else ''} x{calls.count(n)}" for n in sorted(set(calls))
        ),
    }


# -- c ------------------------------------------------------------------------------------------------


def bench_first_round() -> dict[str, Any]:
    universe = synthetic_codes(400)
    out: dict[str, Any] = {}

    async def one(client: httpx.AsyncClient, codes: list[str]) -> tuple[int, float]:
        began = time.perf_counter()
        response = await client.get("/api/v1/snapshots", params={"codes": ",".join(codes)})
        return response.status_code, time.perf_counter() - began

    async def run_single() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            status, seconds = await one(client, universe[:200])
            out["cold200_status"] = status
            out["cold200"] = f"{seconds:.3f} s"
            out["cold200_refcalls"] = await upstream_calls(client, REFERENCE_CALLS)

    async def run_burst() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            began = time.perf_counter()
            results = await asyncio.gather(*(one(client, universe[i * 50 : (i + 1) * 50]) for i in range(8)))
            out["cold8_statuses"] = ",".join(sorted({str(status) for status, _ in results}))
            out["cold8"] = f"{time.perf_counter() - began:.3f} s"
            out["cold8_refcalls"] = await upstream_calls(client, REFERENCE_CALLS)

    server = slow_server()
    try:
        asyncio.run(run_single())
    finally:
        server.stop()
    server = slow_server()
    try:
        asyncio.run(run_burst())
    finally:
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-sim", action="store_true", help="skip (a), the simulated 5,000-code snapshot")
    parser.add_argument("--only-concurrent", action="store_true", help="run (b) only")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if not args.only_concurrent:
        results.update(bench_first_round())
    results.update(bench_concurrent())
    if not (args.skip_sim or args.only_concurrent):
        results.update(bench_market_snapshot())
    print(f"# peer_bench {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} CPUs), caches off")
    for key, value in results.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
