"""One instrument's full trading day at 3 s resolution, assembled from its daily knots.

Slot order of a day (4,942 slots): 200 opening-auction indicative snapshots (09:15:00-09:24:57),
the opening match (09:25:00), 4,740 continuous intervals (09:30:03-11:30:00, 13:00:03-14:57:00) and
the closing match (15:00:00).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .intraday import SegmentRows, auction_path, simulate_segments
from .timeutil import (
    AM_OPEN,
    AUCTION_SLOTS,
    CLOSE,
    CONTINUOUS_SLOTS,
    N_CONT,
    N_SEG,
    OPEN_AUCTION_MATCH,
    PM_OPEN,
    SEG_BOUNDS,
    SEG_LEN,
    SEG_SIZES,
)

N_AUCTION = len(AUCTION_SLOTS)
OPEN_SLOT = N_AUCTION  # 200
CONT0 = N_AUCTION + 1  # 201
CLOSE_SLOT = CONT0 + N_CONT  # 4941
N_SLOTS = CLOSE_SLOT + 1  # 4942

SLOT_SECONDS = np.concatenate([AUCTION_SLOTS, [OPEN_AUCTION_MATCH], CONTINUOUS_SLOTS, [CLOSE]]).astype(
    np.int64
)

#: openInt / trading-phase code per slot (12 call auction, 13 continuous, 15 closed).
SLOT_PHASE = np.concatenate([np.full(N_AUCTION + 1, 12), np.full(N_CONT, 13), [15]]).astype(np.int64)
#: openInt of a stock suspended for the whole session (xtquant-api.md §3.4: ``1`` suspended). Its one
#: snapshot of the day is published at the first slot (09:15:00) and stands until the close.
PHASE_SUSPENDED = 1
#: The slot of a suspended instrument's snapshot (the first of the day, 09:15:00)
SUSPENDED_SLOT = 0


def _minute_of_slot() -> np.ndarray:
    """Index (0..240) of the 1m bar each slot belongs to; -1 for auction indicative slots."""
    out = np.full(N_SLOTS, -1, np.int64)
    out[OPEN_SLOT] = 0  # the 09:30 bar carries the opening auction
    sec = SLOT_SECONDS[CONT0:CLOSE_SLOT]
    am = sec <= 11 * 3600 + 30 * 60
    out[CONT0:CLOSE_SLOT] = np.where(am, (sec - AM_OPEN + 59) // 60, 120 + (sec - PM_OPEN + 59) // 60)
    out[CLOSE_SLOT] = 240  # the 15:00 bar carries the closing auction
    return out


SLOT_MINUTE = _minute_of_slot()


def slot_at(seconds_of_day: float) -> int:
    """Index of the last slot at or before a time of day (-1 before 09:15:00)."""
    return int(np.searchsorted(SLOT_SECONDS, seconds_of_day, side="right")) - 1


@dataclass
class DayInputs:
    """The daily layer's skeleton of one instrument-day (prices in ticks)."""

    knots: np.ndarray
    seg_high: np.ndarray
    seg_low: np.ndarray
    seg_volume: np.ndarray
    seg_amount: np.ndarray
    close: int
    pre: int
    down: int
    up: int
    tick: float
    p_trade: float
    key: int  # code key for random streams
    day_ordinal: int
    seed: int
    suspended: bool = False  # suspended for the whole session: no trade, one flat snapshot at 09:15


