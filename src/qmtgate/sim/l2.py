"""Level-2 streams (逐笔成交 l2transaction, 逐笔委托 l2order) derived from the L1 snapshot path.

Why: L2 consumers check that trades add up to the snapshots they also receive; an independent random
stream would not. Each snapshot slot's traded volume and amount (DayPath.volume/amount) is split into
that slot's trades (DayPath.trades of them, at most ``MAX_TRADES_PER_SLOT``): volumes are positive
integers summing exactly to the slot volume, amounts are the slot's increment of the published
(cent-rounded) cumulative amount shared in proportion (the last trade takes the float remainder), so the transactions timed in (snapshot k-1, snapshot k] sum to
the difference of the two snapshots' cumulative volume and amount. Each trade has a buy and a sell
order in the l2order stream (the aggressive side's order first), priced at the trade price.
Volumes are in the unit of the L1 tick's ``volume`` (lots for A-shares) so the sums compare directly.
"""

from __future__ import annotations

import numpy as np

from .daypath import SLOT_SECONDS, DayPath
from .rand import keyed_rng

MAX_TRADES_PER_SLOT = 20
TRANSACTION_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("price", "<f8"),
        ("volume", "<i8"),
        ("amount", "<f8"),
        ("tradeIndex", "<i8"),
        ("buyNo", "<i8"),
        ("sellNo", "<i8"),
        ("tradeType", "<i4"),
        ("tradeFlag", "<i4"),
    ]
)
ORDER_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("price", "<f8"),
        ("volume", "<i8"),
        ("entrustNo", "<i8"),
        ("entrustType", "<i4"),
        ("entrustDirection", "<i4"),
    ]
)


def transactions(seed: int, row: int, day: int, path: DayPath, day_start_ms: int) -> np.ndarray:
    """Every trade of one instrument-day, in time order (``day_start_ms`` = 00:00 CST of the day)."""
    recs = []
    index = 0
    # the L1 tick publishes its cumulative amount to the cent: share out the published increments
    published = np.round(path.cum_amount, 2)
    for k in np.flatnonzero(path.volume > 0):
        vol = int(path.volume[k])
        amt = float(published[k] - (published[k - 1] if k > 0 else 0.0))
        n = int(max(1, min(int(path.trades[k]) or 1, MAX_TRADES_PER_SLOT, vol)))
        g = keyed_rng(seed, 0x12, row, day, int(k))
        if n > 1:  # n positive integer parts summing to vol
            cuts = np.sort(g.choice(np.arange(1, vol), size=n - 1, replace=False))
            parts = np.diff(np.concatenate([[0], cuts, [vol]]))
        else:
            parts = np.array([vol])
        amounts = amt * parts / vol
        amounts[-1] = amt - float(amounts[:-1].sum())
        slot_ms = day_start_ms + int(SLOT_SECONDS[k] * 1000)
        prev_ms = day_start_ms + int(SLOT_SECONDS[k - 1] * 1000) if k > 0 else slot_ms - 1000
        times = np.linspace(prev_ms + 1, slot_ms, n).astype(np.int64) if n > 1 else [slot_ms]
        buy_side = g.random(n) < 0.5
        for j in range(n):
            index += 1
            buy_no, sell_no = 2 * index - (0 if buy_side[j] else 1), 2 * index - (1 if buy_side[j] else 0)
            recs.append(
                (
                    int(times[j]),
                    float(amounts[j] / parts[j] / 100.0),  # per share: volume is in lots of 100
                    int(parts[j]),
                    float(amounts[j]),
                    index,
                    buy_no,
                    sell_no,
                    0,
                    1 if buy_side[j] else 2,  # 1: buyer-initiated, 2: seller-initiated
                )
            )
    return np.array(recs, dtype=TRANSACTION_DTYPE)


def orders(trades: np.ndarray) -> np.ndarray:
    """The two orders behind each trade, numbered as the trades refer to them: the resting order
    (1 ms before the trade) then the aggressor's (at the trade time)."""
    out = np.zeros(2 * len(trades), dtype=ORDER_DTYPE)
    buy_aggressor = trades["tradeFlag"] == 1
    resting = out[0::2]
    aggressive = out[1::2]
    for half, time_shift, number, direction in (
        (
            resting,
            1,
            np.where(buy_aggressor, trades["sellNo"], trades["buyNo"]),
            np.where(buy_aggressor, 2, 1),
        ),
        (
            aggressive,
            0,
            np.where(buy_aggressor, trades["buyNo"], trades["sellNo"]),
            np.where(buy_aggressor, 1, 2),
        ),
    ):
        half["time"] = trades["time"] - time_shift
        half["price"] = trades["price"]
        half["volume"] = trades["volume"]
        half["entrustNo"] = number
        half["entrustType"] = 1
        half["entrustDirection"] = direction
    return out
