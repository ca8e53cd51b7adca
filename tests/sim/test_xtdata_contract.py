"""Contract: the simulated ``xtdata`` answers with the real SDK's shapes, dtypes, units, index formats and
quirks, as recorded in /work/shared/reference/xtquant-api.md (sections 3-6 and the section 9 checklist).

Why: code written for real QMT (the gateway's xtdata source first of all) runs unchanged on the
simulator, so every difference here would be a bug that only shows on a trading PC.

Most tests read the shared environment (seed 0, clock standing at 2026-11-20 10:00:00 CST); tests that
download, subscribe or need another clock use ``fresh_env``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import types

import numpy as np
import pandas as pd
import pytest

from .conftest import LAST_CLOSE_DAY, NOW_MS, TODAY, FreshEnv
from .support import (
    CST,
    CST_MIDNIGHT_MOD,
    MS_PER_DAY,
    assert_book,
    cst,
    day_ms,
    limit_percent,
    limit_prices,
    seconds_of_day,
    sessions_listed,
    tick_size,
    ymd,
)

STOCK = "600000.SH"
SZ_STOCK = "000001.SZ"
ETF = "510300.SH"
INDEX = "000300.SH"
UNKNOWN = "999999.SH"

KLINE_FIELDS = [
    "time", "open", "high", "low", "close", "volume", "amount",
    "settelementPrice", "openInterest", "preClose", "suspendFlag",
]  # fmt: skip
KLINE_DTYPES = {
    "time": "int64", "open": "float64", "high": "float64", "low": "float64", "close": "float64",
    "volume": "int64", "amount": "float64", "settelementPrice": "float64", "openInterest": "int32",
    "preClose": "float64", "suspendFlag": "int32",
}  # fmt: skip
#: The 2024-12 tick field set (xtquant-api.md 3.3, set (a)).
TICK_FIELDS = {
    "time", "lastPrice", "open", "high", "low", "lastClose", "amount", "volume", "pvolume", "stockStatus",
    "openInt", "transactionNum", "lastSettlementPrice", "settlementPrice", "pe", "askPrice", "bidPrice",
    "askVol", "bidVol", "volRatio", "speed1Min", "speed5Min",
}  # fmt: skip
#: get_instrument_detail's 31 keys (xtquant-api.md 5.1).
DETAIL_KEYS = {
    "ExchangeID", "InstrumentID", "InstrumentName", "ProductID", "ProductName", "ProductType",
    "ExchangeCode", "UniCode", "CreateDate", "OpenDate", "ExpireDate", "TradingDay", "PreClose",
    "SettlementPrice", "UpStopPrice", "DownStopPrice", "FloatVolume", "TotalVolume", "LongMarginRatio",
    "ShortMarginRatio", "PriceTick", "VolumeMultiple", "MainContract", "LastVolume", "InstrumentStatus",
    "IsTrading", "IsRecent", "ProductTradeQuota", "ContractTradeQuota", "ProductOpenInterestQuota",
    "ContractOpenInterestQuota",
}  # fmt: skip
MINUTE_BARS_PER_DAY = {"1m": 241, "5m": 48, "15m": 16, "30m": 8, "60m": 4, "1h": 4}


def one_minute_labels() -> list[str]:
    """The 241 1m bar-end labels of a day: 09:30 (the auction), 09:31-11:30, 13:01-15:00."""
    base = dt.datetime(2000, 1, 1)
    am = [base.replace(hour=9, minute=30) + dt.timedelta(minutes=k) for k in range(121)]
    pm = [base.replace(hour=13) + dt.timedelta(minutes=k) for k in range(1, 121)]
    return [t.strftime("%H%M%S") for t in am + pm]


# ---------------------------------------------------------------------------------------------------
# K-lines: get_market_data_ex


def test_daily_frame_columns_dtypes_and_index(xt: types.ModuleType) -> None:
    out = xt.get_market_data_ex([], [STOCK], "1d", count=5)
    assert isinstance(out, dict) and list(out) == [STOCK]
    frame = out[STOCK]
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == KLINE_FIELDS
    assert {c: str(t) for c, t in frame.dtypes.items()} == KLINE_DTYPES
    assert len(frame) == 5
    assert frame.index.name is None
    assert all(isinstance(label, str) and len(label) == 8 and label.isdigit() for label in frame.index)
    assert (frame["time"] % MS_PER_DAY == CST_MIDNIGHT_MOD).all()
    assert [cst(t).strftime("%Y%m%d") for t in frame["time"]] == list(frame.index)
    assert all(cst(t).time() == dt.time(0, 0) for t in frame["time"])
    # not subscribed: today's forming bar is not in the local cache, yesterday's close is the last bar
    assert frame.index[-1] == ymd(LAST_CLOSE_DAY)
    assert (frame["settelementPrice"] == 0.0).all()
    assert (frame["openInterest"] == 15).all(), "stocks carry the trading-phase code 15 (closed) on history"


@pytest.mark.parametrize("period", ["1w", "1mon", "1q", "1hy", "1y"])
def test_longer_periods_use_daily_labels_and_midnight_times(xt: types.ModuleType, period: str) -> None:
    frame = xt.get_market_data_ex([], [STOCK], period, count=3)[STOCK]
    assert list(frame.columns) == KLINE_FIELDS
    assert {c: str(t) for c, t in frame.dtypes.items()} == KLINE_DTYPES
    assert len(frame) == 3
    assert all(len(label) == 8 and label.isdigit() for label in frame.index)
    assert (frame["time"] % MS_PER_DAY == CST_MIDNIGHT_MOD).all()
    assert [cst(t).strftime("%Y%m%d") for t in frame["time"]] == list(frame.index)
    assert frame["time"].is_monotonic_increasing


@pytest.mark.parametrize("period", list(MINUTE_BARS_PER_DAY))
def test_minute_periods_use_14_digit_labels_and_bar_end_times(xt: types.ModuleType, period: str) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "1m", day, day)
    frame = xt.get_market_data_ex([], [STOCK], period, day + "000000", day + "235959")[STOCK]
    assert list(frame.columns) == KLINE_FIELDS
    assert {c: str(t) for c, t in frame.dtypes.items()} == KLINE_DTYPES
    assert len(frame) == MINUTE_BARS_PER_DAY[period]
    assert all(len(label) == 14 and label.isdigit() for label in frame.index)
    assert [cst(t).strftime("%Y%m%d%H%M%S") for t in frame["time"]] == list(frame.index)
    assert (frame["time"] % 60_000 == 0).all()
    clock = [label[8:] for label in frame.index]
    assert not [c for c in clock if "113000" < c <= "130000"], "no bar ends inside the lunch break"
    assert clock[-1] == "150000"
    size = int(period[:-1]) * (60 if period.endswith("h") else 1)
    if size == 1:
        assert clock == one_minute_labels()
    else:  # bar END labels: the first bar closes `size` minutes after 09:30
        first = dt.datetime(2000, 1, 1, 9, 30) + dt.timedelta(minutes=size)
        assert clock[0] == first.strftime("%H%M%S")
        assert clock[len(clock) // 2 - 1] == "113000"


def test_field_list_selects_and_orders_columns(xt: types.ModuleType) -> None:
    full = xt.get_market_data_ex([], [STOCK], "1d", count=4)[STOCK]
    picked = xt.get_market_data_ex(["close", "time", "volume"], [STOCK], "1d", count=4)[STOCK]
    assert list(picked.columns) == ["close", "time", "volume"]
    assert [str(t) for t in picked.dtypes] == ["float64", "int64", "int64"]
    pd.testing.assert_frame_equal(picked, full[["close", "time", "volume"]])
    no_time = xt.get_market_data_ex(["open"], [STOCK], "1d", count=4)[STOCK]
    assert list(no_time.columns) == ["open"], "time is only included when requested"
    assert list(no_time.index) == list(full.index)


def test_count_semantics(xt: types.ModuleType) -> None:
    everything = xt.get_market_data_ex(["time", "close"], [STOCK], "1d", count=-1)[STOCK]
    assert len(everything) > 2000
    assert everything["time"].is_monotonic_increasing and everything.index.is_unique
    last3 = xt.get_market_data_ex(["time", "close"], [STOCK], "1d", count=3)[STOCK]
    pd.testing.assert_frame_equal(last3, everything.iloc[-3:])
    nothing = xt.get_market_data_ex(["time", "close"], [STOCK], "1d", count=0)[STOCK]
    assert nothing.empty and list(nothing.columns) == ["time", "close"]
    too_many = xt.get_market_data_ex(["time", "close"], [STOCK], "1d", count=len(everything) + 500)[STOCK]
    pd.testing.assert_frame_equal(too_many, everything)
    # n last bars ending at end_time; with only a start, the last n bars of the range
    ending = xt.get_market_data_ex(["time"], [STOCK], "1d", "", "20261012", count=2)[STOCK]
    assert list(ending.index) == ["20261009", "20261012"]
    ranged = xt.get_market_data_ex(["time"], [STOCK], "1d", "20261008", "", count=2)[STOCK]
    assert list(ranged.index) == list(everything.index[-2:])
    # -1 with a range: all bars in it
    window = xt.get_market_data_ex(["time"], [STOCK], "1d", "20261101", "20261110", count=-1)[STOCK]
    assert list(window.index) == [d for d in everything.index if "20261101" <= d <= "20261110"]


def test_count_on_minute_bars(xt: types.ModuleType) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "1m", "20261116", day)
    last = xt.get_market_data_ex(["time", "close"], [STOCK], "1m", count=5)[STOCK]
    assert [label[8:] for label in last.index] == ["145600", "145700", "145800", "145900", "150000"]
    assert all(label.startswith(day) for label in last.index)
    ending = xt.get_market_data_ex(["time"], [STOCK], "1m", "", day + "100000", count=3)[STOCK]
    assert list(ending.index) == [day + "095800", day + "095900", day + "100000"]
    many = xt.get_market_data_ex(["time"], [STOCK], "1m", count=10**6)[STOCK]
    assert len(many) % 241 == 0 and len(many) >= 4 * 241
    assert xt.get_market_data_ex(["time"], [STOCK], "1m", count=0)[STOCK].empty


def test_time_range_is_closed_and_accepts_8_and_14_digit_strings_and_datetimes(xt: types.ModuleType) -> None:
    days = xt.get_market_data_ex(["time"], [STOCK], "1d", "20261110", "20261113")[STOCK]
    assert list(days.index) == ["20261110", "20261111", "20261112", "20261113"]
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "1m", day, day)
    by_text = xt.get_market_data_ex(["time", "close"], [STOCK], "1m", day + "093000", day + "093500")[STOCK]
    assert [label[8:] for label in by_text.index] == [
        "093000",
        "093100",
        "093200",
        "093300",
        "093400",
        "093500",
    ]
    naive = dt.datetime.combine(LAST_CLOSE_DAY, dt.time(9, 30))
    by_naive = xt.get_market_data_ex(
        ["time", "close"], [STOCK], "1m", naive, naive + dt.timedelta(minutes=5)
    )[STOCK]
    pd.testing.assert_frame_equal(by_naive, by_text)
    aware = naive.replace(tzinfo=CST).astimezone(dt.timezone.utc)
    by_aware = xt.get_market_data_ex(
        ["time", "close"], [STOCK], "1m", aware, aware + dt.timedelta(minutes=5)
    )[STOCK]
    pd.testing.assert_frame_equal(by_aware, by_text)
    by_date = xt.get_market_data_ex(
        ["time"], [STOCK], "1d", dt.datetime(2026, 11, 10), dt.datetime(2026, 11, 13)
    )[STOCK]
    assert list(by_date.index) == list(days.index)
    # an 8-digit end is 00:00 of that day: no intraday bar of the day itself
    assert xt.get_market_data_ex(["time"], [STOCK], "1m", day, day)[STOCK].empty


def test_fill_data_false_leaves_bars_without_trades_empty(xt: types.ModuleType) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "1m", day, day)
    args = (["open", "high", "low", "close", "volume"], [STOCK], "1m", day + "000000", day + "235959")
    filled = xt.get_market_data_ex(*args)[STOCK]
    raw = xt.get_market_data_ex(*args, fill_data=False)[STOCK]
    assert list(raw.index) == list(filled.index)
    quiet = (filled["volume"] == 0).to_numpy()
    assert quiet.any(), "14:58 and 14:59 have no trades (closing call auction)"
    assert raw[quiet][["open", "high", "low", "close"]].isna().all().all()
    pd.testing.assert_frame_equal(raw[~quiet], filled[~quiet])
    # filled: a bar without trades repeats the previous close
    close = filled["close"].to_numpy()
    for k in np.flatnonzero(quiet):
        assert (filled.iloc[k][["open", "high", "low", "close"]] == close[k - 1]).all()


def test_unknown_code_gives_an_empty_frame_with_the_requested_columns(xt: types.ModuleType) -> None:
    out = xt.get_market_data_ex(["time", "close"], [UNKNOWN, STOCK, "999999.XX"], "1d", count=2)
    assert list(out) == [UNKNOWN, STOCK, "999999.XX"]
    for code in (UNKNOWN, "999999.XX"):
        assert isinstance(out[code], pd.DataFrame) and out[code].empty
        assert list(out[code].columns) == ["time", "close"]
    assert len(out[STOCK]) == 2
    assert list(xt.get_market_data_ex([], ["600000"], "1d", count=1)["600000"].columns) == KLINE_FIELDS
    assert xt.get_market_data_ex([], [UNKNOWN], "tick", count=5) == {}


def test_get_local_data_has_the_get_market_data_ex_shape(xt: types.ModuleType) -> None:
    ex = xt.get_market_data_ex(["time", "close"], [STOCK, SZ_STOCK], "1d", count=3)
    local = xt.get_local_data(["time", "close"], [STOCK, SZ_STOCK], "1d", count=3)
    assert list(local) == list(ex)
    for code in ex:
        pd.testing.assert_frame_equal(local[code], ex[code])


def test_short_aliases_are_the_same_functions(xt: types.ModuleType) -> None:
    assert xt.gmd is xt.get_market_data
    assert xt.gmd2 is xt.get_market_data_ex
    assert xt.gld is xt.get_local_data
    assert xt.t2d is xt.timetag_to_datetime
    assert xt.gsl is xt.get_stock_list_in_sector
    assert xt.get_stock_type is xt.get_instrument_type
    assert xt.supply_history_data is xt.download_history_data


# ---------------------------------------------------------------------------------------------------
# K-lines: get_market_data ({field: DataFrame(codes x times)})


def test_get_market_data_is_field_major_with_codes_as_rows(xt: types.ModuleType) -> None:
    codes = [STOCK, SZ_STOCK, ETF]
    out = xt.get_market_data(["close", "volume"], codes, "1d", count=3)
    assert list(out) == ["close", "volume"]
    ex = xt.get_market_data_ex(["close", "volume"], codes, "1d", count=3)
    labels = list(ex[STOCK].index)
    for field in ("close", "volume"):
        table = out[field]
        assert isinstance(table, pd.DataFrame)
        assert list(table.index) == codes
        assert list(table.columns) == labels
        assert all(isinstance(c, str) and len(c) == 8 for c in table.columns)
        for code in codes:
            np.testing.assert_array_equal(
                table.loc[code].to_numpy(dtype=float), ex[code][field].to_numpy(dtype=float)
            )
    everything = xt.get_market_data([], [STOCK], "1d", count=2)
    assert list(everything) == KLINE_FIELDS
    assert all(t.shape == (1, 2) for t in everything.values())


def test_get_market_data_minute_columns_are_14_digit_labels(xt: types.ModuleType) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "1m", day, day)
    out = xt.get_market_data(["close"], [STOCK], "1m", day + "093000", day + "093200")
    assert list(out["close"].columns) == [day + "093000", day + "093100", day + "093200"]


def test_full_kline_gives_the_latest_session_of_any_code_field_major(xt: types.ModuleType) -> None:
    """get_full_kline reads the K-line mirror: today's bars of every code, no download or subscription."""
    codes = [STOCK, SZ_STOCK, UNKNOWN]
    out = xt.get_full_kline(["time", "close", "volume"], codes)  # period 1m, count 1
    assert list(out) == ["time", "close", "volume"]
    ticks = xt.get_full_tick(codes)
    for field, table in out.items():
        assert list(table.index) == codes
        assert list(table.columns) == [ymd(TODAY) + "100000"], field
        assert table.loc[UNKNOWN].isna().all()
    for code in (STOCK, SZ_STOCK):
        assert out["close"].loc[code].iloc[0] == ticks[code]["lastPrice"]
        assert out["time"].loc[code].iloc[0] == NOW_MS
    daily = xt.get_full_kline(["close", "volume"], [STOCK], "1d")
    assert list(daily["close"].columns) == [ymd(TODAY)]
    assert daily["volume"].loc[STOCK, ymd(TODAY)] == ticks[STOCK]["volume"]
    five = xt.get_full_kline(["close"], [STOCK], "1m", count=5)["close"]
    assert [c[8:] for c in five.columns] == ["095600", "095700", "095800", "095900", "100000"]
    # the mirror is not the local cache: get_market_data_ex still needs a subscription for today
    assert xt.get_market_data_ex(["close"], [STOCK], "1d", count=1)[STOCK].index[-1] == ymd(LAST_CLOSE_DAY)


