"""Helpers for the MCP tests: ``qmtgate mcp`` as a real subprocess, driven by the ``mcp`` SDK's own client.

stdio: :func:`stdio_client` spawns ``python -m qmtgate mcp ...`` through the SDK's ``StdioServerParameters``.
HTTP: :func:`http_server` spawns ``qmtgate mcp --transport http`` on a free loopback port and waits until it
accepts connections; :func:`http_client` connects the SDK client to it. The gateway is a real one on the
simulator, started in the test process by each module's fixture (tests/api/support.py ``start_server``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: The read tools every server lists; the trading tools only with trading on both sides.
READ_TOOLS = {
    "get_quote",
    "get_klines",
    "get_instrument",
    "list_sectors",
    "get_sector_members",
    "get_trading_calendar",
    "is_market_open",
    "get_market_status",
    "get_recorded_data",
    "list_download_jobs",
    "start_download",
    "cancel_download",
}
TRADING_TOOLS = {
    "place_order",
    "cancel_order",
    "get_orders",
    "get_trades",
    "get_positions",
    "get_asset",
    "get_trading_status",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
ERROR_CODE = re.compile(r"\(code: ([a-z_]+)")


def _env() -> dict[str, str]:
    env = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # the MCP server takes the gateway only from its options: keep the test's QMTGATE_* out of it
    return env


def stdio_client(url: str, *extra: str, env: dict[str, str] | None = None) -> Client:
    """The SDK's client on ``python -m qmtgate mcp --url URL *extra``; ``env`` adds variables (a key)."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qmtgate", "mcp", "--url", url, *extra],
        env={**_env(), **(env or {})},
    )
    return Client(params, read_timeout_seconds=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def http_server(url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``qmtgate mcp --transport http`` in a subprocess; yields its MCP endpoint URL."""
    port = free_port()
    env = {**os.environ, **_env(), **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qmtgate",
            "mcp",
            "--url",
            url,
            "--transport",
            "http",
            "--port",
            str(port),
            *extra,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"qmtgate mcp exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("qmtgate mcp --transport http did not listen within 60 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def http_client(endpoint: str) -> Client:
    return Client(endpoint, read_timeout_seconds=60)


async def ok(client: Client, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool that must succeed; its JSON answer (structured content and text agree)."""
    result = await client.call_tool(tool, args or {})
    text = result.content[0].text if result.content else ""
    assert not result.is_error, f"{tool}({args}) failed: {text}"
    assert result.structured_content is not None
    assert json.loads(text) == result.structured_content
    return result.structured_content


async def fails(client: Client, tool: str, args: dict[str, Any]) -> str:
    """Call a tool that must fail as a tool error (never a traceback); the error text."""
    result: CallToolResult = await client.call_tool(tool, args)
    text = "\n".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error, f"{tool}({args}) should have failed, got {text[:300]}"
    assert "Traceback" not in text and 'File "' not in text, text
    return text


def error_code(text: str) -> str | None:
    found = ERROR_CODE.search(text)
    return found.group(1) if found else None
