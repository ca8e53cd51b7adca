"""Fixtures for the drop-in tests: a gateway subprocess on the pinned simulator, and its control."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A gateway process (see gateway_proc.py); ``restart()`` keeps the port, ``advance()`` the clock."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 180.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (build other things while the simulator warms up)."""
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "gateway_proc.py"), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        self._expect("READY", timeout)

    def _expect(self, word: str, timeout: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"gateway exited with {self.proc.poll()}")
            if line.strip() == word:
                return
        raise AssertionError(f"gateway did not say {word} within {timeout} s")

    def advance(self, seconds: float) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"advance {seconds}\n")
        self.proc.stdin.flush()
        self._expect("OK", 30)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.ready = True


@pytest.fixture(scope="session")
def launched_gateway() -> Iterator[Gateway]:
    """The gateway process, started but maybe still warming up (~10-25 s of simulator CPU)."""
    gw = Gateway(free_port())
    gw.launch()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def gateway(launched_gateway: Gateway) -> Gateway:
    """The gateway process, serving (its quote cache is live)."""
    if not getattr(launched_gateway, "ready", False):
        launched_gateway.wait_ready()
        launched_gateway.ready = True  # type: ignore[attr-defined]
    return launched_gateway


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