def test_get_market_data_tick_gives_structured_arrays(xt: types.ModuleType) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "tick", day, day)
    out = xt.get_market_data(["time", "lastPrice", "volume", "askPrice", "bidVol"], [STOCK], "tick", count=20)
    assert list(out) == [STOCK]
    arr = out[STOCK]
    assert isinstance(arr, np.ndarray) and arr.dtype.names == (
        "time",
        "lastPrice",
        "volume",
        "askPrice",
        "bidVol",
    )
    assert len(arr) == 20
    assert arr["askPrice"].shape == (20, 5) and arr["bidVol"].shape == (20, 5)
    assert (np.diff(arr["time"]) > 0).all(), "sorted by time"
    assert cst(int(arr["time"][-1])).strftime("%H%M%S") == "150000"
    frame = xt.get_market_data_ex(["time", "lastPrice", "volume"], [STOCK], "tick", count=20)[STOCK]
    np.testing.assert_array_equal(arr["time"], frame["time"].to_numpy())
    np.testing.assert_array_equal(arr["lastPrice"], frame["lastPrice"].to_numpy())


def test_tick_frames_have_14_digit_labels_and_list_cells(xt: types.ModuleType) -> None:
    day = ymd(LAST_CLOSE_DAY)
    xt.download_history_data(STOCK, "tick", day, day)
    frame = xt.get_market_data_ex([], [STOCK], "tick", day + "093000", day + "093100")[STOCK]
    assert set(frame.columns) == TICK_FIELDS and frame.columns[0] == "time"
    assert str(frame["time"].dtype) == "int64"
    assert [cst(t).strftime("%Y%m%d%H%M%S") for t in frame["time"]] == list(frame.index)
    assert frame.index[0] >= day + "093000" and frame.index[-1] <= day + "093100"
    assert all(isinstance(v, list) and len(v) == 5 for v in frame["askPrice"])
    picked = xt.get_market_data_ex(["lastPrice", "volume"], [STOCK], "tick", day + "093000", day + "093100")[
        STOCK
    ]
    assert list(picked.columns) == ["lastPrice", "volume"]
    assert list(picked.index) == list(frame.index)


