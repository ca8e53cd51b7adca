"""Live pushes of the simulated market, with a real publisher thread and a real (accelerated) clock.

Must show (issue 2): subscribe_whole_quote(['SH','SZ']) at 10x speed delivers at least 5,000 distinct
codes within one simulated minute of continuous trading, and nothing on a holiday.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import qmtgate.sim
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

TRADING_DAY = dt.date(2026, 11, 20)
HOLIDAY = dt.date(2026, 10, 5)  # National Day holiday, a Monday


@contextlib.contextmanager
def simulated(clock: MarketClock) -> Iterator[_env.SimEnv]:
    """Bind a fresh simulated QMT with ``clock`` for the duration of a test, then restore."""
    previous = _env._ENV
    market = SimMarket(seed=0, clock=clock)
    env = qmtgate.sim.install(market=market, download_seconds_per_code=0.0)
    try:
        yield env
    finally:
        env.close()
        _env._ENV = previous


def test_whole_quote_at_10x_delivers_5000_codes_within_one_simulated_minute() -> None:
    cal = SimMarket(seed=0).calendar
    start = ms_of(TRADING_DAY, 10 * 3600)
    clock = MarketClock(cal, mode="replay", speed=10.0, replay_day=TRADING_DAY, start_ms=start)
    with simulated(clock) as env:
        from xtquant import xtdata

        xtdata.enable_hello = False
        env.sync()  # build the day before subscribing, as a running QMT would have
        seen: dict[str, int] = {}
        threads: set[str] = set()
        first: list[dict] = []
        lock = threading.Lock()

        def on_data(data: dict) -> None:
            with lock:
                threads.add(threading.current_thread().name)
                if not first:
                    first.append(data)
                    return  # the first push is the full current snapshot: not a live update
                for code, tick in data.items():
                    seen.setdefault(code, tick["time"])

        subscribed_at = clock.now_ms()
        seq = xtdata.subscribe_whole_quote(["SH", "SZ"], callback=on_data)
        assert seq > 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and clock.now_ms() < subscribed_at + 62_000:
            time.sleep(0.1)
        window_end = subscribed_at + 60_000
        with lock:
            in_window = {c for c, t in seen.items() if subscribed_at < t <= window_end}
        xtdata.unsubscribe_quote(seq)

    assert first and len(first[0]) > 5000, "the first push should be the full current snapshot"
    assert all(code.endswith((".SH", ".SZ")) for code in in_window)
    print(f"distinct codes updated in one simulated minute at 10x: {len(in_window)}")
    assert len(in_window) >= 5000, f"only {len(in_window)} distinct codes updated in one simulated minute"
    assert threading.main_thread().name not in threads


@pytest.mark.slow  # runs whole-market slots for ~20 s
def test_whole_quote_pushes_nothing_on_a_holiday() -> None:
    cal = SimMarket(seed=0).calendar
    assert not cal.is_trading_day(HOLIDAY)
    wall = [ms_of(HOLIDAY, 10 * 3600) / 1000.0]
    clock = MarketClock(cal, mode="real", wall=lambda: wall[0])
    with simulated(clock) as env:
        from xtquant import xtdata

        xtdata.enable_hello = False
        pushes: list[dict] = []
        xtdata.subscribe_whole_quote(["SH", "SZ"], callback=pushes.append)
        env.publisher.stop(manual=True)  # drive the publisher by hand: deterministic
        env.publisher.step()
        snapshot = pushes[:1]
        for _ in range(40):  # ten simulated minutes of a holiday morning
            wall[0] += 15
            env.publisher.step()
    # at most the first push (yesterday's closing snapshot), and no live update
    assert len(pushes) <= 1
    last_session = cal.previous(HOLIDAY)
    for data in snapshot:
        times = {tick["time"] for tick in data.values()}
        assert max(times) <= ms_of(last_session, 15 * 3600 + 60)


@contextlib.contextmanager
def one_code_subscription(period: str) -> Iterator[tuple[MarketClock, Any, Any, list[dict]]]:
    """600000.SH subscribed at 10:00 of a trading day, the publisher driven by hand (after its first
    step): yields (clock, env, xtdata, pushes)."""
    clock = MarketClock(SimMarket(seed=0).calendar, mode="manual", start_ms=ms_of(TRADING_DAY, 10 * 3600))
    with simulated(clock) as env:
        from xtquant import xtdata

        xtdata.enable_hello = False
        got: list[dict] = []
        env.publisher.stop(manual=True)
        xtdata.subscribe_quote("600000.SH", period=period, count=0, callback=got.append)
        env.publisher.step()
        yield clock, env, xtdata, got


@pytest.mark.parametrize("period", ["tick", "1m", "1d"])
def test_subscribe_quote_pushes_a_list_per_code(period: str) -> None:
    with one_code_subscription(period) as (clock, env, _, got):
        clock.advance(60)
        env.publisher.step()
    assert got, "a liquid stock trades within a minute"
    for payload in got:
        assert list(payload) == ["600000.SH"]
        items = payload["600000.SH"]
        assert isinstance(items, list) and len(items) == 1
        item = items[0]
        if period == "tick":
            assert {"lastPrice", "volume", "askPrice", "bidVol"} <= set(item)
        else:
            assert set(item) == {
                "time", "open", "high", "low", "close", "volume", "amount",
                "settelementPrice", "openInterest", "preClose", "suspendFlag",
            }  # fmt: skip
            assert item["high"] >= max(item["open"], item["close"]) >= item["low"] > 0


def test_a_snapshot_query_does_not_swallow_the_pushes_of_the_slots_it_passes() -> None:
    """``get_full_tick`` right after the clock moved brings the session forward; the subscribers must
    still get every slot's update (real QMT keeps pushing whatever anyone queries)."""
    with one_code_subscription("tick") as (clock, env, xtdata, got):
        before = len(got)
        clock.advance(30)  # ten slots
        tick = xtdata.get_full_tick(["600000.SH"])["600000.SH"]
        env.publisher.step()  # nothing left for the publisher: the query already delivered
        pushed = [p["600000.SH"][0] for p in got[before:]]
    assert len(pushed) >= 5, "a liquid stock trades in most of ten slots"
    assert pushed[-1]["time"] == tick["time"] and pushed[-1]["lastPrice"] == tick["lastPrice"]
    times = [p["time"] for p in pushed]
    assert times == sorted(set(times)), "each slot once, in order"


def test_a_burst_built_in_slices_equals_the_burst_built_at_once() -> None:
    """The publisher builds a whole market's tick dicts in slices (the interpreter lock let go in
    between, sim/live.py): every dict, suspended stocks and indexes included, is the one built at once."""
    from qmtgate.sim.live import DICT_SLICE_ROWS, LiveSession

    m = SimMarket(seed=0)
    m.clock = MarketClock(m.calendar, mode="manual", start_ms=ms_of(TRADING_DAY, 10 * 3600 + 30 * 60))
    session = LiveSession(m)
    session.advance(m.time())
    rows = session.rows_with_data()
    assert len(rows) > 4 * DICT_SLICE_ROWS
    whole = session.tick_dicts(rows)
    assert session.tick_dicts(rows, DICT_SLICE_ROWS) == whole
    assert session.tick_dicts(rows, 7) == whole  # a last slice shorter than the others
    assert any(t["stockStatus"] == 1 for t in whole)  # a suspended stock was among them
