"""Suspended stocks as QMT shows them (xtquant-api.md §3.2, §3.4; the SDK's 证券状态 table and K-line
``suspendFlag``): a stock suspended for a session still has a tick, published once at 09:15:00 and standing
all day: ``lastPrice`` = ``lastClose`` (the previous close), ``open``/``high``/``low`` 0, no volume, amount
or trades, an empty book, ``openInt`` and ``stockStatus`` 1. Its daily bar and its minute bars of that
session are flat at the previous close with ``suspendFlag`` 1 (NaN prices with ``fill_data=False``).

Checked in the whole-quote push, in tick history and in K-lines, for sampled suspended instrument-days."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmtgate.sim.daily import FLAG_SUSPENDED
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

from .conftest import SEED, TODAY, FreshEnv
from .support import seconds_of_day, ymd

AUCTION_START = 9 * 3600 + 15 * 60


def assert_suspended_tick(tick: dict, pre_close: float) -> None:
    """The shape of a suspended stock's tick (the module docstring)."""
    assert tick["openInt"] == 1 and tick["stockStatus"] == 1
    assert tick["lastPrice"] == tick["lastClose"] == tick["lastSettlementPrice"] == pre_close > 0
    assert tick["open"] == tick["high"] == tick["low"] == 0.0
    assert tick["volume"] == tick["pvolume"] == tick["transactionNum"] == 0 and tick["amount"] == 0.0
    assert list(tick["bidPrice"]) == list(tick["askPrice"]) == [0.0] * 5
    assert list(tick["bidVol"]) == list(tick["askVol"]) == [0] * 5
    assert seconds_of_day(np.array([tick["time"]]))[0] == AUCTION_START


def _suspended_days(m: SimMarket, before: int, back: int = 60, stocks: int = 400) -> list[tuple[str, int]]:
    """(code, session index) of suspended sessions among the first ``stocks`` stocks, in the ``back``
    sessions before session ``before`` (from the daily chains' flags, not from the intraday layer)."""
    out = []
    for i in [i for i in range(len(m.universe)) if m.universe.kind[i] == "stock"][:stocks]:
        c = m.daily.chain(i)
        lo = max(before - back - c.start, 0)
        for r in np.flatnonzero(c.flags[lo : before - c.start] & FLAG_SUSPENDED):
            out.append((m.universe.instruments[i].code, c.start + lo + int(r)))
    return out


def test_the_whole_quote_push_carries_a_suspended_stock_once_at_0915(fresh_env: FreshEnv) -> None:
    env = fresh_env(start_ms=ms_of(TODAY, AUCTION_START - 9))
    from xtquant import xtdata as xt

    m = env.market
    d = m.calendar.index_of(TODAY)
    suspended = {m.universe.instruments[i].code for i in np.flatnonzero(m.day_context(d).susp_days > 0)}
    assert suspended, "a few stocks are suspended on any day"
    env.sync()
    pushes: list[dict] = []
    xt.subscribe_whole_quote(["SH", "SZ", "BJ"], callback=pushes.append)
    env.publisher.stop()  # from here on this thread delivers, deterministically
    env.publisher.step()
    assert len(pushes) == 1 and len(pushes[0]) > 5000, "the first push: every code's latest snapshot"
    for _ in range(5):  # 09:15:00 .. 09:15:12
        m.clock.advance(3)
        env.publisher.step()
    m.clock.advance(20 * 60)  # into continuous trading: a catch-up, the last slots one by one
    env.publisher.step()
    later = pushes[1:]
    at_0915 = [p for p in later if any(code in suspended for code in p)]
    assert len(at_0915) == 1, "one snapshot of the day, then nothing: it never changes"
    (push,) = at_0915
    assert suspended <= set(push)
    pre = {code: xt.get_instrument_detail(code)["PreClose"] for code in suspended}
    for code in suspended:
        assert_suspended_tick(push[code], pre[code])
    assert any(set(p) - suspended for p in later[-3:]), "the trading stocks kept pushing"
    full = xt.get_full_tick(sorted(suspended))
    assert set(full) == suspended and all(full[c] == push[c] for c in suspended), "it stands all day"