# ---------------------------------------------------------------------------------------------------
# snapshots: get_full_tick


def test_full_tick_fields_units_and_book(xt: types.ModuleType) -> None:
    out = xt.get_full_tick([STOCK])
    assert list(out) == [STOCK]
    tick = out[STOCK]
    assert set(tick) == TICK_FIELDS
    assert isinstance(tick["time"], int) and NOW_MS - 60_000 <= tick["time"] <= NOW_MS
    assert cst(tick["time"]).date() == TODAY
    assert tick["openInt"] == 13, "continuous trading at 10:00"
    for key in ("volume", "pvolume", "transactionNum"):
        assert isinstance(tick[key], int)
    for key in ("lastPrice", "open", "high", "low", "lastClose", "amount"):
        assert isinstance(tick[key], float)
    assert tick["pvolume"] == tick["volume"] * 100, "volume in lots, pvolume in shares"
    vwap = tick["amount"] / tick["pvolume"]
    assert tick["low"] <= vwap <= tick["high"], "amount in yuan: its VWAP lies in the day's range"
    assert tick["low"] <= tick["lastPrice"] <= tick["high"] and tick["low"] <= tick["open"] <= tick["high"]
    detail = xt.get_instrument_detail(STOCK)
    assert tick["lastClose"] == detail["PreClose"]
    assert_book(tick, detail["DownStopPrice"], detail["UpStopPrice"])
    assert all(len(tick[k]) == 5 for k in ("askPrice", "bidPrice", "askVol", "bidVol"))


