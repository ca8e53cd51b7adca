"""The intraday layer: 3 s snapshot paths inside each continuous segment, and the opening auction.

Given a segment's boundary prices, high, low, volume and amount (from :mod:`.daily`), a segment path
is a set of "traded" 3 s intervals and a price per interval such that:

* the first interval starts from the previous boundary price and the last traded interval ends exactly
  on the segment's closing boundary price;
* the highest traded price is exactly the segment high and the lowest exactly the segment low, every
  price is on the tick grid and inside the day's limits;
* the interval volumes (lots, at least one per traded interval) sum exactly to the segment volume, and
  the amounts to the segment amount, with the segment's VWAP inside its range.

Segments are computed vectorised over rows, a row being one (instrument, day, segment); each row has
its own random stream keyed by (seed, code, day, segment), so the live market (all instruments, one
segment at a time) and history (one instrument, many days) draw identical paths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .rand import keyed_rng
from .timeutil import SEG_LEN

_MAX_LEN = SEG_LEN


@dataclass
class SegmentRows:
    """Inputs of a batch of segments (all arrays have one entry per row; prices in ticks)."""

    start: np.ndarray  # boundary price before the segment
    end: np.ndarray  # boundary price at the segment's end (last traded price)
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray  # lots
    amount: np.ndarray  # 元
    length: np.ndarray  # number of 3 s intervals (300, or 240 for the last segment)
    p_trade: np.ndarray  # probability that an interval has trades
    tick: np.ndarray  # price of one tick in 元
    seeds: list[list[int]]  # one random-stream key per row

    def __len__(self) -> int:
        return len(self.start)

    def block(self, rows: slice) -> SegmentRows:
        """The rows ``rows`` of every input (views, no copy)."""
        return SegmentRows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@dataclass
class SegmentPaths:
    """Outputs, shape (rows, 300); intervals past a row's length are never traded."""

    traded: np.ndarray  # bool
    price: np.ndarray  # int64 ticks, the last price at the end of each interval (carried forward)
    volume: np.ndarray  # int64 lots traded in each interval
    amount: np.ndarray  # float64 元 traded in each interval
    trades: np.ndarray  # int64 number of trades in each interval


#: Rows drawn at a time. Drawing needs some 25 temporaries of (rows, 300) float64; for the whole market
#: (~5,900 rows) that was ~300 MB of short-lived arrays every simulated 15 minutes, which the allocator
#: kept as a high-water mark. Rows are independent (each has its own random stream and every operation
#: is per row), so blocks give the same paths with ~25 MB of temporaries.
BLOCK_ROWS = 512


def simulate_segments(rows: SegmentRows, block_rows: int = BLOCK_ROWS) -> SegmentPaths:
    """Draw the 3 s paths of every row, ``block_rows`` rows at a time (the result does not depend on
    the block size)."""
    n = len(rows)
    if n <= block_rows:
        return _simulate_block(rows)
    L = _MAX_LEN
    out = SegmentPaths(
        traded=np.empty((n, L), bool),
        price=np.empty((n, L), np.int64),
        volume=np.empty((n, L), np.int64),
        amount=np.empty((n, L), np.float64),
        trades=np.empty((n, L), np.int64),
    )
    for lo in range(0, n, block_rows):
        sl = slice(lo, min(lo + block_rows, n))
        part = _simulate_block(rows.block(sl))
        for f in fields(SegmentPaths):
            getattr(out, f.name)[sl] = getattr(part, f.name)
    return out


