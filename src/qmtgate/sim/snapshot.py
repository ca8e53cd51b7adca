"""Building xtquant tick dicts from per-instrument arrays (one function for history and live).

Field set of the 2024-12 builds (xtquant-api.md §3.3): prices in 元, ``volume`` in 手 (lots),
``pvolume`` in 股, ``amount`` in 元, ``time`` epoch ms; book sizes in 手; unused levels are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .daypath import OPEN_SLOT, PHASE_SUSPENDED, SLOT_PHASE, SLOT_SECONDS
from .intraday import order_book

#: legacy `stockStatus` per openInt phase code (values observed on real feeds; a suspended stock's is
#: the status table's own ``1``, as its openInt: xtquant-api.md §3.4, the wheel's 证券状态 table)
STOCK_STATUS = {PHASE_SUSPENDED: 1, 11: 0, 12: 2, 13: 3, 14: 3, 15: 5, 18: 8}


@dataclass
class SnapshotArrays:
    """Per-instrument state at each one's latest published snapshot (aligned arrays)."""

    slot: np.ndarray  # int64 slot of the snapshot (-1: none yet)
    price: np.ndarray  # int64 ticks (indicative price during the opening auction)
    open: np.ndarray  # int64 ticks, 0 before the opening match
    high: np.ndarray
    low: np.ndarray
    cum_volume: np.ndarray  # lots
    cum_amount: np.ndarray  # 元
    cum_trades: np.ndarray
    pre: np.ndarray  # ticks
    down: np.ndarray
    up: np.ndarray
    tick: np.ndarray  # 元 per tick
    auction_volume: np.ndarray  # lots matched at the opening auction (shown during the auction)


def _prices(ticks: np.ndarray, tick: np.ndarray, three: np.ndarray) -> np.ndarray:
    """Prices in 元 from tick counts, rounded to the instrument's decimals (3 for 0.001 ticks).

    Exactly ``round(ticks * tick, dec)`` per element: a price is a whole number of ticks, so
    ``ticks * tick * 10**dec`` lies within a few ulps of an integer and numpy's rint-based rounding
    lands on the same double as Python's correctly rounded ``round``.
    """
    if ticks.ndim == 2:
        tick, three = tick[:, None], three[:, None]
    v = ticks * tick
    return np.where(three, np.round(v, 3), np.round(v, 2))


#: stockStatus by openInt phase code, as a lookup table
_STATUS_OF_PHASE = np.zeros(32, np.int64)
for _phase, _status in STOCK_STATUS.items():
    _STATUS_OF_PHASE[_phase] = _status


def build_tick_dicts(
    a: SnapshotArrays,
    day_start_ms: int,
    is_index: np.ndarray,
    liquidity: np.ndarray,
    keys: np.ndarray,
    suspended: np.ndarray | None = None,
) -> list[dict]:
    """One tick dict per row of ``a`` (rows with ``slot < 0`` must be filtered out beforehand).

    ``suspended`` (bool per row): instruments suspended for the whole session. Their tick is what QMT
    shows for a suspended stock: ``lastPrice`` the previous close, ``open``/``high``/``low`` 0, no
    volume, amount or trades, an empty book, ``openInt`` and ``stockStatus`` 1 (停牌).

    Every field is computed for the whole burst in numpy and only the final dicts are built in Python:
    the simulator stands in for QMT's own process, and a whole-market burst (~5,500 dicts every 3 s,
    every 0.3 s at 10x) must not eat the gateway's CPU share.
    """
    n = len(a.slot)
    if n == 0:
        return []
    bids, bid_vol, asks, ask_vol = order_book(a.price, a.down, a.up, liquidity, keys, a.slot)
    k = a.slot.astype(np.int64)
    tick = a.tick.astype(np.float64)
    three = tick < 0.01
    halted = np.zeros(n, bool) if suspended is None else np.asarray(suspended, bool)
    phase = np.where(halted, PHASE_SUSPENDED, SLOT_PHASE[k])
    opened = (k >= OPEN_SLOT) & (a.open > 0) & ~halted
    pre = _prices(a.pre, tick, three)
    last = np.where(halted, pre, _prices(a.price, tick, three))
    open_ = np.where(opened, _prices(a.open, tick, three), 0.0)
    high = np.where(opened, _prices(a.high, tick, three), 0.0)
    low = np.where(opened, _prices(a.low, tick, three), 0.0)

    auction = (k < OPEN_SLOT)[:, None]
    first = np.arange(5)[None, :] == 0
    matched = (a.auction_volume * (0.6 + 0.4 * k / OPEN_SLOT)).astype(np.int64)[:, None]
    book_index = (is_index.astype(bool) | halted)[:, None]  # no book: an index, or a suspended stock
    bp = np.where(auction, np.where(first, last[:, None], 0.0), _prices(bids, tick, three))
    ap = np.where(auction, np.where(first, last[:, None], 0.0), _prices(asks, tick, three))
    bv = np.where(auction, np.where(first, matched, 0), bid_vol)
    av = np.where(auction, np.where(first, matched, 0), ask_vol)
    bp, ap = np.where(book_index, 0.0, bp), np.where(book_index, 0.0, ap)
    bv, av = np.where(book_index, 0, bv), np.where(book_index, 0, av)

    cum_v = a.cum_volume.astype(np.int64)
    columns = zip(
        (day_start_ms + SLOT_SECONDS[k].astype(np.int64) * 1000).tolist(),
        last.tolist(),
        open_.tolist(),
        high.tolist(),
        low.tolist(),
        pre.tolist(),
        [round(x, 2) for x in a.cum_amount.astype(np.float64).tolist()],
        cum_v.tolist(),
        (cum_v * 100).tolist(),
        _STATUS_OF_PHASE[phase].tolist(),
        phase.tolist(),
        a.cum_trades.astype(np.int64).tolist(),
        ap.tolist(),
        bp.tolist(),
        av.tolist(),
        bv.tolist(),
        strict=True,
    )
    return [
        {
            "time": t,
            "lastPrice": lp,
            "open": o,
            "high": h,
            "low": lo,
            "lastClose": pc,
            "amount": amt,
            "volume": v,
            "pvolume": pv,
            "stockStatus": st,
            "openInt": ph,
            "transactionNum": tn,
            "lastSettlementPrice": pc,
            "settlementPrice": 0.0,
            "pe": 0.0,
            "askPrice": askp,
            "bidPrice": bidp,
            "askVol": askv,
            "bidVol": bidv,
            "volRatio": 0.0,
            "speed1Min": 0.0,
            "speed5Min": 0.0,
        }
        for t, lp, o, h, lo, pc, amt, v, pv, st, ph, tn, askp, bidp, askv, bidv in columns
    ]