def test_full_tick_omits_unknown_codes_and_expands_market_tokens(xt: types.ModuleType) -> None:
    assert list(xt.get_full_tick([STOCK, UNKNOWN, "999999.XX"])) == [STOCK]
    assert xt.get_full_tick([UNKNOWN]) == {}
    sh = xt.get_full_tick(["SH"])
    assert len(sh) > 2000
    assert all(code.endswith(".SH") for code in sh)
    assert {STOCK, ETF, INDEX} <= set(sh)
    sz_and_bj = xt.get_full_tick(["SZ", "BJ"])
    assert {code[-3:] for code in sz_and_bj} == {".SZ", ".BJ"}
    assert sh[STOCK] == xt.get_full_tick([STOCK])[STOCK]
    index_tick = sh[INDEX]
    assert index_tick["bidPrice"] == [0.0] * 5 and index_tick["askVol"] == [0] * 5, "an index has no book"


# ---------------------------------------------------------------------------------------------------
# reference data


def test_instrument_detail_has_the_31_keys(xt: types.ModuleType) -> None:
    detail = xt.get_instrument_detail(STOCK)
    assert isinstance(detail, dict) and set(detail) == DETAIL_KEYS and len(detail) == 31
    assert detail["ExchangeID"] == "SH" and detail["InstrumentID"] == "600000"
    assert detail["InstrumentName"] == "浦发银行"
    assert detail["TradingDay"] == ymd(TODAY)
    assert len(detail["OpenDate"]) == 8 and detail["OpenDate"].isdigit()
    assert detail["ExpireDate"] in (0, 99999999, "0", "99999999")
    assert detail["PriceTick"] == 0.01 and detail["VolumeMultiple"] == 1
    assert detail["LongMarginRatio"] == detail["ShortMarginRatio"] == 1.7976931348623157e308
    assert detail["MainContract"] == detail["LastVolume"] == 2147483647
    assert detail["InstrumentStatus"] <= 0 and detail["IsTrading"] is False
    assert detail["TotalVolume"] >= detail["FloatVolume"] > 1e8, "share counts in shares (股)"
    yesterday = xt.get_market_data_ex(["close"], [STOCK], "1d", count=1)[STOCK]
    assert detail["PreClose"] == yesterday["close"].iloc[-1] == detail["SettlementPrice"]
    assert (detail["DownStopPrice"], detail["UpStopPrice"]) == limit_prices(detail["PreClose"], 10, 0.01)


def test_suspended_stocks_are_those_with_a_suspended_tick_today(xt: types.ModuleType) -> None:
    """InstrumentStatus >= 1 (days suspended) exactly for the stocks whose tick says openInt 1 (停牌):
    every A-share of the sectors has a tick, a suspended one too (xtquant-api.md §3.4)."""
    codes = [c for s in ("沪深A股", "京市A股") for c in xt.get_stock_list_in_sector(s)]
    live = xt.get_full_tick(["SH", "SZ", "BJ"])
    assert set(codes) <= set(live), "no code of the sector lacks a snapshot"
    status = {c: xt.get_instrument_detail(c)["InstrumentStatus"] for c in codes}
    suspended = {c for c, days in status.items() if days >= 1}
    assert suspended, "a few stocks are suspended on any day"
    assert suspended == {c for c in codes if live[c]["openInt"] == 1}
    for code in suspended:
        tick = live[code]
        detail = xt.get_instrument_detail(code)
        assert tick["lastPrice"] == tick["lastClose"] == detail["PreClose"]
        assert tick["open"] == tick["high"] == tick["low"] == 0.0
        assert tick["volume"] == tick["pvolume"] == tick["transactionNum"] == 0 and tick["amount"] == 0.0
        assert tick["stockStatus"] == 1
        assert tick["bidPrice"] == tick["askPrice"] == [0.0] * 5
        assert tick["bidVol"] == tick["askVol"] == [0] * 5
        assert seconds_of_day(np.array([tick["time"]]))[0] == 9 * 3600 + 15 * 60, "published at 09:15:00"