def _simulate_block(rows: SegmentRows) -> SegmentPaths:
    n = len(rows.start)
    L = _MAX_LEN
    pos = np.arange(L)[None, :]
    valid = pos < rows.length[:, None]
    uni = np.empty((n, L + 5))
    nor = np.empty((n, 2, L))
    for r, key in enumerate(rows.seeds):
        rng = keyed_rng(*key)
        uni[r] = rng.random(L + 5)
        nor[r] = rng.standard_normal((2, L))
    active = rows.volume > 0

    # --- which intervals trade: a Bernoulli mask, plus one forced interval in each third
    traded = (uni[:, :L] < rows.p_trade[:, None]) & valid
    third = rows.length // 3
    forced = np.stack(
        [
            (uni[:, L] * third).astype(np.int64),
            third + (uni[:, L + 1] * third).astype(np.int64),
            2 * third + (uni[:, L + 2] * (rows.length - 2 * third)).astype(np.int64),
        ],
        axis=1,
    )
    ridx = np.arange(n)[:, None]
    traded[ridx, forced] = True
    traded &= active[:, None]
    # a segment cannot have more traded intervals than lots: keep the forced ones and the
    # intervals with the smallest draws
    count = traded.sum(axis=1)
    over = np.flatnonzero(count > rows.volume)
    for r in over:
        keep = int(rows.volume[r])
        prio = np.where(traded[r], uni[r, :L], 2.0)
        prio[forced[r]] = -1.0
        cut = np.partition(prio, keep - 1)[keep - 1]
        traded[r] = prio <= cut
    count = traded.sum(axis=1)

    # --- price path on traded intervals: a bridge from `start` to `end` with forced extremes
    c = np.cumsum(traded, axis=1)
    ce = np.maximum(count, 1)[:, None]
    walk = np.cumsum(nor[:, 0] * traded, axis=1)
    last_pos = np.where(count > 0, L - 1 - np.argmax(traded[:, ::-1], axis=1), 0)
    walk_end = walk[np.arange(n), last_pos][:, None]
    frac = c / ce
    start = rows.start[:, None].astype(np.float64)
    end = rows.end[:, None].astype(np.float64)
    width = np.maximum(rows.high - rows.low, 1)[:, None]
    x = start + frac * (end - start) + (walk - frac * walk_end) * width / np.sqrt(ce) * 0.6
    hi_e = np.maximum(start, end)
    lo_e = np.minimum(start, end)
    up_first = uni[:, L + 3] < 0.5
    f_max = np.where(up_first, forced[:, 0], forced[:, 1])
    f_min = np.where(up_first, forced[:, 1], forced[:, 0])
    xt = np.where(traded, x, np.nan)
    with np.errstate(invalid="ignore"):
        x_max = np.fmax(np.nanmax(np.where(traded, xt, -np.inf), axis=1), hi_e[:, 0]) + 1.0
        x_min = np.fmin(np.nanmin(np.where(traded, xt, np.inf), axis=1), lo_e[:, 0]) - 1.0
    x[np.arange(n), f_max] = x_max
    x[np.arange(n), f_min] = x_min
    high = rows.high[:, None].astype(np.float64)
    low = rows.low[:, None].astype(np.float64)
    above = hi_e + (x - hi_e) * (high - hi_e) / (x_max[:, None] - hi_e)
    below = lo_e - (lo_e - x) * (lo_e - low) / (lo_e - x_min[:, None])
    p = np.where(x > hi_e, above, np.where(x < lo_e, below, x))
    price = np.clip(np.rint(p), low, high).astype(np.int64)
    price[np.arange(n), last_pos] = rows.end
    # carry the last traded price forward through intervals without trades
    filled_idx = np.maximum.accumulate(np.where(traded, pos, -1), axis=1)
    carried = np.take_along_axis(price, np.maximum(filled_idx, 0), axis=1)
    price = np.where(filled_idx >= 0, carried, rows.start[:, None])

    # --- volumes: noisy weights over traded intervals, tilted towards one extreme so that the
    # segment's VWAP is the one its amount implies; integers >= 1 that sum to the segment volume
    w = np.exp(0.8 * nor[:, 1]) * traded
    wsum = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    w = w / wsum
    vwap0 = (w * price).sum(axis=1)
    target = rows.amount / np.maximum(rows.volume * 100.0 * rows.tick, 1e-12)
    toward_high = target > vwap0
    extreme = np.where(toward_high, rows.high, rows.low).astype(np.float64)
    gap = extreme - vwap0
    alpha = np.where(np.abs(gap) > 1e-12, (target - vwap0) / np.where(np.abs(gap) > 1e-12, gap, 1.0), 0.0)
    alpha = np.clip(alpha, 0.0, 0.95)
    w = w * (1.0 - alpha[:, None])
    w[np.arange(n), np.where(toward_high, f_max, f_min)] += alpha
    spare = np.maximum(rows.volume - count, 0)
    cum = np.cumsum(w, axis=1)
    cum /= np.where(cum[:, -1:] > 0, cum[:, -1:], 1.0)
    edges = np.rint(cum * spare[:, None]).astype(np.int64)
    volume = np.diff(np.concatenate([np.zeros((n, 1), np.int64), edges], axis=1), axis=1) + traded

    # --- amounts: interval volume x its price, scaled so the segment amount is exact
    raw = volume * 100.0 * price * rows.tick[:, None]
    total = raw.sum(axis=1)
    scale = np.where(total > 0, rows.amount / np.where(total > 0, total, 1.0), 0.0)
    amount = raw * scale[:, None]
    lot_per_trade = 3.0 + 12.0 * uni[:, L + 4]
    trades = np.where(traded, np.maximum(np.rint(volume / lot_per_trade[:, None]), 1), 0).astype(np.int64)
    return SegmentPaths(traded=traded, price=price, volume=volume, amount=amount, trades=trades)


