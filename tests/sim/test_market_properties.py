"""Properties of the simulated market that must hold for every instrument and every session: prices on
the tick grid and inside the day's limits (computed here from the exchanges' rules, not by the
simulator), consistent OHLC, every coarser bar the exact aggregate of the finer data it is made of
(snapshots -> 1m -> 5m..60m, snapshots -> 1d -> 1w..1y), no data outside sessions, and the same data
whatever order it was generated in.

Instruments and sessions are drawn by hypothesis, derandomized (the same draws on every run), mixing
plain stocks with the cases the rules single out: ST stocks (whose main-board limit changed on
2026-07-06), recent listings (no limit on their first days) and ETFs (0.001 grid).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmtgate.sim.timeutil import ms_of
from qmtgate.sim.xtquant import _env

from .conftest import LAST_CLOSE_DAY, NOW_MS, FreshEnv
from .support import (
    CST_MIDNIGHT_MOD,
    MS_PER_DAY,
    ST_LIMIT_CHANGE,
    assert_book,
    cst,
    is_etf,
    limit_percent,
    limit_prices,
    on_grid,
    seconds_of_day,
    sessions_listed,
    tick_size,
    ymd,
)


def prop(max_examples: int) -> settings:
    """Deterministic hypothesis settings: the same examples on every run, no example database."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def hms(h: int, m: int, s: int = 0) -> int:
    return h * 3600 + m * 60 + s


AUCTION_START, AUCTION_MATCH, AM_OPEN, AM_CLOSE = hms(9, 15), hms(9, 25), hms(9, 30), hms(11, 30)
PM_OPEN, CLOSE = hms(13, 0), hms(15, 0)
#: Recent quarter whose whole-market intraday skeleton the live session builds anyway; ETF draws stay
#: in it because an ETF's history outside it needs its index's every member.
ETF_WINDOW = ("20261008", ymd(LAST_CLOSE_DAY))


# ---------------------------------------------------------------------------------------------------
# what is drawn from


class Catalog:
    """Codes to draw from and the session calendar; a plain class with a short repr, so that
    hypothesis's failure reports stay readable."""

    def __init__(
        self,
        stocks: list[str],
        st_stocks: list[str],
        new_listings: list[str],
        etfs: list[str],
        sessions: list[dt.date],
    ) -> None:
        self.stocks, self.st_stocks, self.new_listings, self.etfs = stocks, st_stocks, new_listings, etfs
        self.sessions = sessions

    def __repr__(self) -> str:
        return f"<Catalog: {len(self.stocks)} stocks, {len(self.etfs)} ETFs>"

    def sessions_listed(self, open_date: str, day: dt.date) -> int:
        return sessions_listed(self.sessions, open_date, day)


@pytest.fixture(scope="module")
def catalog(xt: types.ModuleType, sim_env: _env.SimEnv) -> Catalog:
    stocks = xt.get_stock_list_in_sector("沪深A股") + xt.get_stock_list_in_sector("京市A股")
    universe = sim_env.market.universe  # only to find the special cases quickly; facts come from xtdata
    st_stocks = [c for c in stocks if universe.get(c).name.startswith(("ST", "*ST"))]
    new_listings = [c for c in stocks if universe.get(c).list_date >= dt.date(2026, 9, 1)]
    etfs = xt.get_stock_list_in_sector("沪深ETF")
    sessions = [cst(ms).date() for ms in xt.get_trading_dates("SH", "", ymd(LAST_CLOSE_DAY))]
    assert len(st_stocks) > 20 and len(new_listings) > 5 and len(etfs) > 100
    return Catalog(sorted(stocks), sorted(st_stocks), sorted(new_listings), sorted(etfs), sessions)


def draw_code(data: st.DataObject, catalog: Catalog, etfs: bool = False) -> str:
    pools = [catalog.stocks, catalog.st_stocks, catalog.new_listings] + ([catalog.etfs] if etfs else [])
    return data.draw(st.one_of(*[st.sampled_from(p) for p in pools]), label="code")


