"""Building xtquant tick dicts from per-instrument arrays (one function for history and live).

Field set of the 2024-12 builds (xtquant-api.md §3.3): prices in 元, ``volume`` in 手 (lots),
``pvolume`` in 股, ``amount`` in 元, ``time`` epoch ms; book sizes in 手; unused levels are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .daypath import OPEN_SLOT, SLOT_PHASE, SLOT_SECONDS
from .intraday import order_book

#: legacy `stockStatus` per openInt phase code (values observed on real feeds)
STOCK_STATUS = {11: 0, 12: 2, 13: 3, 14: 3, 15: 5, 18: 8}


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


def build_tick_dicts(
    a: SnapshotArrays,
    day_start_ms: int,
    is_index: np.ndarray,
    liquidity: np.ndarray,
    keys: np.ndarray,
) -> list[dict]:
    """One tick dict per row of ``a`` (rows with ``slot < 0`` must be filtered out beforehand)."""
    bids, bid_vol, asks, ask_vol = order_book(a.price, a.down, a.up, liquidity, keys, a.slot)
    out = []
    zeros_f = [0.0] * 5
    zeros_i = [0] * 5
    for r in range(len(a.slot)):
        k = int(a.slot[r])
        tick = float(a.tick[r])
        dec = 3 if tick < 0.01 else 2
        phase = int(SLOT_PHASE[k])
        opened = k >= OPEN_SLOT and a.open[r] > 0
        last = round(float(a.price[r]) * tick, dec)
        pre = round(float(a.pre[r]) * tick, dec)
        if is_index[r]:
            bp, ap, bv, av = zeros_f, zeros_f, zeros_i, zeros_i
        elif k < OPEN_SLOT:
            matched = int(a.auction_volume[r] * (0.6 + 0.4 * k / OPEN_SLOT))
            bp = [last, 0.0, 0.0, 0.0, 0.0]
            ap = [last, 0.0, 0.0, 0.0, 0.0]
            bv = [matched, 0, 0, 0, 0]
            av = [matched, 0, 0, 0, 0]
        else:
            bp = [round(float(x) * tick, dec) for x in bids[r]]
            ap = [round(float(x) * tick, dec) for x in asks[r]]
            bv = bid_vol[r].tolist()
            av = ask_vol[r].tolist()
        cum_v = int(a.cum_volume[r])
        out.append(
            {
                "time": day_start_ms + int(SLOT_SECONDS[k]) * 1000,
                "lastPrice": last,
                "open": round(float(a.open[r]) * tick, dec) if opened else 0.0,
                "high": round(float(a.high[r]) * tick, dec) if opened else 0.0,
                "low": round(float(a.low[r]) * tick, dec) if opened else 0.0,
                "lastClose": pre,
                "amount": round(float(a.cum_amount[r]), 2),
                "volume": cum_v,
                "pvolume": cum_v * 100,
                "stockStatus": STOCK_STATUS.get(phase, 0),
                "openInt": phase,
                "transactionNum": int(a.cum_trades[r]),
                "lastSettlementPrice": pre,
                "settlementPrice": 0.0,
                "pe": 0.0,
                "askPrice": ap,
                "bidPrice": bp,
                "askVol": av,
                "bidVol": bv,
                "volRatio": 0.0,
                "speed1Min": 0.0,
                "speed5Min": 0.0,
            }
        )
    return out
