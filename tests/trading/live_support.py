"""A gateway on the simulator with trading on and API keys, in a real uvicorn on loopback, for the
WebSocket trading channel and the remote xttrader drop-in tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.sync.client import ClientConnection, connect

from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.security.keys import generate_key

from .conftest import trading_settings

try:  # tests/ on sys.path
    from api.support import LiveServer, start_server
except ImportError:  # tests/ itself is a package
    from tests.api.support import LiveServer, start_server  # type: ignore[no-redef]

KEYS = {
    "read": generate_key("r", ["read"]),
    "stream": generate_key("s", ["stream"]),
    "trade": generate_key("t", ["trade"]),
    "both": generate_key("b", ["read", "stream", "trade"]),
}


class Gateway:
    def __init__(self, server: LiveServer, app: Any) -> None:
        self.server = server
        self.app = app
        self.url = server.url
        self.ws_url = "ws://" + server.url.removeprefix("http://") + "/api/v1/ws"

    def http(self, key: str = "both") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": KEYS[key].token}, timeout=30)

    def ws(self, key: str = "trade") -> ClientConnection:
        ws = connect(self.ws_url, additional_headers={"X-API-Key": KEYS[key].token}, open_timeout=30)
        hello = recv(ws)
        assert hello["type"] == "hello", hello
        return ws


def live_gateway(audit: Path) -> Iterator[Gateway]:
    """Start the gateway (audit trail at ``audit``); stop it when the generator is closed."""
    settings = trading_settings(
        audit, allow_loopback_without_auth=False, risk={"max_orders_per_second": 1000}
    )
    settings = settings.model_copy(
        update={"auth": Settings(auth={"keys": [k.record.model_dump() for k in KEYS.values()]}).auth}
    )
    app = create_app(settings)
    server = start_server(app)
    try:
        yield Gateway(server, app)
    finally:
        server.stop()


def recv(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    return orjson.loads(ws.recv(timeout=timeout))


def ask(code: str) -> float:
    return sys.modules["xtquant.xtdata"].get_full_tick([code])[code]["askPrice"][0]
