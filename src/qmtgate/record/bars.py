"""1-minute bars from recorded L1 snapshots, with exactly the simulator's (and QMT's) bar convention.

Convention (docs/simulator.md, ``sim/daypath.minute_bars``): 241 bars a day, labelled by their END
time: 09:30 holds the 09:25 opening match alone, 09:31 .. 11:30 the morning minutes, 13:01 .. 15:00 the
afternoon (15:00 holds the closing match). A snapshot belongs to the bar whose minute contains its time,
ends included (09:31:00 -> 09:31). A snapshot *traded* when the day's cumulative volume grew; bar volume
and amount are the growth of the cumulative values. A bar without trades carries the previous close
(the day's pre-close before the first trade) with zero volume, and every bar's ``pre_close`` is the
previous bar's close.

A recording that began after the opening match (without a backfill) cannot know what traded before
it: its bars start with each code's first complete minute.

The builder keeps one small state per code and is driven by closed minutes: ``build(ticks, upto)`` takes
every snapshot since the previous build (sorted by time) and emits, for every code seen today, each bar
up to index ``upto``. Its state can be restored from the bars already stored (sum of volumes = the
cumulative volume at the last stored bar), which is what lets a restarted recorder continue exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qmtgate.source.convert import day_start_ms

N_BARS = 241
AUCTION_MATCH_S = 9 * 3600 + 25 * 60
AM_OPEN_S = 9 * 3600 + 30 * 60
AM_CLOSE_S = 11 * 3600 + 30 * 60
PM_OPEN_S = 13 * 3600
#: End time of each bar, seconds after 00:00 Asia/Shanghai.
LABEL_SECONDS: tuple[int, ...] = (
    AM_OPEN_S,
    *range(AM_OPEN_S + 60, AM_CLOSE_S + 1, 60),
    *range(PM_OPEN_S + 60, 15 * 3600 + 1, 60),
)
assert len(LABEL_SECONDS) == N_BARS


def bar_index(ts_ms: int, day_start: int) -> int | None:
    """Index (0..240) of the bar a snapshot at ``ts_ms`` belongs to; None before the opening match."""
    ms = ts_ms - day_start
    if ms < AUCTION_MATCH_S * 1000:
        return None
    if ms <= AM_OPEN_S * 1000:
        return 0
    if ms <= AM_CLOSE_S * 1000:
        return -(-(ms - AM_OPEN_S * 1000) // 60_000)  # ceil: a minute includes its end
    if ms <= PM_OPEN_S * 1000:
        return 120  # the lunch break belongs to the 11:30 bar (real feeds repeat the 11:30 snapshot)
    if ms <= 15 * 3600 * 1000:
        return 120 - (-(ms - PM_OPEN_S * 1000) // 60_000)
    return N_BARS - 1  # after-close repeats of the 15:00 snapshot


def label_ms(day: dt.date, index: int) -> int:
    """Epoch ms of bar ``index``'s end time on ``day``."""
    return day_start_ms(day) + LABEL_SECONDS[index] * 1000


def index_of_label(day: dt.date, ts_ms: int) -> int:
    """Inverse of :func:`label_ms` (the bar whose label is ``ts_ms``)."""
    s = (ts_ms - day_start_ms(day)) // 1000
    return LABEL_SECONDS.index(int(s))


def last_closed_index(day: dt.date, now_ms: int, grace_ms: int) -> int:
    """The last bar index whose end time plus ``grace_ms`` lies at or before ``now_ms`` (-1: none)."""
    start = day_start_ms(day)
    k = -1
    for i, sec in enumerate(LABEL_SECONDS):
        if start + sec * 1000 + grace_ms <= now_ms:
            k = i
        else:
            break
    return k


@dataclass
class CodeState:
    """What one code's bars need to continue: cumulative totals at the last bar, its close, the next bar."""

    close: float | None  # previous close (the day's pre-close before the first bar)
    cum_volume: int = 0  # shares
    cum_amount: float = 0.0  # yuan
    next_bar: int = 0
    #: bars before this one were (partly) traded before the recording joined: their snapshots only move
    #: the totals and the close, and no bar is built for them
    unrecorded: int = 0


