"""Reference arithmetic for the simulator's tests, written from the fact sheets, not from the simulator:
China-time conversions, A-share price limits, tick grids, and the checks a tick's order book must pass."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import numpy as np

CST = ZoneInfo("Asia/Shanghai")
MS_PER_DAY = 86_400_000
CST_MIDNIGHT_MOD = 57_600_000  # 00:00 CST = 16:00 UTC of the previous day

#: Main-board ST/*ST limits go from 5% to 10% on this day (a-share-market.md).
ST_LIMIT_CHANGE = dt.date(2026, 7, 6)
#: ChiNext's registration-system reform: 20% limits from this day.
CHINEXT_REFORM = dt.date(2020, 8, 24)


def cst(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=CST)


def day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=CST).timestamp() * 1000)


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def seconds_of_day(ms: np.ndarray) -> np.ndarray:
    """China wall-clock seconds of day of epoch-ms stamps."""
    return ((np.asarray(ms, dtype=np.int64) + 8 * 3_600_000) % MS_PER_DAY) // 1000


def is_etf(code: str) -> bool:
    symbol, market = code.split(".")
    return (market == "SH" and symbol.startswith("5")) or (market == "SZ" and symbol.startswith("15"))


def tick_size(code: str) -> float:
    return 0.001 if is_etf(code) else 0.01


def limit_percent(code: str, name: str, day: dt.date, listed_sessions: int) -> int | None:
    """Daily price limit in percent on ``day`` (None: no limit), from the exchanges' rules.

    ``listed_sessions`` counts the sessions before ``day`` since listing (0 on the listing day)."""
    symbol, market = code.split(".")
    if is_etf(code):
        return 10
    if listed_sessions < (1 if market == "BJ" else 5):  # registration-system IPOs
        return None
    st = name.startswith(("ST", "*ST"))
    if market == "BJ":
        return 30
    if symbol.startswith(("688", "689")):
        return 20
    if symbol.startswith("30"):
        if day >= CHINEXT_REFORM:
            return 20
        return 5 if st else 10
    if st:
        return 10 if day >= ST_LIMIT_CHANGE else 5
    return 10


def sessions_listed(sessions: list[dt.date], open_date: str, day: dt.date) -> int:
    """Sessions since listing before ``day`` (0 on the listing day; large for listings before the
    first of ``sessions``, the ascending session calendar)."""
    listed = dt.datetime.strptime(open_date, "%Y%m%d").date()
    if listed < sessions[0]:
        return 10**6
    return bisect.bisect_left(sessions, day) - bisect.bisect_left(sessions, listed)


def limit_prices(pre: float, percent: int, tick: float) -> tuple[float, float]:
    """(down, up) = preClose x (1 -/+ p%), rounded half up to the tick, in exact decimal arithmetic."""
    q = Decimal(str(tick))
    p = Decimal(str(pre))
    up = (p * (100 + percent) / 100).quantize(q, ROUND_HALF_UP)
    down = (p * (100 - percent) / 100).quantize(q, ROUND_HALF_UP)
    return float(down), float(up)


def on_grid(prices: np.ndarray, tick: float) -> np.ndarray:
    """Whether each price is a whole number of ticks (and has no float noise beyond the decimals)."""
    steps = np.asarray(prices, dtype=np.float64) / tick
    return np.abs(steps - np.rint(steps)) < 1e-6


def assert_book(tick: dict, down: float | None = None, up: float | None = None) -> None:
    """Five levels a side; prices strictly ordered away from the touch; empty levels are 0 with 0
    volume and come last; bid1 <= last <= ask1 when both sides quote; one-sided at a limit."""
    bids, asks = list(tick["bidPrice"]), list(tick["askPrice"])
    bid_vol, ask_vol = list(tick["bidVol"]), list(tick["askVol"])
    assert len(bids) == len(asks) == len(bid_vol) == len(ask_vol) == 5
    live_bids = [p for p in bids if p > 0]
    live_asks = [p for p in asks if p > 0]
    assert bids[: len(live_bids)] == live_bids and asks[: len(live_asks)] == live_asks, "gaps in the book"
    assert all(a > b for a, b in itertools.pairwise(live_bids)), bids
    assert all(b > a for a, b in itertools.pairwise(live_asks)), asks
    assert all((p > 0) == (v > 0) for p, v in zip(bids + asks, bid_vol + ask_vol, strict=True))
    last = tick["lastPrice"]
    if live_bids:
        assert live_bids[0] <= last, (live_bids, last)
    if live_asks:
        assert last <= live_asks[0], (last, live_asks)
    if up is not None and last >= up:
        assert not live_asks, "nobody sells at limit-up"
    if down is not None and last <= down:
        assert not live_bids, "nobody buys at limit-down"
    if down is not None and up is not None:
        assert all(down <= p <= up for p in live_bids + live_asks), (down, up, bids, asks)