def test_instrument_detail_per_kind(xt: types.ModuleType) -> None:
    etf = xt.get_instrument_detail(ETF)
    assert etf["PriceTick"] == 0.001
    assert (etf["DownStopPrice"], etf["UpStopPrice"]) == limit_prices(etf["PreClose"], 10, 0.001)
    star = xt.get_instrument_detail("688981.SH")
    assert (star["DownStopPrice"], star["UpStopPrice"]) == limit_prices(star["PreClose"], 20, 0.01)
    gem = xt.get_instrument_detail("300750.SZ")
    assert (gem["DownStopPrice"], gem["UpStopPrice"]) == limit_prices(gem["PreClose"], 20, 0.01)
    assert xt.get_instrument_detail(UNKNOWN) is None
    assert xt.get_instrument_detail("600000") is None, "a code without its market suffix is unknown"
    complete = xt.get_instrument_detail(STOCK, True)
    assert set(complete) >= DETAIL_KEYS and len(complete) > 31
    listed = xt.get_instrument_detail_list([STOCK, UNKNOWN])
    assert list(listed) == [STOCK, UNKNOWN] and listed[UNKNOWN] is None
    assert listed[STOCK] == xt.get_instrument_detail(STOCK)


def test_limit_prices_of_every_stock_and_etf_today(xt: types.ModuleType) -> None:
    """UpStopPrice/DownStopPrice of every stock and ETF follow the board, ST and new-listing rules."""
    sessions = [cst(ms).date() for ms in xt.get_trading_dates("SH")]
    codes = [c for s in ("沪深A股", "京市A股", "沪深ETF") for c in xt.get_stock_list_in_sector(s)]
    seen: dict[int | None, int] = {}
    for code in codes:
        detail = xt.get_instrument_detail(code)
        assert detail["PriceTick"] == tick_size(code), code
        pct = limit_percent(
            code, detail["InstrumentName"], TODAY, sessions_listed(sessions, detail["OpenDate"], TODAY)
        )
        seen[pct] = seen.get(pct, 0) + 1
        if pct is None:  # first days of a listing: no limit is published
            assert detail["UpStopPrice"] > 100 * detail["PreClose"] and detail["DownStopPrice"] <= 0, code
        else:
            expect = limit_prices(detail["PreClose"], pct, tick_size(code))
            assert (detail["DownStopPrice"], detail["UpStopPrice"]) == expect, (code, pct, detail["PreClose"])
    assert {None, 10, 20, 30} <= set(seen), seen


def test_open_date_is_a_session(xt: types.ModuleType) -> None:
    sessions = {cst(ms).strftime("%Y%m%d") for ms in xt.get_trading_dates("SH")}
    first = min(sessions)
    codes = [c for s in ("沪深A股", "京市A股") for c in xt.get_stock_list_in_sector(s)]
    opened = {c: xt.get_instrument_detail(c)["OpenDate"] for c in codes}
    wrong = sorted(c for c, d in opened.items() if d >= first and d not in sessions)
    assert not wrong, f"{len(wrong)} listings open on a day without a session: {wrong[:5]}"


def test_instrument_type_shapes(xt: types.ModuleType) -> None:
    assert xt.get_instrument_type(SZ_STOCK) == {"stock": True}
    assert xt.get_instrument_type(INDEX) == {"index": True}
    etf = xt.get_instrument_type(ETF)
    assert etf.get("etf") is True and all(v is True for v in etf.values()) and "stock" not in etf
    assert xt.get_instrument_type(UNKNOWN) == {}
    assert xt.get_instrument_type(SZ_STOCK, ["stock", "index", "etf"]) == {
        "stock": True,
        "index": False,
        "etf": False,
    }


def test_markets_and_period_list(xt: types.ModuleType) -> None:
    markets = xt.get_markets()
    assert {"SH", "SZ", "BJ", "HK", "IF", "SHO", "SZO", "BKZS"} <= set(markets)
    assert markets["SH"] == "上交所" and markets["SZ"] == "深交所"
    periods = xt.get_period_list()
    assert isinstance(periods, list) and all(isinstance(p, dict) and "name" in p for p in periods)
    assert {"tick", "1m", "5m", "1d"} <= {p["name"] for p in periods}


# ---------------------------------------------------------------------------------------------------
# sectors


STRUCTURE_SECTORS = ["上证A股", "深证A股", "京市A股", "沪深A股", "创业板", "科创板", "沪市ETF", "深市ETF", "沪深ETF", "沪深指数"]  # fmt: skip


def test_sectors_before_and_after_download_sector_data(fresh_env: FreshEnv) -> None:
    fresh_env()
    from xtquant import xtdata as xt

    before = xt.get_sector_list()
    assert isinstance(before, list) and set(STRUCTURE_SECTORS) <= set(before)
    assert "沪深300" not in before and not [s for s in before if s.startswith("SW1")]
    assert xt.get_stock_list_in_sector("沪深300") == [], "constituent sectors need download_sector_data()"
    sh, sz, both = (xt.get_stock_list_in_sector(s) for s in ("上证A股", "深证A股", "沪深A股"))
    assert len(both) > 4500 and set(both) == set(sh) | set(sz) and not set(sh) & set(sz)
    assert all(c.endswith(".SH") and c.startswith(("60", "68")) for c in sh)
    assert all(c.endswith(".SZ") and c.startswith(("00", "30")) for c in sz)
    assert all(c.startswith(("688", "689")) for c in xt.get_stock_list_in_sector("科创板"))
    assert all(c.startswith("30") for c in xt.get_stock_list_in_sector("创业板"))
    assert all(c.endswith(".BJ") for c in xt.get_stock_list_in_sector("京市A股"))
    assert ETF in xt.get_stock_list_in_sector("沪市ETF")
    assert xt.get_stock_list_in_sector("沪深/A股") == both, "path characters are stripped from the name"

    xt.download_sector_data()
    after = xt.get_sector_list()
    assert set(before) <= set(after) and "沪深300" in after
    assert [s for s in after if s.startswith("SW1")]
    hs300 = xt.get_stock_list_in_sector("沪深300")
    assert len(hs300) == 300 and set(hs300) <= set(both)
    banks = xt.get_stock_list_in_sector("SW1银行")
    assert banks and set(banks) <= set(both) | set(xt.get_stock_list_in_sector("京市A股"))
    assert xt.get_stock_list_in_sector("no such sector") == []
    assert xt.get_stock_list_in_sector("SW1no such industry") == []