@dataclass
class _Agg:
    open: float
    high: float
    low: float
    close: float
    volume: int
    amount: float


class MinuteBarBuilder:
    """Bars of one trading day for every code seen in it (see module docstring)."""

    def __init__(self, day: dt.date, *, complete: bool = True) -> None:
        #: False when the recording of this day began after the opening match: a code's first snapshot
        #: then only sets its baseline (its cumulative volume holds trades of minutes not recorded), and
        #: its bars start with the next minute.
        self.complete = complete
        self.day = day
        self.start = day_start_ms(day)
        self.states: dict[str, CodeState] = {}
        self.built = -1  # last bar index emitted for every code

    def restore(self, rows: Iterable[tuple[str, int, float | None, int, float]]) -> None:
        """Continue from stored bars: rows of (code, last bar ts, last close, sum volume, sum amount)."""
        for code, ts, close, volume, amount in rows:
            k = index_of_label(self.day, ts)
            self.states[code] = CodeState(close, int(volume or 0), float(amount or 0.0), k + 1)
            self.built = max(self.built, k)

    def build(self, ticks: Sequence[tuple[str, int, Any, Any, Any, Any]], upto: int) -> list[dict[str, Any]]:
        """Feed snapshots (code, ts, last_price, volume, amount, pre_close) sorted by time, all newer than
        the previous build and not after bar ``upto``'s end; return the bars that closed, as rows."""
        aggs: dict[tuple[str, int], _Agg] = {}
        states = self.states
        for code, ts, price, volume, amount, pre in ticks:
            st = states.get(code)
            if st is None:
                if not self.complete:
                    k = bar_index(ts, self.start)
                    first = 0 if k is None else k + 1
                    states[code] = CodeState(
                        pre if price is None else price,
                        int(volume or 0),
                        float(amount or 0.0),
                        first,
                        first,
                    )
                    continue
                st = states[code] = CodeState(pre)
            elif st.close is None and pre is not None:
                st.close = pre
            if volume is None:
                continue
            if st.unrecorded:
                k = bar_index(ts, self.start)
                if k is not None and k < st.unrecorded:
                    # the rest of the minute the recording joined in: its bar is not built, so its
                    # trades only move the baseline (they must not land in the next bar)
                    if volume > st.cum_volume:
                        st.cum_volume = volume
                        if amount is not None:
                            st.cum_amount = amount
                        if price is not None:
                            st.close = price
                    continue
            dv = volume - st.cum_volume
            if dv <= 0 or price is None:
                continue
            da = (amount - st.cum_amount) if amount is not None else 0.0
            st.cum_volume = volume
            if amount is not None:
                st.cum_amount = amount
            k = bar_index(ts, self.start)
            if k is None:
                continue
            k = max(k, st.next_bar)  # a late snapshot never reopens a closed bar
            a = aggs.get((code, k))
            if a is None:
                aggs[(code, k)] = _Agg(price, price, price, price, dv, da)
            else:
                a.high = max(a.high, price)
                a.low = min(a.low, price)
                a.close = price
                a.volume += dv
                a.amount += da
        out: list[dict[str, Any]] = []
        for code, st in states.items():
            for k in range(st.next_bar, upto + 1):
                a = aggs.get((code, k))
                prev = st.close
                if a is None:
                    row = (prev, prev, prev, prev, 0, 0.0)
                else:
                    row = (a.open, a.high, a.low, a.close, a.volume, a.amount)
                out.append(
                    {
                        "code": code,
                        "ts": self.start + LABEL_SECONDS[k] * 1000,
                        "open": row[0],
                        "high": row[1],
                        "low": row[2],
                        "close": row[3],
                        "pre_close": prev,
                        "volume": row[4],
                        "amount": row[5],
                    }
                )
                st.close = row[3]
            st.next_bar = max(st.next_bar, upto + 1)
        self.built = max(self.built, upto)
        return out