@dataclass
class DayPath:
    """Per-slot arrays of one instrument-day."""

    pre: int
    down: int
    up: int
    tick: float
    emitted: np.ndarray  # bool: a snapshot exists for this slot
    price: np.ndarray  # int64 ticks: last price (indicative price during the auction)
    volume: np.ndarray  # int64 lots traded in the slot
    amount: np.ndarray  # float64 元 traded in the slot
    trades: np.ndarray  # int64 trades in the slot
    #: suspended all session: the only snapshot is SUSPENDED_SLOT's, at the previous close
    suspended: bool = False

    @cached_property
    def cum_volume(self) -> np.ndarray:
        return np.cumsum(self.volume)

    @cached_property
    def cum_amount(self) -> np.ndarray:
        return np.cumsum(self.amount)

    @cached_property
    def cum_trades(self) -> np.ndarray:
        return np.cumsum(self.trades)

    @cached_property
    def traded(self) -> np.ndarray:
        return self.volume > 0

    @cached_property
    def running_high(self) -> np.ndarray:
        """Day high so far (0 before the opening match)."""
        p = np.where(self.traded, self.price, 0)
        return np.maximum.accumulate(p)

    @cached_property
    def running_low(self) -> np.ndarray:
        big = np.iinfo(np.int64).max
        p = np.where(self.traded, self.price, big)
        low = np.minimum.accumulate(p)
        return np.where(low == big, 0, low)

    @cached_property
    def open_price(self) -> int:
        return int(self.price[OPEN_SLOT]) if self.volume[OPEN_SLOT] > 0 else 0


def segment_rows(days: list[DayInputs]) -> SegmentRows:
    """The 16 continuous segments of each given day, as rows for :func:`simulate_segments`."""
    k = np.stack([d.knots for d in days])
    n = len(days)
    rep = lambda v: np.repeat(np.asarray(v, dtype=np.float64), N_SEG)  # noqa: E731
    return SegmentRows(
        start=k[:, :-1].reshape(-1).astype(np.int64),
        end=k[:, 1:].reshape(-1).astype(np.int64),
        high=np.stack([d.seg_high for d in days]).reshape(-1).astype(np.int64),
        low=np.stack([d.seg_low for d in days]).reshape(-1).astype(np.int64),
        volume=np.stack([d.seg_volume[1:-1] for d in days]).reshape(-1).astype(np.int64),
        amount=np.stack([d.seg_amount[1:-1] for d in days]).reshape(-1),
        length=np.tile(SEG_SIZES, n).astype(np.int64),
        p_trade=rep([d.p_trade for d in days]),
        tick=rep([d.tick for d in days]),
        seeds=[[d.seed, 20, d.key, d.day_ordinal, j] for d in days for j in range(N_SEG)],
    )