def label_day(label: str) -> dt.date:
    return dt.datetime.strptime(label[:8], "%Y%m%d").date()


def day_limits(
    xt: types.ModuleType, catalog: Catalog, code: str, labels: list[str], pre: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(down, up) per daily bar from its preClose; -inf/+inf on days without a limit."""
    detail = xt.get_instrument_detail(code)
    down = np.full(len(labels), -np.inf)
    up = np.full(len(labels), np.inf)
    for k, label in enumerate(labels):
        day = label_day(label)
        pct = limit_percent(
            code, detail["InstrumentName"], day, catalog.sessions_listed(detail["OpenDate"], day)
        )
        if pct is not None:
            down[k], up[k] = limit_prices(float(pre[k]), pct, tick_size(code))
    return down, up


# ---------------------------------------------------------------------------------------------------
# daily bars


def check_daily(xt: types.ModuleType, catalog: Catalog, code: str, frame: pd.DataFrame) -> None:
    assert len(frame), code
    tick = tick_size(code)
    labels = list(frame.index)
    o, h, low, c, pre = (frame[f].to_numpy() for f in ("open", "high", "low", "close", "preClose"))
    volume, amount, suspended = (
        frame["volume"].to_numpy(),
        frame["amount"].to_numpy(),
        frame["suspendFlag"].to_numpy(),
    )
    # sessions only, stamped 00:00 CST
    assert set(map(label_day, labels)) <= set(catalog.sessions)
    assert (frame["time"] % MS_PER_DAY == CST_MIDNIGHT_MOD).all()
    # the grid and OHLC
    for name, prices in zip(("open", "high", "low", "close", "preClose"), (o, h, low, c, pre), strict=True):
        bad = ~on_grid(prices, tick)
        assert not bad.any(), f"{code} {name} off the {tick} grid on {np.array(labels)[bad][:5]}"
    assert (low > 0).all()
    assert (low <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all(), code
    # limits of each day, from its preClose and the rules
    down, up = day_limits(xt, catalog, code, labels, pre)
    eps = tick / 1000
    broken = (low < down - eps) | (h > up + eps)
    assert not broken.any(), (
        f"{code} outside its limits on {np.array(labels)[broken][:5]}: "
        f"low {low[broken][:5]} < {down[broken][:5]} or high {h[broken][:5]} > {up[broken][:5]}"
    )
    # suspension: no trades, one price; otherwise lots and yuan make a VWAP inside the day's range
    assert ((volume == 0) == (suspended == 1)).all(), code
    flat = suspended == 1
    assert (o[flat] == pre[flat]).all() and (c[flat] == pre[flat]).all()  # high/low: see the xfail below
    traded = volume > 0
    vwap = amount[traded] / (volume[traded] * 100.0)
    assert ((low[traded] - tick <= vwap) & (vwap <= h[traded] + tick)).all(), (
        f"{code}: volume lots, amount yuan"
    )
    # preClose is the previous close, except on ex-dates (the ex-rights reference price)
    factors = xt.get_divid_factors(code)
    position = {label: k for k, label in enumerate(labels)}
    same = pre[1:] == c[:-1]
    for ex_date, event in factors.iterrows():
        k = position.get(ex_date)
        if k is None or k == 0:
            continue
        same[k - 1] = True
        shares = 1 + event["stockBonus"] + event["stockGift"] + event["allotNum"]
        reference = (c[k - 1] - event["interest"] + event["allotPrice"] * event["allotNum"]) / shares
        assert abs(pre[k] - reference) <= tick / 2 + 1e-9, (code, ex_date, pre[k], reference)
    assert same.all(), f"{code}: preClose != previous close on {np.array(labels[1:])[~same][:5]}"


@prop(max_examples=40)
@given(data=st.data())
def test_daily_bars_whole_history(xt: types.ModuleType, catalog: Catalog, data: st.DataObject) -> None:
    code = draw_code(data, catalog)
    check_daily(xt, catalog, code, xt.get_market_data_ex([], [code], "1d")[code])


@prop(max_examples=6)
@given(data=st.data())
def test_etf_daily_bars(xt: types.ModuleType, catalog: Catalog, data: st.DataObject) -> None:
    code = data.draw(st.sampled_from(catalog.etfs), label="etf")
    frame = xt.get_market_data_ex([], [code], "1d", *ETF_WINDOW)[code]
    check_daily(xt, catalog, code, frame)
    assert on_grid(frame["close"].to_numpy(), 0.001).all()


def test_index_daily_bars(xt: types.ModuleType, catalog: Catalog) -> None:
    """Indices: 0.01-point grid, consistent OHLC, no limits, volume and amount from their members."""
    for index in [*xt.get_stock_list_in_sector("沪深指数"), "899050.BJ"]:
        frame = xt.get_market_data_ex([], [index], "1d", *ETF_WINDOW)[index]
        assert list(frame.index) == [ymd(d) for d in catalog.sessions if ymd(d) >= ETF_WINDOW[0]], index
        prices = frame[["open", "high", "low", "close", "preClose"]].to_numpy()
        assert on_grid(prices.ravel(), 0.01).all() and (prices > 0).all(), index
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all(), index
        assert (frame[["open", "close"]].max(axis=1) <= frame["high"]).all(), index
        assert (frame["preClose"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all(), index
        assert (frame["volume"] > 0).all() and (frame["suspendFlag"] == 0).all(), index
        vwap = frame["amount"] / (frame["volume"] * 100)
        assert ((vwap > 0.5) & (vwap < 500)).all(), f"{index}: a member-price VWAP in yuan per share"


def test_st_limit_change_and_unlimited_first_days_show_in_the_data(
    xt: types.ModuleType, catalog: Catalog
) -> None:
    """The rule changes are exercised, not only respected: main-board ST stocks move beyond 5% only from
    2026-07-06, and some new listing moves beyond its board's limit on its first days."""
    main_st = [c for c in catalog.st_stocks if c.startswith(("60", "00"))]
    frames = xt.get_market_data_ex(["close", "preClose"], main_st, "1d", "20260101", ymd(LAST_CLOSE_DAY))
    beyond_5 = {"before": 0, "after": 0}
    for frame in frames.values():
        for label, close, pre in frame.itertuples():
            down, up = limit_prices(pre, 5, 0.01)
            if not down <= close <= up:
                beyond_5["before" if label_day(label) < ST_LIMIT_CHANGE else "after"] += 1
    assert beyond_5["before"] == 0 < beyond_5["after"], beyond_5
    pops = []
    for code in catalog.new_listings:
        first = xt.get_market_data_ex(["high", "preClose"], [code], "1d", count=-1)[code].iloc[:5]
        pops.append((first["high"] / first["preClose"]).max())
    assert max(pops) > 1.3, "new listings trade beyond +30% on their unlimited first days"


# ---------------------------------------------------------------------------------------------------
# intraday: snapshots -> 1m -> Nm, and 1m -> 1d


ONE_MINUTE_LABELS = [
    f"{t // 3600:02d}{t // 60 % 60:02d}00"
    for t in [AM_OPEN + 60 * k for k in range(121)] + [PM_OPEN + 60 * k for k in range(1, 121)]
]


def aggregate(frame: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    """Bars of consecutive equal ``groups``: open of the first bar with trades, high/low over bars with
    trades (a bar without trades only carries the previous close), close of the last, sums of volume and
    amount; groups without any trade keep their first bar's (carried) prices."""
    rows = []
    for g in pd.unique(groups):
        part = frame[groups == g]
        traded = part[part["volume"] > 0]
        src = traded if len(traded) else part.iloc[:1]
        rows.append(
            {
                "open": src["open"].iloc[0],
                "high": src["high"].max(),
                "low": src["low"].min(),
                "close": part["close"].iloc[-1],
                "volume": part["volume"].sum(),
                "amount": part["amount"].sum(),
            }
        )
    return pd.DataFrame(rows)


def assert_bars_equal(
    actual: pd.DataFrame, expect: pd.DataFrame, what: str, amount_atol: float = 0.0
) -> None:
    assert len(actual) == len(expect), what
    for f in ("open", "high", "low", "close", "volume"):
        a, e = actual[f].to_numpy(), expect[f].to_numpy()
        bad = a != e
        assert not bad.any(), (
            f"{what}: {f} differs at {np.flatnonzero(bad)[:5]}: {a[bad][:5]} != {e[bad][:5]}"
        )
    np.testing.assert_allclose(actual["amount"], expect["amount"], rtol=1e-6, atol=amount_atol, err_msg=what)


def ticks_to_minutes(ticks: pd.DataFrame, pre_close: float) -> pd.DataFrame:
    """1m bars from snapshots: a snapshot at t belongs to the bar ending at t rounded up to the minute;
    the opening auction (<= 09:30) belongs to the 09:30 bar."""
    sod = seconds_of_day(ticks["time"].to_numpy())
    end = np.where(sod <= AM_OPEN, AM_OPEN, (sod + 59) // 60 * 60)
    volume = np.diff(np.concatenate([[0], ticks["volume"].to_numpy()]))
    amount = np.diff(np.concatenate([[0.0], ticks["amount"].to_numpy()]))
    price = ticks["lastPrice"].to_numpy()
    rows = []
    last = pre_close
    for label in ONE_MINUTE_LABELS:
        sec = int(label[:2]) * 3600 + int(label[2:4]) * 60
        sel = end == sec
        traded = sel & (volume > 0)
        if traded.any():
            p = price[traded]
            rows.append({"open": p[0], "high": p.max(), "low": p.min(), "close": p[-1]})
            last = p[-1]
        else:
            rows.append({"open": last, "high": last, "low": last, "close": last})
        rows[-1].update(volume=int(volume[sel].sum()), amount=float(amount[sel].sum()))
    return pd.DataFrame(rows)


def check_ticks(code: str, ticks: pd.DataFrame, daily: pd.Series, down: float, up: float) -> None:
    tick = tick_size(code)
    times = ticks["time"].to_numpy()
    assert (np.diff(times) > 0).all()
    sod = seconds_of_day(times)
    assert ((sod >= AUCTION_START) & (sod <= CLOSE)).all(), "snapshots only between 09:15:00 and 15:00:00"
    assert not ((sod > AM_CLOSE) & (sod <= PM_OPEN)).any(), "no snapshot in the lunch break but 11:30:00"
    assert not ((sod > AUCTION_MATCH) & (sod < AM_OPEN)).any(), "nothing between the opening match and 09:30"
    volume = ticks["volume"].to_numpy()
    assert (np.diff(volume) >= 0).all() and (np.diff(ticks["amount"].to_numpy()) >= -1e-6).all()
    assert (np.diff(ticks["transactionNum"].to_numpy()) >= 0).all()
    assert (ticks["pvolume"].to_numpy() == volume * 100).all()
    assert (ticks["lastClose"] == daily["preClose"]).all()
    price = ticks["lastPrice"].to_numpy()
    assert on_grid(price, tick).all() and ((price >= down - tick / 1000) & (price <= up + tick / 1000)).all()
    auction = sod < AM_OPEN
    phase = ticks["openInt"].to_numpy()
    assert (phase[auction] == 12).all() and (phase[(sod >= AM_OPEN) & (sod < CLOSE)] == 13).all()
    assert (phase[sod == CLOSE] == 15).all()
    pre_match = sod < AUCTION_MATCH
    assert (volume[pre_match] == 0).all() and (ticks["open"].to_numpy()[pre_match] == 0).all()
    for record in ticks.to_dict("records"):
        if seconds_of_day(np.array([record["time"]]))[0] < AUCTION_MATCH:  # indicative price, matched volume
            assert record["bidPrice"][0] == record["askPrice"][0] == record["lastPrice"]
        else:
            assert_book(record, down, up)
            for p in record["bidPrice"] + record["askPrice"]:
                assert p == 0 or on_grid(np.array([p]), tick)[0]
    final = ticks.iloc[-1]
    assert seconds_of_day(np.array([final["time"]]))[0] == CLOSE or daily["volume"] == 0
    assert final["volume"] == daily["volume"]
    assert final["lastPrice"] == daily["close"]
    if daily["volume"]:
        assert (final["open"], final["high"], final["low"]) == (daily["open"], daily["high"], daily["low"])
        assert final["amount"] == pytest.approx(daily["amount"], rel=1e-9, abs=0.011)


def check_intraday(xt: types.ModuleType, catalog: Catalog, code: str, label: str, daily: pd.Series) -> None:
    """One session of one instrument: 1d == aggregate(1m) == aggregate(snapshots); Nm == aggregate(1m);
    snapshots only in session windows, on the grid, inside the limits, with a consistent book."""
    xt.download_history_data2([code], "1m", label, label)
    xt.download_history_data2([code], "tick", label, label)
    minutes = xt.get_market_data_ex([], [code], "1m", label + "000000", label + "235959")[code]
    assert list(minutes.index) == [label + t for t in ONE_MINUTE_LABELS]
    assert (minutes["time"].map(lambda t: cst(t).strftime("%Y%m%d%H%M%S")) == minutes.index).all()
    down, up = day_limits(xt, catalog, code, [label], np.array([daily["preClose"]]))
    assert minutes["low"].min() >= down[0] - 1e-9 and minutes["high"].max() <= up[0] + 1e-9
    assert on_grid(minutes[["open", "high", "low", "close"]].to_numpy().ravel(), tick_size(code)).all()
    ticks = xt.get_market_data_ex([], [code], "tick", label + "000000", label + "235959")
    if daily["volume"] == 0:  # suspended: nothing trades, every bar carries the previous close
        assert not ticks or ticks[code]["volume"].max() == 0, "a suspended stock does not trade"
        assert (minutes["volume"] == 0).all()
        assert (minutes[["open", "high", "low", "close"]].to_numpy() == daily["preClose"]).all()
        return  # the daily bar's high/low: see test_suspended_days_trade_at_one_price

    # the daily bar is the aggregate of its 241 minute bars
    whole_day = aggregate(minutes, np.zeros(len(minutes), int))
    assert_bars_equal(whole_day, pd.DataFrame([daily])[whole_day.columns], f"{code} {label} 1d vs 1m")

    # each minute bar is the aggregate of its snapshots
    ticks = ticks[code]
    check_ticks(code, ticks, daily, float(down[0]), float(up[0]))
    expect = ticks_to_minutes(ticks, float(daily["preClose"]))
    assert_bars_equal(
        minutes.reset_index(drop=True), expect, f"{code} {label} 1m vs ticks", amount_atol=0.011
    )

    # N-minute bars are the aggregates of the 1m bars in (previous label, label]
    one = [int(x[8:10]) * 60 + int(x[10:12]) for x in minutes.index]
    for period, size in (("5m", 5), ("15m", 15), ("30m", 30), ("60m", 60)):
        coarse = xt.get_market_data_ex([], [code], period, label + "000000", label + "235959")[code]
        ends = [int(x[8:10]) * 60 + int(x[10:12]) for x in coarse.index]
        groups = np.array([bisect.bisect_left(ends, t) for t in one])
        assert len(ends) == (240 // size) and groups.max() == len(ends) - 1
        assert_bars_equal(
            coarse.reset_index(drop=True), aggregate(minutes, groups), f"{code} {label} {period}"
        )


@pytest.mark.slow
@prop(max_examples=6)
@given(data=st.data())
def test_intraday_bars_aggregate_snapshots(
    xt: types.ModuleType, catalog: Catalog, data: st.DataObject
) -> None:
    code = draw_code(data, catalog, etfs=True)
    window = ETF_WINDOW if is_etf(code) else ("", ymd(LAST_CLOSE_DAY))
    days = xt.get_market_data_ex([], [code], "1d", *window)[code]
    label = data.draw(st.sampled_from(list(days.index)), label="session")
    check_intraday(xt, catalog, code, label, days.loc[label])


@pytest.fixture(scope="module")
def recent_days(xt: types.ModuleType, catalog: Catalog) -> pd.DataFrame:
    """Daily bars of every stock over the recent window (one batched query), indexed by (code, label)."""
    frames = xt.get_market_data_ex([], catalog.stocks, "1d", *ETF_WINDOW)
    recent = pd.concat({code: frame for code, frame in frames.items() if len(frame)}, names=["code", "label"])
    codes = recent.index.get_level_values("code")
    first = ~codes.duplicated()
    recent["first_session"] = first & (recent.index.get_level_values("label") > ETF_WINDOW[0])
    recent["new"] = codes.isin(catalog.new_listings)
    recent["st"] = codes.isin(catalog.st_stocks) & codes.str.startswith(("60", "00"))
    return recent


def special_session(recent: pd.DataFrame, case: str) -> tuple[str, str]:
    """A (code, session) the rules single out, found in the recent window."""
    codes = recent.index.get_level_values("code")
    if case == "listing day":  # no limit on a main-board/ChiNext/STAR listing's first 5 sessions
        hit = recent["first_session"] & recent["new"] & ~codes.str.endswith(".BJ")
    elif case == "BJ listing day":  # no limit on the first session only
        hit = recent["first_session"] & recent["new"] & codes.str.endswith(".BJ")
    elif case == "ST beyond 5%":  # main-board ST stocks have 10% limits since 2026-07-06
        move = (recent["close"] / recent["preClose"] - 1).abs()
        hit = recent["st"] & (move > 0.055)
    elif case == "locked at a limit":  # one price all day, away from the previous close
        hit = (
            (recent["volume"] > 0)
            & (recent["high"] == recent["low"])
            & (recent["close"] != recent["preClose"])
        )
    else:
        raise ValueError(case)
    if not hit.any():
        pytest.fail(f"no {case} in the recent window")
    return recent.index[np.flatnonzero(hit)[0]]


SPECIAL_CASES = ["listing day", "BJ listing day", "ST beyond 5%", "locked at a limit"]


@pytest.mark.slow
@pytest.mark.parametrize("case", SPECIAL_CASES)
def test_intraday_special_sessions(
    xt: types.ModuleType, catalog: Catalog, recent_days: pd.DataFrame, case: str
) -> None:
    code, label = special_session(recent_days, case)
    check_intraday(xt, catalog, code, label, recent_days.loc[(code, label)])


def test_suspended_days_trade_at_one_price(recent_days: pd.DataFrame) -> None:
    suspended = recent_days[recent_days["suspendFlag"] == 1]
    assert len(suspended), "some stock is suspended in the recent window"
    assert (suspended["volume"] == 0).all()
    flat = (suspended["high"] == suspended["preClose"]) & (suspended["low"] == suspended["preClose"])
    assert flat.all(), (
        f"{(~flat).sum()} of {len(suspended)} suspended days have a range: {list(suspended.index[~flat][:3])}"
    )


# ---------------------------------------------------------------------------------------------------
# daily -> weekly ... yearly


PERIOD_KEYS = {
    "1w": lambda d: d.isocalendar()[:2],
    "1mon": lambda d: (d.year, d.month),
    "1q": lambda d: (d.year, (d.month - 1) // 3),
    "1hy": lambda d: (d.year, (d.month - 1) // 6),
    "1y": lambda d: (d.year,),
}


@prop(max_examples=12)
@given(data=st.data())
def test_long_period_bars_aggregate_daily_bars(
    xt: types.ModuleType, catalog: Catalog, data: st.DataObject
) -> None:
    code = draw_code(data, catalog)
    period = data.draw(st.sampled_from(list(PERIOD_KEYS)), label="period")
    daily = xt.get_market_data_ex([], [code], "1d")[code]
    coarse = xt.get_market_data_ex([], [code], period)[code]
    keys = [PERIOD_KEYS[period](label_day(x)) for x in daily.index]
    index = {k: n for n, k in enumerate(dict.fromkeys(keys))}
    groups = np.array([index[k] for k in keys])
    expect = aggregate(daily, groups)
    assert_bars_equal(coarse.reset_index(drop=True), expect, f"{code} {period}")
    last_of_group = np.flatnonzero(np.diff(np.append(groups, -1)) != 0)
    assert list(coarse.index) == [daily.index[k] for k in last_of_group], (
        "labelled with the period's last session"
    )
    assert list(coarse["time"]) == list(daily["time"].iloc[last_of_group])
    first_of_group = np.flatnonzero(np.diff(np.insert(groups, 0, -1)) != 0)
    assert list(coarse["preClose"]) == list(daily["preClose"].iloc[first_of_group])


# ---------------------------------------------------------------------------------------------------
# sessions only


def test_no_data_on_weekends_or_holidays(xt: types.ModuleType, catalog: Catalog) -> None:
    """Around the 2026 National Day holiday (Oct 1-7, and the Saturday make-up working day Oct 10)."""
    holidays = set(xt.get_holidays())
    sessions = {ymd(d) for d in catalog.sessions}
    codes = ["600000.SH", "000001.SZ", "300750.SZ", "510300.SH", "000300.SH", catalog.etfs[-1]]
    daily = xt.get_market_data_ex(["time"], codes, "1d", "20260920", "20261015")
    expect = ["20260921", "20260922", "20260923", "20260924", "20260928", "20260929", "20260930",
              "20261008", "20261009", "20261012", "20261013", "20261014", "20261015"]  # fmt: skip
    for code in codes:
        assert list(daily[code].index) == expect, code
    assert not set(expect) & holidays
    code = "000001.SZ"
    xt.download_history_data2([code], "1m", "20260920", "20261015")
    minutes = xt.get_market_data_ex(["time"], [code], "1m", "20260920", "20261016")[code]
    assert sorted({label[:8] for label in minutes.index}) == expect
    assert len(minutes) == 241 * len(expect)
    xt.download_history_data2([code], "tick", "20260930", "20261008")
    assert xt.get_market_data_ex(["time"], [code], "tick", "20261001", "20261007235959") == {}
    ticks = xt.get_market_data_ex(["time"], [code], "tick", "20260930145500", "20261008092000")[code]
    assert {label[:8] for label in ticks.index} == {"20260930", "20261008"}
    assert {label[:8] for label in ticks.index} <= sessions


# ---------------------------------------------------------------------------------------------------
# determinism


TARGETS = [("600519.SH", "20260316"), ("000016.SZ", "20260707"), ("688981.SH", "20261119")]
DECOYS = ["601318.SH", "000002.SZ", "688111.SH", "300059.SZ", "002594.SZ"]

FINGERPRINT = """
import hashlib, json, sys
import numpy as np


def digest(frame):
    h = hashlib.sha256()
    h.update(json.dumps(list(map(str, frame.index))).encode())
    for col in frame.columns:
        values = frame[col].tolist()
        h.update(col.encode() + json.dumps(values).encode())
    return h.hexdigest()


def fingerprint(xtdata, targets):
    out = {}
    for code, day in targets:
        xtdata.download_history_data2([code], "1m", day, day)
        xtdata.download_history_data2([code], "tick", day, day)
        out[f"{code} 1d"] = digest(xtdata.get_market_data_ex([], [code], "1d")[code])
        out[f"{code} {day} 1m"] = digest(xtdata.get_market_data_ex([], [code], "1m", day + "000000", day + "235959")[code])
        out[f"{code} {day} tick"] = digest(xtdata.get_market_data_ex([], [code], "tick", day + "000000", day + "235959")[code])
        out[f"{code} divid"] = digest(xtdata.get_divid_factors(code))
    return out
"""

SUBPROCESS = (
    FINGERPRINT
    + """
import qmtgate.sim

targets, decoys, now_ms = json.loads(sys.argv[1])
env = qmtgate.sim.install(seed=0, clock="manual", start_ms=now_ms, download_seconds_per_code=0.0)
from xtquant import xtdata

xtdata.enable_hello = False
# other codes and other days first, in another order, one at a time and in a batch
for code in decoys:
    xtdata.download_history_data2([code], "1m", "20240102", "20240105")
    xtdata.get_market_data_ex([], [code], "1m", "20240102", "20240106")
xtdata.get_market_data_ex([], decoys + [c for c, _ in targets], "1d", "20230101", "20230301")
print(json.dumps(fingerprint(xtdata, list(reversed(targets)))))
"""
)


@pytest.mark.slow
def test_data_does_not_depend_on_generation_order(xt: types.ModuleType) -> None:
    namespace: dict = {}
    exec(FINGERPRINT, namespace)
    here = namespace["fingerprint"](xt, TARGETS)
    args = json.dumps([TARGETS, DECOYS, NOW_MS])
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    differ = sorted(k for k in here if here[k] != there.get(k))
    assert not differ, f"generated differently in a fresh process, other order: {differ}"


def test_live_snapshots_equal_tick_history(xt: types.ModuleType, fresh_env: FreshEnv) -> None:
    """The whole-market live session and one instrument's tick history draw the same paths."""
    codes = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "510300.SH", "000300.SH"]
    day = ymd(LAST_CLOSE_DAY)
    at = ms_of(LAST_CLOSE_DAY, hms(10, 0))
    history = {}
    for code in codes:
        xt.download_history_data2([code], "tick", day, day)
        ticks = xt.get_market_data_ex([], [code], "tick", day + "000000", day + "100000")[code]
        history[code] = ticks.iloc[-1].to_dict()
    fresh_env(start_ms=at)
    from xtquant import xtdata

    live = xtdata.get_full_tick(codes)
    assert set(live) == set(codes)
    for code in codes:
        assert live[code] == history[code], code


@given(data=st.data())
@prop(12)
def test_segment_paths_do_not_depend_on_the_block_size(sim_env: _env.SimEnv, data: st.DataObject) -> None:
    """The whole market is drawn in blocks of rows (bounded temporaries); a row's path is the same
    whatever block it falls in."""
    from dataclasses import fields

    from qmtgate.sim.intraday import SegmentPaths, simulate_segments

    m = sim_env.market
    d = m.calendar.index_on_or_before(LAST_CLOSE_DAY)
    j = data.draw(st.integers(0, 15), label="segment")
    lo = data.draw(st.integers(0, len(m.universe) - 300), label="first row")
    rows = m._segment_rows(m.day_context(d), j).block(slice(lo, lo + 300))
    whole = simulate_segments(rows, block_rows=300)
    blocked = simulate_segments(rows, block_rows=data.draw(st.integers(1, 299), label="block"))
    for f in fields(SegmentPaths):
        np.testing.assert_array_equal(getattr(blocked, f.name), getattr(whole, f.name), err_msg=f.name)


def test_a_segment_is_drawn_once_for_concurrent_readers(fresh_env: FreshEnv) -> None:
    """Readers of one segment share a single draw, made outside the seed-wide lock (which stays free
    for other queries meanwhile)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    from qmtgate.sim import market as market_mod

    m = fresh_env().market
    d = m.calendar.index_on_or_before(LAST_CLOSE_DAY) - 3  # a session no other test has drawn
    m.day_context(d)
    draws: list[int] = []
    lock_free_while_drawing: list[bool] = []
    real = market_mod.simulate_segments

    def counting(rows: object, *a: object) -> object:
        draws.append(1)

        def probe() -> None:  # from another thread: an RLock is always free to its own holder
            got = m._shared.lock.acquire(blocking=False)
            lock_free_while_drawing.append(got)
            if got:
                m._shared.lock.release()

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join()
        threading.Event().wait(0.2)  # let the other readers arrive while this draw is running
        return real(rows, *a)

    with mock.patch.object(market_mod, "simulate_segments", counting):
        m._shared.segments.pop((d, 5), None)
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda _: m.day_segment(d, 5), range(4)))
    assert len(draws) == 1
    assert lock_free_while_drawing == [True]
    assert all(g is got[0] for g in got)