def test_sector_members_at_a_past_date(xt: types.ModuleType) -> None:
    now = set(xt.get_stock_list_in_sector("沪深A股"))
    then = set(xt.get_stock_list_in_sector("沪深A股", "20261001"))
    assert then < now
    for code in now - then:
        assert xt.get_instrument_detail(code)["OpenDate"] > "20261001"


# ---------------------------------------------------------------------------------------------------
# calendar


def test_trading_dates_are_midnight_cst_ms(xt: types.ModuleType) -> None:
    dates = xt.get_trading_dates("SH")
    assert isinstance(dates, list) and len(dates) > 2500
    assert all(isinstance(d, int) and d % MS_PER_DAY == CST_MIDNIGHT_MOD for d in dates)
    assert dates == sorted(set(dates))
    days = [cst(d).date() for d in dates]
    assert all(d.weekday() < 5 for d in days)
    assert days[-1] == TODAY
    assert xt.get_trading_dates("SZ") == dates
    assert xt.get_trading_dates("SH", count=3) == dates[-3:]
    assert xt.get_trading_dates("SH", count=0) == []
    ranged = xt.get_trading_dates("SH", "20260930", "20261009")
    assert [cst(d).strftime("%Y%m%d") for d in ranged] == ["20260930", "20261008", "20261009"]
    assert xt.get_trading_dates("SSE") == [], "exchange names are not markets"


def test_holidays_are_yyyymmdd_strings_of_weekdays_without_a_session(xt: types.ModuleType) -> None:
    holidays = xt.get_holidays()
    assert all(isinstance(h, str) and len(h) == 8 and h.isdigit() for h in holidays)
    assert holidays == sorted(holidays)
    assert {"20261001", "20261002", "20261005", "20261006", "20261007"} <= set(holidays)
    trading = {cst(d).strftime("%Y%m%d") for d in xt.get_trading_dates("SH")}
    assert not trading & set(holidays)
    assert all(dt.datetime.strptime(h, "%Y%m%d").weekday() < 5 for h in holidays)


def test_trading_calendar(xt: types.ModuleType) -> None:
    october = xt.get_trading_calendar("SH", "20261001", "20261031")
    assert all(isinstance(d, str) and len(d) == 8 for d in october)
    assert october[0] == "20261008" and "20261010" not in october, "make-up Saturdays are not sessions"
    assert not set(october) & set(xt.get_holidays())
    future = xt.get_trading_calendar("SZ", "20261120", "20261231")
    assert future[0] == "20261120" and future[-1] == "20261231", "future weekdays that are not holidays"
    for market in ("IF", "BJ", "SSE"):
        with pytest.raises(Exception, match="SH,SZ"):
            xt.get_trading_calendar(market)
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises a bare Exception
        xt.get_trading_calendar("SH", "20261101", "20351231")


def test_market_last_trade_date(xt: types.ModuleType) -> None:
    assert xt.get_market_last_trade_date("SH") == day_ms(TODAY)


# ---------------------------------------------------------------------------------------------------
# dividends


DIVID_COLUMNS = ["time", "interest", "stockBonus", "stockGift", "allotNum", "allotPrice", "gugai", "dr"]


def test_divid_factors_frame(xt: types.ModuleType) -> None:
    frame = xt.get_divid_factors(STOCK)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == DIVID_COLUMNS and len(frame) > 3
    assert all(len(label) == 8 and label.isdigit() for label in frame.index)
    times = frame["time"].astype("int64")
    assert (times % MS_PER_DAY == CST_MIDNIGHT_MOD).all()
    assert [cst(t).strftime("%Y%m%d") for t in times] == list(frame.index)
    assert (frame["dr"] > 1).all() and (frame["interest"] >= 0).all()
    assert frame.index.max() <= ymd(TODAY)
    bars = xt.get_market_data_ex(["time"], [STOCK], "1d")[STOCK]
    assert set(frame.index) <= set(bars.index), "ex-dates are sessions"
    some = xt.get_divid_factors(STOCK, frame.index[1], frame.index[2])
    assert list(some.index) == list(frame.index[1:3])
    empty = xt.get_divid_factors(UNKNOWN)
    assert empty.empty and list(empty.columns) == DIVID_COLUMNS


@pytest.fixture(scope="module")
def bonus_stock(xt: types.ModuleType) -> str:
    """A stock whose history has both cash dividends and bonus/transfer shares."""
    for code in xt.get_stock_list_in_sector("沪深A股")[:800]:
        f = xt.get_divid_factors(code)
        if len(f) >= 3 and ((f["stockBonus"] + f["stockGift"]) > 0).any() and (f["interest"] > 0).any():
            return code
    pytest.fail("no stock with bonus shares among the first 800")


@pytest.mark.parametrize("dividend_type", ["front", "back", "front_ratio", "back_ratio"])
def test_dividend_adjustment(xt: types.ModuleType, bonus_stock: str, dividend_type: str) -> None:
    fields = ["time", "open", "high", "low", "close", "volume", "amount", "preClose"]
    raw = xt.get_market_data_ex(fields, [bonus_stock], "1d")[bonus_stock]
    adj = xt.get_market_data_ex(fields, [bonus_stock], "1d", dividend_type=dividend_type)[bonus_stock]
    factors = xt.get_divid_factors(bonus_stock)
    assert list(adj.index) == list(raw.index)
    for field in ("time", "volume", "amount"):
        pd.testing.assert_series_equal(adj[field], raw[field], obj=f"{dividend_type} {field}")
    first_ex, last_ex = factors.index[0], factors.index[-1]
    before_first = raw.index < first_ex
    after_last = raw.index >= last_ex
    assert before_first.any() and after_last.any()
    prices = ["open", "high", "low", "close", "preClose"]
    if dividend_type.startswith("front"):  # the latest bars keep their prices, older ones are scaled
        untouched, scaled = after_last, ~after_last
    else:  # the earliest bars keep their prices, later ones are scaled up
        untouched, scaled = before_first, ~before_first
    pd.testing.assert_frame_equal(adj.loc[untouched, prices], raw.loc[untouched, prices])
    if dividend_type.startswith("front"):
        assert (adj.loc[scaled, "close"] < raw.loc[scaled, "close"]).all()
    else:
        assert (adj.loc[scaled, "close"] > raw.loc[scaled, "close"]).all()
    # across every ex-date the adjusted series is continuous: the day before's adjusted close is the
    # ex-date's adjusted reference price (preClose) - exactly for the ratio types, to a tick otherwise
    position = {label: k for k, label in enumerate(raw.index)}
    for ex_date, event in factors.iterrows():
        k = position[ex_date]
        prev_close, ref = adj["close"].iloc[k - 1], adj["preClose"].iloc[k]
        if dividend_type.endswith("ratio"):
            assert prev_close == pytest.approx(ref, rel=1e-9), ex_date
            assert raw["close"].iloc[k - 1] / raw["preClose"].iloc[k] == pytest.approx(event["dr"], rel=1e-9)
        else:
            scale = adj["close"].iloc[k] / raw["close"].iloc[k]
            assert prev_close == pytest.approx(ref, abs=0.006 * max(scale, 1.0) + 1e-9), ex_date
        # within a bar the adjustment is one affine map: O/H/L/C keep their order
        row = adj.iloc[k - 1]
        assert row["low"] <= min(row["open"], row["close"]) <= max(row["open"], row["close"]) <= row["high"]


