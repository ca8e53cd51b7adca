"""One gateway on the simulated market for the reliability tests (real uvicorn, real WebSocket clients).

The simulator's clock is manual (2025-06-12 10:30 CST, in the morning session): tests move the market with
:func:`advance` and inject QMT faults through ``env.faults``. The quote feed holds only BJ (a small market),
so SH/SZ subscriptions go through the hub's refcounted upstream registry and both recovery paths (the feed
and the registry) are exercised. Executor deadlines are short so stalls time out quickly.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from qmtgate.api.app import create_app

try:  # tests/ on sys.path
    from api.sim_support import sim_settings, wait_live
    from api.support import LiveServer, start_server
except ImportError:  # tests/ itself is a package
    from tests.api.sim_support import sim_settings, wait_live  # type: ignore[no-redef]
    from tests.api.support import LiveServer, start_server  # type: ignore[no-redef]


@dataclass
class Gateway:
    server: LiveServer
    app: Any
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/api/v1/ws"

    @property
    def env(self) -> Any:
        from qmtgate.sim.xtquant import _env

        return _env.current()

    @property
    def hub(self) -> Any:
        return self.app.state.hub

    @property
    def source(self) -> Any:
        return self.app.state.source

    def advance(self, seconds: float = 3.0, settle: float = 0.05) -> None:
        """Move the market forward and wait until the publisher delivered it and the hub pumped it."""
        env = self.env
        env.market.clock.advance(seconds)
        target = env.market.time().slot
        deadline = time.monotonic() + 30
        while env.publisher.delivered_slot < target and time.monotonic() < deadline:
            time.sleep(0.005)
        while self.hub._inbox and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(settle)

    def supervisor_report(self) -> Any:
        return self.app.state.supervisor.report()

    def ready(self) -> dict[str, Any]:
        return self.http.get("/api/v1/health/ready").json()

    def heal(self, timeout: float = 30.0) -> None:
        """Clear every fault and wait until the gateway is ready again with its subscriptions restored."""
        env = self.env
        env.faults.clear()
        eventually(lambda: self.ready().get("ready") is True, timeout, what="gateway ready after heal")
        eventually(lambda: not self.hub.registry.failed(), timeout, what="registry resubscribed")
        services = self.app.state.services

        def feed_current() -> bool:
            return services.feed.connection == self.source.status().connection and services.quotes.is_live()

        eventually(feed_current, timeout, what="the quote feed resubscribed and live")


def eventually(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: Any = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            label = what() if callable(what) else what
            raise AssertionError(f"not true within {timeout} s: {label or check}")
        time.sleep(interval)


class WsReader:
    """A WebSocket client reading on its own thread, so tests can poll what arrived."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None).__enter__()  # closed by close()
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="test-ws-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                msg = json.loads(self.ws.recv())
                msg["_at"] = time.monotonic()
                with self.lock:
                    self.messages.append(msg)
        except Exception:
            return

    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send(json.dumps(msg))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["type"] == kind]

    def close(self) -> None:
        self.ws.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="package")
def gateway() -> Iterator[Gateway]:
    settings = sim_settings(
        quotes={"markets": ["BJ"]},
        executor={"control_timeout": 1.0, "snapshot_timeout": 1.0, "history_timeout": 2.0},
        stream={"ring_capacity": 200_000},
    )
    app = create_app(settings)
    server = start_server(app)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        wait_live(http)

        def probed() -> bool:
            # the simulator's first get_full_tick builds the whole universe's day (~10 s of CPU): wait
            # for the source's first probe to finish so no test starts with a DEGRADED executor
            ex = app.state.source.status().executor
            call = ex.calls.get("get_full_tick")
            running = ex.current_call == "get_full_tick"
            return call is not None and call.count > 0 and not running and ex.state.value == "running"

        eventually(probed, 120.0, interval=0.1, what="first connection probe done")
        yield Gateway(server, app, http)
    server.stop()