def build_day_paths(days: list[DayInputs]) -> list[DayPath]:
    """Full-day slot arrays for several instrument-days (vectorised over all their segments)."""
    if not days:
        return []
    seg = simulate_segments(segment_rows(days))
    out = []
    for r, d in enumerate(days):
        rows = slice(r * N_SEG, (r + 1) * N_SEG)
        cont_price = np.empty(N_CONT, np.int64)
        cont_vol = np.empty(N_CONT, np.int64)
        cont_amt = np.empty(N_CONT)
        cont_trd = np.empty(N_CONT, np.int64)
        for j, (a, b) in enumerate(itertools.pairwise(SEG_BOUNDS)):
            L = b - a
            src = rows.start + j
            cont_price[a:b] = seg.price[src, :L]
            cont_vol[a:b] = seg.volume[src, :L]
            cont_amt[a:b] = seg.amount[src, :L]
            cont_trd[a:b] = seg.trades[src, :L]
        ind, active = auction_path(
            int(d.knots[0]), d.down, d.up, [d.seed, 22, d.key, d.day_ordinal], d.p_trade
        )
        has_open = d.seg_volume[0] > 0
        price = np.concatenate([ind, [d.knots[0]], cont_price, [d.close]])
        volume = np.concatenate(
            [np.zeros(N_AUCTION, np.int64), [d.seg_volume[0]], cont_vol, [d.seg_volume[-1]]]
        )
        amount = np.concatenate([np.zeros(N_AUCTION), [d.seg_amount[0]], cont_amt, [d.seg_amount[-1]]])
        trades = np.concatenate(
            [np.zeros(N_AUCTION, np.int64), [max(int(d.seg_volume[0]) // 8, 1 if has_open else 0)], cont_trd,
             [max(int(d.seg_volume[-1]) // 8, 1 if d.seg_volume[-1] else 0)]]
        )  # fmt: skip
        emitted = volume > 0
        emitted[:N_AUCTION] = active & has_open
        price = price.astype(np.int64)
        if d.suspended:  # no trade (the daily layer gives it no volume): one snapshot, at the last close
            emitted[:] = False
            emitted[SUSPENDED_SLOT] = True
            price[SUSPENDED_SLOT] = d.pre
        out.append(DayPath(d.pre, d.down, d.up, d.tick, emitted, price, volume, amount, trades, d.suspended))
    return out


def minute_bars(path: DayPath, upto_slot: int = N_SLOTS - 1) -> dict[str, np.ndarray]:
    """The day's 241 one-minute bars from its slots up to ``upto_slot`` (inclusive).

    Returns arrays over bar positions 0..240 (only bars that have started by ``upto_slot``): ``open
    high low close`` in ticks (NaN-free; bars without trades carry the previous close and are flagged
    in ``filled``), ``volume`` lots, ``amount`` 元."""
    upto = min(upto_slot, N_SLOTS - 1)
    sl = slice(0, upto + 1)
    minute = SLOT_MINUTE[sl]
    traded = path.traded[sl] & (minute >= 0)
    n_bars = int(SLOT_MINUTE[: upto + 1].max()) + 1 if upto >= OPEN_SLOT else 0
    if n_bars == 0:
        z = np.zeros(0, np.int64)
        return {
            "open": z,
            "high": z,
            "low": z,
            "close": z,
            "volume": z,
            "amount": np.zeros(0),
            "filled": z.astype(bool),
        }
    idx = np.flatnonzero(traded)
    bar = minute[idx]
    price = path.price[sl][idx]
    volume = np.bincount(bar, weights=path.volume[sl][idx], minlength=n_bars).astype(np.int64)
    amount = np.bincount(bar, weights=path.amount[sl][idx], minlength=n_bars)
    has = np.bincount(bar, minlength=n_bars) > 0
    high = np.zeros(n_bars, np.int64)
    low = np.full(n_bars, np.iinfo(np.int64).max)
    np.maximum.at(high, bar, price)
    np.minimum.at(low, bar, price)
    first = np.full(n_bars, -1, np.int64)
    last = np.full(n_bars, -1, np.int64)
    # idx is sorted by slot, so the first/last occurrence per bar are first/last trades
    uniq, first_pos = np.unique(bar, return_index=True)
    _, last_pos_rev = np.unique(bar[::-1], return_index=True)
    first[uniq] = price[first_pos]
    last[uniq] = price[len(bar) - 1 - last_pos_rev]
    # bars without trades: carry the previous close (the day's preClose before the first trade)
    prev_close = np.where(has, last, -1)
    carry = np.maximum.accumulate(np.where(prev_close >= 0, np.arange(n_bars), -1))
    carried = np.where(carry >= 0, prev_close[np.maximum(carry, 0)], path.pre)
    close = np.where(has, last, carried)
    return {
        "open": np.where(has, first, carried),
        "high": np.where(has, high, carried),
        "low": np.where(has, low, carried),
        "close": close,
        "volume": volume,
        "amount": amount,
        "filled": ~has,
    }


__all__ = [
    "CLOSE_SLOT",
    "CONT0",
    "N_SLOTS",
    "OPEN_SLOT",
    "PHASE_SUSPENDED",
    "SEG_LEN",
    "SLOT_MINUTE",
    "SLOT_PHASE",
    "SLOT_SECONDS",
    "SUSPENDED_SLOT",
    "DayInputs",
    "DayPath",
    "build_day_paths",
    "minute_bars",
    "slot_at",
]
