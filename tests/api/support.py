"""Helpers for API tests: the fake xtdata, a source over it, and a real uvicorn on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from qmtgate.source.xtdata_source import XtdataSource, XtdataSourceConfig

try:  # tests/ on sys.path (tests/source is a package)
    from source.fake_xtdata import FakeXtdata
except ImportError:  # tests/ itself is a package
    from tests.source.fake_xtdata import FakeXtdata  # type: ignore[no-redef]

__all__ = [
    "FakeServerProcess",
    "FakeXtdata",
    "LiveServer",
    "make_source",
    "spawn_fake_server",
    "start_server",
]


def make_source(fake: FakeXtdata, name: str = "simulated") -> XtdataSource:
    return XtdataSource(fake, name=name, config=XtdataSourceConfig(reconnect_interval=0.05))


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(app: FastAPI, **config: Any) -> LiveServer:
    """Run ``app`` in a real uvicorn (lifespan included) on a free 127.0.0.1 port, in a thread; ``config``:
    more ``uvicorn.Config`` options (e.g. ``ws_per_message_deflate=False``, as ``qmtgate serve`` runs)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    # an app over the real simulator prepares the whole market's session before it listens (10-30 s on
    # a busy 2-core box, source.factory.warm_up)
    deadline = time.monotonic() + 180
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


@dataclass
class FakeServerProcess:
    url: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def spawn_fake_server(*args: str) -> FakeServerProcess:
    """Start tests/api/fake_server.py (the gateway over the fake xtdata) in its own process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    script = Path(__file__).with_name("fake_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until "ready" (or EOF if it died)
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return FakeServerProcess(f"http://127.0.0.1:{port}", process)