@pytest.fixture(scope="module")
def suspended_days() -> list[tuple[str, int]]:
    m = SimMarket(seed=SEED)
    pairs = _suspended_days(m, m.calendar.index_of(TODAY))
    assert len(pairs) >= 5
    return pairs


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_suspended_session_has_one_flat_tick_and_flat_bars_flagged_suspended(
    fresh_env: FreshEnv, suspended_days: list[tuple[str, int]], data: st.DataObject
) -> None:
    code, d = data.draw(st.sampled_from(suspended_days))
    env: _env.SimEnv = fresh_env()
    from xtquant import xtdata as xt

    day = ymd(env.market.calendar.day(d))
    xt.download_history_data(code, "tick", day, day)
    xt.download_history_data(code, "1m", day, day)
    daily = xt.get_market_data_ex([], [code], "1d", day, day)[code]
    assert daily["suspendFlag"].tolist() == [1] and daily["volume"].tolist() == [0]
    pre = float(daily["preClose"].iloc[0])
    assert daily[["open", "high", "low", "close"]].to_numpy().tolist() == [[pre] * 4]

    ticks = xt.get_market_data_ex([], [code], "tick", day + "000000", day + "235959")[code]
    assert len(ticks) == 1, "one snapshot in the session"
    assert_suspended_tick(ticks.iloc[0].to_dict(), pre)
    assert ticks.index[0] == day + "091500"

    bars = xt.get_market_data_ex([], [code], "1m", day + "000000", day + "235959")[code]
    assert len(bars) == 241 and set(bars["suspendFlag"]) == {1} and set(bars["openInterest"]) == {1}
    assert set(bars["volume"]) == {0} and set(bars["amount"]) == {0.0}
    assert {tuple(r) for r in bars[["open", "high", "low", "close"]].to_numpy().tolist()} == {(pre,) * 4}
    five = xt.get_market_data_ex([], [code], "5m", day + "000000", day + "235959")[code]
    assert len(five) > 0 and set(five["suspendFlag"]) == {1} and set(five["close"]) == {pre}
    unfilled = xt.get_market_data_ex([], [code], "1m", day + "000000", day + "235959", fill_data=False)[code]
    assert all(math.isnan(v) for v in unfilled["close"]), "fill_data=False: a missing bar has no price"


def test_a_trading_day_of_the_same_stock_has_no_suspended_flag(
    fresh_env: FreshEnv, suspended_days: list[tuple[str, int]]
) -> None:
    """The flags are the session's: the first suspended stock's session before its suspension traded."""
    env = fresh_env()
    from xtquant import xtdata as xt

    m = env.market
    code, d = suspended_days[0]
    i = m.index_of(code)
    c = m.daily.chain(i)
    traded = next(s for s in range(d - 1, c.start, -1) if not c.flags[s - c.start] & FLAG_SUSPENDED)
    day = ymd(m.calendar.day(traded))
    xt.download_history_data(code, "tick", day, day)
    xt.download_history_data(code, "1m", day, day)
    ticks = xt.get_market_data_ex([], [code], "tick", day + "000000", day + "235959")[code]
    assert len(ticks) > 10 and 1 not in set(ticks["openInt"]) and 1 not in set(ticks["stockStatus"])
    bars = xt.get_market_data_ex([], [code], "1m", day + "000000", day + "235959")[code]
    assert set(bars["suspendFlag"]) == {0} and bars["volume"].sum() > 0


def test_todays_daily_bar_of_a_suspended_stock_is_flat_and_flagged(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    m = env.market
    d = m.calendar.index_of(TODAY)
    code = m.universe.instruments[int(np.flatnonzero(m.day_context(d).susp_days > 0)[0])].code
    xt.subscribe_quote(code, "1d")  # today's forming bar is visible for subscribed codes
    xt.subscribe_quote(code, "1m")
    bar = xt.get_market_data_ex([], [code], "1d", count=1)[code].iloc[-1]
    pre = xt.get_instrument_detail(code)["PreClose"]
    assert bar["time"] == ms_of(TODAY, 0) and bar["suspendFlag"] == 1 and bar["openInterest"] == 1
    assert [bar[k] for k in ("open", "high", "low", "close", "preClose")] == [pre] * 5 and bar["volume"] == 0
    minutes = xt.get_market_data_ex([], [code], "1m", ymd(TODAY) + "000000", ymd(TODAY) + "235959")[code]
    assert len(minutes) > 0 and set(minutes["suspendFlag"]) == {1} and set(minutes["close"]) == {pre}
