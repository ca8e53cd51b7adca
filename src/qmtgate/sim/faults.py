"""Fault injection for the simulated QMT, so reliability paths are exercised by tests.

A test holds the market's :class:`FaultInjector` and can disconnect QMT, stall calls (they hang until
released), restart QMT (every subscription is lost, as with a real miniQMT restart), slow every call
down, or make calls raise. The xtquant facade consults the injector on every call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

#: What the real SDK raises when QMT is not reachable (xtdata.connect / any call's lazy reconnect).
NOT_CONNECTED = "无法连接xtquant服务，请检查QMT-投研版或QMT-极简版是否开启"


class FaultInjector:
    """Mutable fault state of one simulated QMT instance (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connected = True
        self._latency = 0.0
        self._raise: BaseException | None = None
        self._raise_count = 0
        self._released = threading.Event()
        self._released.set()
        self.generation = 0  # bumps at every restart; subscriptions of older generations are dead
        self._listeners: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ controls (tests)

    def disconnect(self) -> None:
        """QMT goes away: calls raise the SDK's connection error until :meth:`reconnect`."""
        with self._lock:
            self._connected = False
        self._notify("disconnected")

    def reconnect(self) -> None:
        with self._lock:
            self._connected = True
        self._notify("connected")

    def restart(self) -> None:
        """A miniQMT restart: a short disconnect, and every existing subscription is lost."""
        with self._lock:
            self.generation += 1
            self._connected = True
        self._notify("disconnected")
        self._notify("connected")

    def stall(self) -> None:
        """Calls hang (until :meth:`release`)."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def slow(self, seconds: float) -> None:
        """Add ``seconds`` of latency to every call (0 to clear)."""
        with self._lock:
            self._latency = max(float(seconds), 0.0)

    def fail(self, exc: BaseException | None, count: int = 0) -> None:
        """Make calls raise ``exc`` (``count`` times, or until cleared with None when 0)."""
        with self._lock:
            self._raise = exc
            self._raise_count = count

    def clear(self) -> None:
        self.release()
        with self._lock:
            self._connected = True
            self._latency = 0.0
            self._raise = None

    # ------------------------------------------------------------------ used by the facade

    @property
    def connected(self) -> bool:
        return self._connected

    def add_listener(self, fn: Callable[[str], None]) -> None:
        """``fn('connected' | 'disconnected')`` on connection changes (from the caller's thread)."""
        self._listeners.append(fn)

    def on_call(self, name: str) -> None:
        """Apply the current faults to one API call (may sleep, block or raise)."""
        if not self._released.is_set():
            self._released.wait()
        with self._lock:
            latency = self._latency
            connected = self._connected
            exc = self._raise
            if exc is not None and self._raise_count:
                self._raise_count -= 1
                if self._raise_count == 0:
                    self._raise = None
        if latency:
            time.sleep(latency)
        if not connected:
            raise Exception(NOT_CONNECTED)
        if exc is not None:
            raise exc

    def _notify(self, status: str) -> None:
        for fn in list(self._listeners):
            with contextlib.suppress(Exception):  # listeners must never break fault control
                fn(status)


class TraderFaultInjector:
    """Faults of the simulated trading terminal (the paper broker behind ``xttrader``), for tests.

    - :meth:`refuse_connect`: ``XtQuantTrader.connect()`` returns -1 (terminal down / not logged in).
    - :meth:`disconnect`: every connected trader gets ``on_disconnected`` once and stays dead.
    - :meth:`delay_order_responses` / :meth:`drop_order_responses`: the order (or cancel) is placed and
      lives on, but its response to the caller comes late or never: the outcome is unknown to it.
    - :meth:`reject_orders`: the next order(s) are rejected by the counter with the given error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refuse = 0  # connects to refuse (-1: all until cleared)
        self.response_delay = 0.0
        self.drop_responses = 0  # responses to drop (-1: all until cleared)
        self._rejects: list[tuple[int, str]] = []
        self._listeners: list[Callable[[str], None]] = []

    def refuse_connect(self, count: int = -1) -> None:
        with self._lock:
            self.refuse = count

    def disconnect(self) -> None:
        for fn in list(self._listeners):
            with contextlib.suppress(Exception):
                fn("disconnected")

    def delay_order_responses(self, seconds: float) -> None:
        with self._lock:
            self.response_delay = max(float(seconds), 0.0)

    def drop_order_responses(self, count: int = -1) -> None:
        with self._lock:
            self.drop_responses = count

    def reject_orders(self, error_id: int, error_msg: str, count: int = 1) -> None:
        with self._lock:
            self._rejects.extend([(int(error_id), str(error_msg))] * count)

    def clear(self) -> None:
        with self._lock:
            self.refuse = 0
            self.response_delay = 0.0
            self.drop_responses = 0
            self._rejects.clear()

    # ------------------------------------------------------------------ used by the trader / broker

    def add_listener(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[str], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def take_refuse(self) -> bool:
        with self._lock:
            if self.refuse == 0:
                return False
            if self.refuse > 0:
                self.refuse -= 1
            return True

    def take_drop(self) -> bool:
        with self._lock:
            if self.drop_responses == 0:
                return False
            if self.drop_responses > 0:
                self.drop_responses -= 1
            return True

    def take_reject(self) -> tuple[int, str] | None:
        with self._lock:
            return self._rejects.pop(0) if self._rejects else None