def auction_path(
    open_ticks: int, down: int, up: int, key: list[int], p_active: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indicative prices of the opening call auction (09:15:00-09:24:57, 200 snapshots), converging
    on the opening price; and which snapshots are published (order activity)."""
    ind, active = auction_paths(
        np.array([open_ticks], np.int64),
        np.array([down], np.int64),
        np.array([up], np.int64),
        [key],
        np.array([p_active], np.float64),
    )
    return ind[0], active[0]


_FADE = np.linspace(1.0, 0.0, 200)
_SQRT_N = np.sqrt(np.arange(1, 201))


def auction_paths(
    open_ticks: np.ndarray, down: np.ndarray, up: np.ndarray, keys: list[list[int]], p_active: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`auction_path` of many rows (row ``r`` drawn from the stream ``keys[r]``; every operation
    after the draws is per row, so a row's path is its own whatever the batch): the whole market's day
    skeleton draws ~5,900 of them."""
    n = len(keys)
    noise = np.empty((n, 200))
    uni = np.empty((n, 200))
    for r, key in enumerate(keys):
        rng = keyed_rng(*key)
        noise[r] = rng.standard_normal(200)
        uni[r] = rng.random(200)
    active = uni < np.maximum(p_active, 0.3)[:, None]
    drift = np.cumsum(noise, axis=1) / _SQRT_N * 0.004 * _FADE
    ind = np.clip(np.rint(open_ticks[:, None] * np.exp(drift)), down[:, None], up[:, None]).astype(np.int64)
    active[:, -1] = True
    return ind, active


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def hash01(*keys: np.ndarray | int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) from integer keys (splitmix64); vectorised, no RNG state."""
    h = np.zeros(np.broadcast(*[np.asarray(k) for k in keys]).shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = h ^ np.asarray(k).astype(np.uint64)
            h = h + _GOLD
            h = (h ^ (h >> np.uint64(30))) * _M1
            h = (h ^ (h >> np.uint64(27))) * _M2
            h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def order_book(
    last: np.ndarray,
    down: np.ndarray,
    up: np.ndarray,
    liquidity: np.ndarray,
    keys: np.ndarray,
    slot: np.ndarray | int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Five-level book (bid/ask prices in ticks, sizes in lots) consistent with the last price and the
    limits: bid1 <= last <= ask1, no level beyond a limit (empty levels are 0), a locked limit-up shows
    only bids and a locked limit-down only asks."""
    lvl = np.arange(5)[None, :]
    u = hash01(keys[:, None], slot if np.ndim(slot) == 0 else np.asarray(slot)[:, None], lvl + 100)
    u2 = hash01(keys[:, None], slot if np.ndim(slot) == 0 else np.asarray(slot)[:, None], lvl + 200)
    u0 = u[:, 0]
    spread = np.where(liquidity[:, None] > 0.6, 1, 1 + (u0[:, None] < 0.4))[:, 0]
    bid1 = np.where(u0 < 0.5, last, last - 1)
    bid1 = np.minimum(bid1, last)
    ask1 = np.maximum(bid1 + spread, last)
    steps = np.cumsum(1 + (u > 0.85), axis=1) - 1
    bids = bid1[:, None] - steps
    asks = ask1[:, None] + steps
    depth = (liquidity[:, None] * 400 + 5) * np.exp(1.2 * (u2 - 0.5)) * (1 + 0.3 * lvl)
    bid_vol = np.maximum(np.rint(depth), 1).astype(np.int64)
    ask_vol = np.maximum(np.rint(depth[:, ::-1] * (0.6 + 0.8 * u2)), 1).astype(np.int64)
    at_up = last >= up
    at_dn = last <= down
    bid_ok = (bids >= down[:, None]) & (bids > 0) & ~at_dn[:, None]
    ask_ok = (asks <= up[:, None]) & ~at_up[:, None]
    bid_vol = np.where(at_up[:, None] & (lvl == 0), bid_vol * 50, bid_vol)
    ask_vol = np.where(at_dn[:, None] & (lvl == 0), ask_vol * 50, ask_vol)
    bids = np.where(at_up[:, None], up[:, None] - lvl, bids)
    asks = np.where(at_dn[:, None], down[:, None] + lvl, asks)
    bid_ok = np.where(at_up[:, None], bids >= down[:, None], bid_ok)
    ask_ok = np.where(at_dn[:, None], asks <= up[:, None], ask_ok)
    return (
        np.where(bid_ok, bids, 0),
        np.where(bid_ok, bid_vol, 0),
        np.where(ask_ok, asks, 0),
        np.where(ask_ok, ask_vol, 0),
    )
