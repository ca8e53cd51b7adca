"""``subscribe_quote(..., count=0)`` gets no history part: the first push is the next live slot
(issue 19, item 4).

The bug: the first subscription of a process made the live session build the day (seconds of work);
the clock moved on meanwhile and the next publisher step replayed every slot of that gap to the new
subscriber as if live (113 ticks in one second, spanning 123 s of market time). The build time is
simulated here by moving the manual clock inside the session's day start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import qmtgate.sim
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

TRADING_DAY = dt.date(2026, 11, 20)
CODE = "600000.SH"


@contextlib.contextmanager
def slow_first_build(build_seconds: float) -> Iterator[tuple[MarketClock, Any, Any]]:
    """A fresh simulated QMT whose first day build lets ``build_seconds`` of market time pass."""
    previous = _env._ENV
    clock = MarketClock(SimMarket(seed=0).calendar, mode="manual", start_ms=ms_of(TRADING_DAY, 10 * 3600))
    env = qmtgate.sim.install(market=SimMarket(seed=0, clock=clock), download_seconds_per_code=0.0)
    original = env.session._start_day

    def start_day(d: int) -> None:
        original(d)
        clock.advance(build_seconds)

    env.session._start_day = start_day  # type: ignore[method-assign]
    try:
        from xtquant import xtdata

        xtdata.enable_hello = False
        env.publisher.stop(manual=True)
        yield clock, env, xtdata
    finally:
        env.close()
        _env._ENV = previous


def test_count0_first_push_is_one_live_slot_not_the_build_gap() -> None:
    with slow_first_build(123) as (clock, env, xtdata):
        got: list[dict] = []
        xtdata.subscribe_quote(CODE, period="tick", count=0, callback=got.append)
        env.publisher.step()  # the first step builds the day while 123 s of market time pass
        assert len(got) <= 1, f"the build gap is not replayed slot by slot ({len(got)} pushes)"
        first = len(got)
        clock.advance(3)  # one slot
        env.publisher.step()
    assert 1 <= len(got) <= first + 1
    ticks = [p[CODE][0] for p in got]
    assert all(len(p[CODE]) == 1 for p in got)
    assert ticks[0]["time"] >= clock.now_ms() - 6000, "the first push is the latest slot, not a stale one"


def test_count0_subscription_before_any_trade_pushes_nothing_first() -> None:
    with slow_first_build(0) as (clock, env, xtdata):
        got: list[dict] = []
        xtdata.subscribe_quote(CODE, period="tick", count=0, callback=got.append)
        env.publisher.step()
        assert got == [], "count=0: no history part (nothing newer than the subscribe call yet)"
        clock.advance(3)
        env.publisher.step()
    assert len(got) <= 1


def test_count0_then_each_slot_once() -> None:
    with slow_first_build(0) as (clock, env, xtdata):
        got: list[dict] = []
        xtdata.subscribe_quote(CODE, period="tick", count=0, callback=got.append)
        env.publisher.step()
        assert got == []
        for _ in range(5):
            clock.advance(3)
            env.publisher.step()
    times = [p[CODE][0]["time"] for p in got]
    assert 1 <= len(times) <= 5 and times == sorted(set(times))
