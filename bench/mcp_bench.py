"""``qmtgate mcp`` tool latency over stdio, against ``qmtgate serve`` on the simulator (issue 25).

Run: ``PYTHONPATH=src .venv/bin/python bench/mcp_bench.py`` (about a minute, most of it the simulator
preparing the session). The gateway runs in its own process (manual clock, 2025-06-12 10:30), the MCP
server in another (started by the SDK's stdio client, as an assistant starts it), and this process is the
assistant. Prints the MCP server's start-up (spawn to initialized, to the tool list) and p50/p99 of
sequential tool calls, each one MCP round trip plus the gateway requests behind it:

- ``get_quote`` of two codes (snapshots + instrument names: 2 gateway requests);
- ``get_quote`` of a sector (沪深300: members, snapshots, names: 3 requests, ~300 rows summarized);
- ``get_klines`` of 250 daily bars, summary + 20 rows (1 request);
- ``get_instrument`` by Chinese name: the first call builds the name index (5 sectors' members and
  their names, ~13 requests), printed separately, later calls answer from memory (1 request).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

N = 100


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def measure(url: str) -> None:
    env = {"PYTHONPATH": str(ROOT / "src")}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "qmtgate", "mcp", "--url", url], env=env
    )
    t0 = time.perf_counter()
    async with Client(params, read_timeout_seconds=120) as client:
        t1 = time.perf_counter()
        tools = await client.list_tools()
        t2 = time.perf_counter()
        print(f"start-up: initialized in {(t1 - t0) * 1000:.0f} ms, {len(tools.tools)} tools listed after "
              f"{(t2 - t0) * 1000:.0f} ms")  # fmt: skip
        t = time.perf_counter()
        await client.call_tool("get_instrument", {"code": "贵州茅台"})
        print(f"first name lookup (builds the name index): {(time.perf_counter() - t) * 1000:.0f} ms")
        cases = [
            ("get_quote", {"codes": ["600519", "000001.SZ"]}),
            ("get_quote", {"sector": "沪深300", "limit": 10}),
            ("get_klines", {"code": "600519.SH", "count": 250, "max_rows": 20}),
            ("get_instrument", {"code": "贵州茅台"}),
        ]
        for name, args in cases:
            times = []
            for _ in range(N):
                t = time.perf_counter()
                result = await client.call_tool(name, args)
                times.append((time.perf_counter() - t) * 1000)
                assert not result.is_error, result.content
            print(
                f"{name} {args}: p50 {statistics.median(times):.1f} ms, p99 {pct(times, 99):.1f} ms ({N} calls)"
            )


def main() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "qmtgate", "serve", "--source", "sim", "--port", str(port),
           "--sim-clock", "manual", "--sim-start", "20250612103000", "--log-level", "error"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/api/v1/health/ready", timeout=5).json().get("quotes", {}).get("live"):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the gateway did not become ready")
            time.sleep(0.2)
        asyncio.run(measure(url))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
