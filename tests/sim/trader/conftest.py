"""Fixtures for the simulated xttrader: a fresh simulated QMT on a manual (stepped) clock per test, a
connected ``XtQuantTrader`` with a recording callback, and helpers that move the clock and wait until
every push caused so far has been delivered."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qmtgate.sim.broker import BrokerConfig
from qmtgate.sim.timeutil import ms_of

DAY = dt.date(2026, 11, 20)  # a Friday session
NEXT_DAY = dt.date(2026, 11, 23)  # the next session (Monday)
ACCOUNT_ID = "8880001"
_SESSIONS = itertools.count(1000)


def at(day: dt.date, h: int, m: int = 0, s: int = 0) -> int:
    return ms_of(day, h * 3600 + m * 60 + s)


class Recorder:
    """An XtQuantTraderCallback that records (kind, object) in arrival order, with the thread."""

    def __init__(self) -> None:
        from xtquant import xttrader

        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        base = xttrader.XtQuantTraderCallback
        for name in [n for n in vars(base) if n.startswith("on_")]:
            setattr(self, name, self._make(name[3:]))

    def _make(self, kind: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            with self._lock:
                self.events.append((kind, args[0] if args else None))
                self.threads.add(threading.current_thread().name)

        return record

    def kinds(self) -> list[str]:
        with self._lock:
            return [k for k, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [o for k, o in self.events if k == kind]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()

    def sequence(self) -> list[tuple]:
        """Compact push sequence: ('stock_order', status), ('stock_trade', volume), ('stock_position',), ..."""
        out: list[tuple] = []
        with self._lock:
            for k, o in self.events:
                if k == "stock_order":
                    out.append((k, o.order_status))
                elif k == "stock_trade":
                    out.append((k, o.traded_volume))
                else:
                    out.append((k,))
        return out


@dataclass
class Desk:
    """One simulated QMT with a started, connected and subscribed trader."""

    env: Any
    trader: Any
    cb: Recorder
    account: Any

    @property
    def broker(self) -> Any:
        return self.env.broker

    def drain(self) -> None:
        """Wait until everything submitted to the push worker so far has run."""
        self.trader.executor.submit(lambda: None).result(timeout=30)
        if self.trader.relaxed_resp_executor is not None:
            self.trader.relaxed_resp_executor.submit(lambda: None).result(timeout=30)

    def step(self, seconds: float) -> None:
        """Move the market clock and let the broker and the pushes catch up."""
        self.env.market.clock.advance(seconds)
        self.broker.sync()
        self.drain()

    def goto(self, ms: int) -> None:
        self.env.market.clock.set(ms)
        self.broker.sync()
        self.drain()

    def tick(self, code: str) -> dict:
        from xtquant import xtdata

        return xtdata.get_full_tick([code])[code]


def open_desk(env: Any) -> Desk:
    from xtquant import xttrader, xttype

    cb = Recorder()
    trader = xttrader.XtQuantTrader("/tmp/qmtgate-sim/userdata_mini", next(_SESSIONS))
    trader.register_callback(cb)
    trader.start()
    assert trader.connect() == 0
    account = xttype.StockAccount(ACCOUNT_ID)
    assert trader.subscribe(account) == 0
    return Desk(env, trader, cb, account)


@pytest.fixture
def make_desk(fresh_env: Callable[..., Any]) -> Iterator[Callable[..., Desk]]:
    """``make_desk(start_ms=..., **broker_config)``: a fresh simulated QMT on a manual clock with a
    connected trader; the trader is stopped and the environment closed afterwards."""
    desks: list[Desk] = []

    def make(start_ms: int = at(DAY, 10), **config: Any) -> Desk:
        env = fresh_env(start_ms=start_ms, broker=BrokerConfig(**config))
        env.publisher.stop(manual=True)
        desk = open_desk(env)
        desks.append(desk)
        return desk

    yield make
    for desk in desks:
        if desk.trader.executor is not None:
            desk.trader.stop()


@pytest.fixture
def desk(make_desk: Callable[..., Desk]) -> Desk:
    return make_desk()