def test_front_adjustment_formula_on_the_last_ex_date(xt: types.ModuleType, bonus_stock: str) -> None:
    factors = xt.get_divid_factors(bonus_stock)
    ex_date, event = factors.index[-1], factors.iloc[-1]
    window = xt.get_market_data_ex(["close"], [bonus_stock], "1d", "", ex_date, count=3)[bonus_stock]
    front = xt.get_market_data_ex(
        ["close"], [bonus_stock], "1d", "", ex_date, count=3, dividend_type="front"
    )[bonus_stock]
    ratio = 1 + event["stockBonus"] + event["stockGift"] + event["allotNum"]
    expect = (window["close"].iloc[:-1] - event["interest"] + event["allotPrice"] * event["allotNum"]) / ratio
    np.testing.assert_allclose(front["close"].iloc[:-1], expect, rtol=1e-12)
    assert front["close"].iloc[-1] == window["close"].iloc[-1]


# ---------------------------------------------------------------------------------------------------
# downloads


def test_minute_and_tick_history_need_a_download(fresh_env: FreshEnv) -> None:
    fresh_env()
    from xtquant import xtdata as xt

    day = ymd(LAST_CLOSE_DAY)
    assert len(xt.get_market_data_ex([], [SZ_STOCK], "1d", count=3)[SZ_STOCK]) == 3, "daily data is preloaded"
    for period in ("1m", "5m", "1h"):
        frame = xt.get_market_data_ex([], [SZ_STOCK], period, count=10)[SZ_STOCK]
        assert frame.empty and list(frame.columns) == KLINE_FIELDS
    assert xt.get_market_data_ex([], [SZ_STOCK], "tick", count=10) == {}
    got = xt.download_history_data(SZ_STOCK, "1m", day, day)
    assert isinstance(got, dict)
    minute = xt.get_market_data_ex([], [SZ_STOCK], "1m", count=-1)[SZ_STOCK]
    assert len(minute) == 241 and minute.index[0] == day + "093000"
    assert len(xt.get_market_data_ex([], [SZ_STOCK], "5m", count=-1)[SZ_STOCK]) == 48, "5m is built from 1m"
    assert xt.get_market_data_ex([], [SZ_STOCK], "tick", count=10) == {}, "1m does not bring ticks"
    assert xt.get_market_data_ex([], [STOCK], "1m", count=10)[STOCK].empty, "only the downloaded code"
    xt.download_history_data(SZ_STOCK, "tick", day, day)
    ticks = xt.get_market_data_ex([], [SZ_STOCK], "tick", count=10)[SZ_STOCK]
    assert len(ticks) == 10 and ticks.index[-1] == day + "150000"


def test_download_history_data2_progress_payloads(fresh_env: FreshEnv) -> None:
    fresh_env()
    from xtquant import xtdata as xt

    codes = [STOCK, UNKNOWN, SZ_STOCK]
    progress: list[dict] = []
    result = xt.download_history_data2(codes, "1m", "20261116", "20261119", callback=progress.append)
    assert [set(p) for p in progress] == [{"finished", "total", "stockcode", "message"}] * 3
    assert [p["finished"] for p in progress] == [1, 2, 3]
    assert {p["total"] for p in progress} == {3}
    assert [p["stockcode"] for p in progress] == codes
    assert all(p["message"] == "" for p in progress)
    assert isinstance(result, dict) and set(result) <= set(codes) and STOCK in result
    assert isinstance(result[STOCK]["start_time"], dt.datetime) and isinstance(
        result[STOCK]["end_time"], dt.datetime
    )
    assert len(xt.get_market_data_ex(["time"], [STOCK], "1m", count=-1)[STOCK]) == 4 * 241

    def broken(_: dict) -> None:
        raise RuntimeError("a broken progress callback is ignored")

    xt.download_history_data2(ETF, "1d", callback=broken)  # a str is accepted as the list
    with pytest.raises(Exception, match="下载数据失败"):
        xt.download_history_data2([STOCK], "7m")


# ---------------------------------------------------------------------------------------------------
# subscriptions


def _drive(env, seconds: float, steps: int = 1) -> None:
    """Move a fresh environment's manual clock and deliver what happened, on this thread."""
    for _ in range(steps):
        env.market.clock.advance(seconds)
        env.publisher.step()


def test_subscription_payload_shapes(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    env.sync()
    ticks: list[dict] = []
    bars: list[dict] = []
    whole: list[dict] = []
    seqs = [
        xt.subscribe_quote(STOCK, "tick", callback=ticks.append),
        xt.subscribe_quote(STOCK, "1m", callback=bars.append),
        xt.subscribe_whole_quote([STOCK, SZ_STOCK, UNKNOWN], callback=whole.append),
    ]
    assert all(isinstance(s, int) and s > 0 for s in seqs) and len(set(seqs)) == 3
    env.publisher.stop()  # from here on this thread delivers, deterministically
    env.publisher.step()
    assert whole and set(whole[0]) == {STOCK, SZ_STOCK}, "the first whole-quote push is the full snapshot"
    _drive(env, 3, steps=20)
    assert ticks and bars and len(whole) > 1
    for payload in ticks:  # subscribe_quote: {code: [item, ...]}
        assert list(payload) == [STOCK] and isinstance(payload[STOCK], list) and len(payload[STOCK]) >= 1
        assert set(payload[STOCK][0]) == TICK_FIELDS
    for payload in whole:  # subscribe_whole_quote: {code: item}
        assert set(payload) <= {STOCK, SZ_STOCK}
        assert all(isinstance(item, dict) and set(item) == TICK_FIELDS for item in payload.values())
    now = env.market.clock.now_ms()
    assert max(p[STOCK][-1]["time"] for p in ticks) <= now
    for payload in bars:
        (item,) = payload[STOCK]
        assert set(item) == set(KLINE_FIELDS)
        assert all(type(item[k]) is int for k in ("time", "volume", "openInterest", "suspendFlag")), item
        assert all(type(item[k]) is float for k in ("open", "high", "low", "close", "amount", "preClose")), (
            item
        )
        assert item["time"] % 60_000 == 0 and item["time"] >= NOW_MS


def test_whole_quote_market_tokens_and_incremental_pushes(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    env.sync()
    pushes: list[dict] = []
    xt.subscribe_whole_quote(["BJ"], callback=pushes.append)
    env.publisher.stop()
    env.publisher.step()
    assert pushes, "the first push is the current snapshot of the market"
    snapshot = pushes[0]
    assert len(snapshot) > 100 and all(code.endswith(".BJ") for code in snapshot)
    _drive(env, 3, steps=3)
    assert len(pushes) >= 2
    for payload in pushes[1:]:
        assert 0 < len(payload) < len(snapshot), "later pushes carry only the codes that updated"
        assert all(code.endswith(".BJ") for code in payload)


def test_subscription_makes_today_visible(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    before = xt.get_market_data_ex([], [STOCK], "1d", count=1)[STOCK]
    assert before.index[-1] == ymd(LAST_CLOSE_DAY)
    assert xt.get_market_data_ex([], [STOCK], "1m", count=1)[STOCK].empty
    xt.subscribe_quote(STOCK, "1d", callback=None)
    env.publisher.stop()
    today = xt.get_market_data_ex([], [STOCK], "1d", count=2)[STOCK]
    assert list(today.index) == [ymd(LAST_CLOSE_DAY), ymd(TODAY)]
    bar = today.iloc[-1]
    tick = xt.get_full_tick([STOCK])[STOCK]
    assert bar["time"] == day_ms(TODAY) and bar["openInterest"] == 13
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        tick["open"],
        tick["high"],
        tick["low"],
        tick["lastPrice"],
    )
    assert bar["volume"] == tick["volume"] and bar["preClose"] == tick["lastClose"]
    minutes = xt.get_market_data_ex([], [STOCK], "1m", count=-1)[STOCK]
    assert minutes.index[0] == ymd(TODAY) + "093000" and minutes.index[-1] == ymd(TODAY) + "100000"
    assert minutes["volume"].sum() == tick["volume"]


def test_callbacks_run_on_a_non_main_thread(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    env.sync()
    threads: list[threading.Thread] = []
    arrived = threading.Event()

    def on_data(data: dict) -> None:
        threads.append(threading.current_thread())
        arrived.set()

    xt.subscribe_quote(STOCK, "tick", callback=on_data)
    env.market.clock.advance(30)  # the publisher thread notices the clock and delivers
    assert arrived.wait(timeout=10), "no push from the publisher thread"
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_a_raising_callback_does_not_end_its_subscription(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    env.sync()
    calls: list[dict] = []
    healthy: list[dict] = []

    def broken(data: dict) -> None:
        calls.append(data)
        raise ValueError("user code fails")

    xt.subscribe_quote(STOCK, "tick", callback=broken)
    xt.subscribe_quote(STOCK, "tick", callback=healthy.append)
    env.publisher.stop()
    _drive(env, 3, steps=10)
    assert len(calls) >= 3, "the subscription kept delivering after the first exception"
    assert len(healthy) == len(calls)
    assert env.publisher.errors == 0


def test_unsubscribe_stops_pushes(fresh_env: FreshEnv) -> None:
    env = fresh_env()
    from xtquant import xtdata as xt

    env.sync()
    got: list[dict] = []
    seq = xt.subscribe_quote(STOCK, "tick", callback=got.append)
    env.publisher.stop()
    _drive(env, 3, steps=5)
    assert got
    xt.unsubscribe_quote(seq)
    seen = len(got)
    _drive(env, 3, steps=5)
    assert len(got) == seen


# ---------------------------------------------------------------------------------------------------
# time helpers: always Asia/Shanghai, whatever the host's zone


@pytest.fixture(params=["UTC", "America/New_York"])
def host_tz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    request.addfinalizer(time.tzset)  # runs after monkeypatch restored TZ (finalizers run LIFO)
    return request.param


def test_time_helpers_use_china_time_whatever_the_host_zone(xt: types.ModuleType, host_tz: str) -> None:
    assert time.strftime("%Z", time.localtime(NOW_MS / 1000)) != "CST", "the host zone is not China time"
    assert xt.timetag_to_datetime(NOW_MS, "%Y%m%d%H%M%S") == "20261120100000"
    assert xt.timetag_to_datetime(day_ms(TODAY), "%Y%m%d") == "20261120"
    assert xt.datetime_to_timetag("20261120100000") == NOW_MS
    assert xt.datetime_to_timetag("20261120", "%Y%m%d") == day_ms(TODAY)
    frame = xt.get_market_data_ex(
        ["time"], [STOCK], "1d", dt.datetime(2026, 11, 18), dt.datetime(2026, 11, 19)
    )[STOCK]
    assert list(frame.index) == ["20261118", "20261119"]
    assert list(frame["time"]) == [day_ms(dt.date(2026, 11, 18)), day_ms(dt.date(2026, 11, 19))]


# ---------------------------------------------------------------------------------------------------
# connection


def test_connection_calls(xt: types.ModuleType) -> None:
    client = xt.connect()
    assert client.is_connected()
    assert xt.get_client().is_connected()
    with pytest.raises(Exception, match="远程地址不支持仅输入IP"):
        xt.connect("192.168.1.20")
    xt.disconnect()
    assert xt.get_market_data_ex(["close"], [STOCK], "1d", count=1)[STOCK].shape == (1, 1), "not sticky"
    assert xt.reconnect().is_connected()
    assert isinstance(xt.get_data_dir(), str)
