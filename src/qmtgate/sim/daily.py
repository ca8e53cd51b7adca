"""The daily layer of the simulated market: one bar per instrument per session, and the intraday
"knots" (prices at the 16 segment boundaries of continuous trading) that the intraday layer fills in.

Design
------
A day is: opening auction, 16 continuous segments (15 min each, the last 12 min) and the closing
auction. For each segment the daily layer draws its boundary prices, high, low, volume and amount;
the daily bar is exactly the aggregate of those. The intraday layer then draws 3 s paths that hit each
segment's boundary prices, high and low exactly, with exactly its volume and amount. So a daily bar
always aggregates its minute bars, which aggregate its snapshots, while a day costs 18 numbers.

Each instrument's history is generated on its own, vectorised over days (a "chain"): a shock path
clipped to the day's limits, pinned to a realistic price level at the calendar's end, rounded to the
tick grid and re-clipped against the previous close until every close is within its limits. Random
streams are keyed by (seed, code, purpose[, month]), never by call order, so any subset of instruments
and dates can be generated in any order with identical results. Indices are computed from their
members' prices; ETFs track their index.

Prices are integers in ticks (0.01, or 0.001 for funds; indices 0.01 points); volume in lots (手);
amount in 元.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calendar import TradingCalendar
from .rand import keyed_rng
from .rules import CHINEXT_REFORM, ST_LIMIT_CHANGE, Board, limit_ticks
from .timeutil import N_SEG, SEG_SIZES, day_start_ms
from .universe import Universe

#: Relative intraday volume per segment (U-shaped), proportional to segment length.
SEG_PROFILE = np.array(
    [1.9, 1.4, 1.15, 1.0, 0.9, 0.85, 0.8, 0.8, 0.95, 0.85, 0.8, 0.8, 0.85, 0.95, 1.15, 1.35]
)
SEG_PROFILE = SEG_PROFILE * SEG_SIZES / SEG_SIZES.max()
_SEG_FRAC = np.concatenate([[0.0], np.cumsum(SEG_PROFILE) / SEG_PROFILE.sum()])
_SEG_W = np.sqrt(SEG_PROFILE / SEG_PROFILE.sum())
_SEG_SPAN = np.sqrt(SEG_PROFILE / SEG_PROFILE.max())

NO_LIMIT = -1
#: Members join an index only after this many sessions (new listings' first days are excluded).
INDEX_SEASONING = 10
#: Margin kept inside the limits by the continuous path so rounding never breaches them.
LIMIT_MARGIN = 0.005

FLAG_SUSPENDED = 1
FLAG_RESUMED = 2
FLAG_LOCKED = 4  # one-price day at the limit (一字板)


def code_key(code: str) -> int:
    """A stable integer per code for keying random streams (independent of universe order)."""
    return zlib.crc32(code.encode())


@dataclass(frozen=True)
class DividendEvent:
    """One ex-rights/ex-dividend day, per share: cash in 元 (pre-tax), bonus/gift/rights in shares."""

    day: dt.date
    interest: float
    stock_bonus: float
    stock_gift: float
    allot_num: float
    allot_price: float
    dr: float  # ex-rights factor: previous close / adjusted previous close


@dataclass
class Chain:
    """One instrument's daily path over calendar indices ``start`` .. end of calendar."""

    start: int
    close: np.ndarray  # int64 ticks
    pre: np.ndarray  # int64 ticks (adjusted previous close; issue price on the listing day)
    open: np.ndarray  # int64 ticks
    volume: np.ndarray  # int64 lots
    flags: np.ndarray  # int8 FLAG_*
    limit_pct: np.ndarray  # int8, NO_LIMIT for none
    dividends: list[DividendEvent] = field(default_factory=list)

    def rows(self, lo: int, hi: int) -> slice:
        """Slice of chain rows for calendar indices [lo, hi] (clamped)."""
        return slice(max(lo - self.start, 0), max(hi - self.start + 1, 0))


#: The array fields of a Chain (an index's chain has no dividends)
_CHAIN_ARRAYS = ("close", "pre", "open", "volume", "flags", "limit_pct")
#: A stock chain's dtypes, and its suspended-sessions count, in a day slice (DailyModel.day_slices)
_SLICE_DTYPES = {
    "close": np.int64,
    "pre": np.int64,
    "open": np.int64,
    "volume": np.int64,
    "flags": np.int8,
    "limit_pct": np.int8,
    "susp_days": np.int64,
}


class DaySlice:
    """One session's row of every listed stock's chain (:meth:`DailyModel.day_chains`): ``slice[i]`` is
    (a one-row :class:`Chain` starting on the session, consecutive suspended sessions up to it), made
    on demand (a per-code query reads a few of ~5,400)."""

    def __init__(self, d: int, arrays: dict[str, np.ndarray]) -> None:
        self.d = d
        self._a = arrays
        self._row = {int(i): r for r, i in enumerate(arrays["rows"].tolist())}

    def __contains__(self, i: object) -> bool:
        return i in self._row

    def keys(self) -> set[int]:
        return set(self._row)

    def __getitem__(self, i: int) -> tuple[Chain, int]:
        r = self._row[i]
        a, one = self._a, slice(r, r + 1)
        c = Chain(
            self.d, a["close"][one], a["pre"][one], a["open"][one], a["volume"][one], a["flags"][one],
            a["limit_pct"][one],
        )  # fmt: skip
        return c, int(a["susp_days"][r])


@dataclass
class Knots:
    """Intraday skeleton of consecutive sessions for one instrument (rows = sessions)."""

    first: int  # calendar index of row 0
    knots: np.ndarray  # (d, 17) ticks: [open, boundaries..., last continuous price]
    seg_high: np.ndarray  # (d, 16)
    seg_low: np.ndarray  # (d, 16)
    seg_volume: np.ndarray  # (d, 18) lots: opening auction, 16 segments, closing auction
    seg_amount: np.ndarray  # (d, 18) 元
    close: np.ndarray  # (d,) closing-auction price

    @property
    def high(self) -> np.ndarray:
        ends = np.maximum(np.maximum(self.knots[:, 0], self.knots[:, -1]), self.close)
        return np.maximum(self.seg_high.max(axis=1), ends) if len(self.knots) else ends

    @property
    def low(self) -> np.ndarray:
        ends = np.minimum(np.minimum(self.knots[:, 0], self.knots[:, -1]), self.close)
        return np.minimum(self.seg_low.min(axis=1), ends) if len(self.knots) else ends


@dataclass
class DailyBars:
    """Daily bars of one instrument for a range of sessions (aligned arrays, ticks/lots/元)."""

    index: np.ndarray  # calendar indices
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    pre: np.ndarray
    volume: np.ndarray
    amount: np.ndarray
    flags: np.ndarray
    limit_pct: np.ndarray


class DailyModel:
    """Deterministic daily bars and intraday knots for every instrument of a universe."""

    def __init__(
        self, universe: Universe, calendar: TradingCalendar, seed: int, cache_size: int = 8000
    ) -> None:
        self.u = universe
        self.cal = calendar
        self.seed = seed
        self.n_days = len(calendar)
        self._lock = threading.RLock()
        self._chains: OrderedDict[int, Chain] = OrderedDict()
        self._knots: OrderedDict[tuple[int, int], Knots] = OrderedDict()
        self._summaries: OrderedDict[tuple[int, int], tuple[int, np.ndarray, np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._cache_size = cache_size
        # session index of each listing; negative (days before the first session) for older listings
        self.list_index = np.array(
            [
                calendar.index_on_or_after(dt.date.fromordinal(int(o)))
                if o >= calendar.first.toordinal()
                else int(o) - calendar.first.toordinal()
                for o in universe.list_ordinal
            ],
            dtype=np.int64,
        )
        self.days = np.array([calendar.day(i) for i in range(self.n_days)], dtype=object)
        #: epoch ms of 00:00 Asia/Shanghai of every session (a daily bar's `time`)
        self.day_ms = np.array([day_start_ms(d) for d in self.days], dtype=np.int64)
        ordinals = calendar.ordinals
        self._after_st_change = ordinals >= ST_LIMIT_CHANGE.toordinal()
        self._after_chinext = ordinals >= CHINEXT_REFORM.toordinal()
        # knots are generated in quarterly blocks (block id = year * 4 + quarter): a live session
        # needs one quarter for the whole market, a year of daily bars four or five blocks per instrument
        self.block_id = np.array([d.year * 4 + (d.month - 1) // 3 for d in self.days], dtype=np.int64)
        self._block_bounds = {
            int(b): (
                int(np.argmax(self.block_id == b)),
                int(len(self.block_id) - np.argmax(self.block_id[::-1] == b) - 1),
            )
            for b in np.unique(self.block_id)
        }
        #: Where index chains are kept between processes (a DayCache; None: computed in each process)
        self.chain_cache: Any = None
        self._day_chains: DaySlice | None = None  # the last slice read
        mrng = keyed_rng(seed, 2)
        self.market = mrng.standard_t(5, size=(self.n_days, 7)) * np.sqrt(3 / 5)
        self.index_codes = [universe.instruments[i].code for i in universe.index_idx]

    # ------------------------------------------------------------------ public

    def chain(self, i: int) -> Chain:
        with self._lock:
            c = self._chains.get(i)
            if c is not None:
                self._chains.move_to_end(i)
                return c
        kind = self.u.kind[i]
        c = (
            self._index_chain(i)
            if kind == "index"
            else self._etf_chain(i)
            if kind == "etf"
            else self._stock_chain(i)
        )
        with self._lock:
            self._chains[i] = c
            while len(self._chains) > self._cache_size:
                self._chains.popitem(last=False)
        return c

    def knots(self, i: int, block: int) -> Knots:
        """Knots for every session of a monthly ``block`` on which the instrument exists (may be empty)."""
        key = (i, block)
        with self._lock:
            k = self._knots.get(key)
            if k is not None:
                self._knots.move_to_end(key)
                return k
        kind = self.u.kind[i]
        if kind == "index":
            k = self._index_knots(i, block)
        elif kind == "etf":
            k = self._etf_knots(i, block)
        else:
            k = self._stock_knots(i, block)
        self._remember(key, k)
        return k

    def _remember(self, key: tuple[int, int], k: Knots, summary: tuple | None = None) -> None:
        if summary is None:
            self._summarize(key, k)
        else:
            with self._lock:
                self._summaries[key] = summary
        with self._lock:
            self._knots[key] = k
            self._knots.move_to_end(key)
            while len(self._knots) > 2 * self._cache_size:
                self._knots.popitem(last=False)

    def summary(self, i: int, block: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(first session, daily high, daily low, daily amount) of a quarterly block: all a daily bar
        needs from the knots, kept in a larger cache than the knots themselves."""
        key = (i, block)
        with self._lock:
            got = self._summaries.get(key)
            if got is not None:
                return got
        k = self.knots(i, block)
        got = self._summarize(key, k)
        return got

    def _summarize(self, key: tuple[int, int], k: Knots) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        got = (k.first, k.high.astype(np.int64), k.low.astype(np.int64), k.seg_amount.sum(axis=1))
        with self._lock:
            self._summaries[key] = got
            while len(self._summaries) > 250_000:
                self._summaries.popitem(last=False)
        return got

    def day_knots(self, i: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(knots, seg_high, seg_low, seg_volume, seg_amount) of one session, for the intraday layer."""
        k = self.knots(i, int(self.block_id[d]))
        r = d - k.first
        if r < 0 or r >= len(k.knots):
            raise KeyError(f"{self.u.instruments[i].code} has no session {self.days[d]}")
        return k.knots[r], k.seg_high[r], k.seg_low[r], k.seg_volume[r], k.seg_amount[r]

    def day_chains(self, d: int) -> DaySlice | None:
        """Every stock listed by session ``d``: a one-row chain of that session (``start == d``) and its
        consecutive suspended sessions up to it, from the day cache's slice of the session (written by
        a process that computed the chains); None without one. Enough for the session's skeleton."""
        memo = self._day_chains
        if memo is not None and memo.d == d:
            return memo
        cache = self.chain_cache
        got = cache.load_day_slice(self.days[d]) if cache is not None else None
        if got is None:
            return None
        self._day_chains = DaySlice(d, got)
        return self._day_chains

    def day_slices(self, d: int, sessions: int) -> dict[dt.date, dict[str, np.ndarray]]:
        """The slices :meth:`day_chains` reads, of the ``sessions`` sessions after ``d`` (from the
        chains in memory: call after a whole-market skeleton of ``d`` was computed)."""
        s0, s1 = d + 1, min(d + 1 + sessions, self.n_days)  # sessions [s0, s1)
        if s1 <= s0:
            return {}
        stocks = np.flatnonzero((self.u.kind == "stock") & (self.list_index <= s1 - 1))
        cols = {f: np.zeros((len(stocks), s1 - s0), _SLICE_DTYPES[f]) for f in _CHAIN_ARRAYS}
        susp = np.zeros((len(stocks), s1 - s0), np.int64)
        for r, i in enumerate(stocks.tolist()):
            c = self.chain(i)
            a = max(s0, c.start)
            for f in _CHAIN_ARRAYS:
                cols[f][r, a - s0 :] = getattr(c, f)[a - c.start : s1 - c.start]
            if (cols["flags"][r] & FLAG_SUSPENDED).any():
                susp[r] = [suspended_days(c, s) for s in range(s0, s1)]
        out = {}
        for k, s in enumerate(range(s0, s1)):
            keep = self.list_index[stocks] <= s
            out[self.days[s]] = (
                {"rows": stocks[keep].astype(np.int64)}
                | {f: cols[f][keep, k] for f in _CHAIN_ARRAYS}
                | {"susp_days": susp[keep, k]}
            )
        return out

    def day_knots_many(self, indices: list[int] | np.ndarray, d: int) -> dict[int, Knots]:
        """Knots of session ``d`` only (one row each, ``first == d``) for instruments listed by then: what
        a day's whole-market skeleton needs. Blocks already computed are read; the others are computed
        for that session alone (a 63rd of a quarter's work; the rows equal the quarter's) and not kept.
        Indices need their members' and ETFs their index's knots of the session: computed alongside."""
        block = int(self.block_id[d])
        want = [int(i) for i in indices]
        kinds = self.u.kind
        index_of = {i: self._tracked(i) for i in want if kinds[i] == "etf"}
        indices_needed = sorted({i for i in want if kinds[i] == "index"} | set(index_of.values()))
        members = {j for ix in indices_needed for j in self._members(ix).tolist() if self.list_index[j] <= d}
        stocks = sorted(members | {i for i in want if kinds[i] == "stock"})
        sliced = self.day_chains(d)
        if sliced is None or not set(stocks) <= sliced.keys():
            sliced = None
            self.warm(stocks)
        self.warm(indices_needed + list(index_of))
        nowhere = Chain(self.n_days, *(np.zeros(0, np.int64) for _ in range(4)), np.zeros(0, np.int8),
                        np.zeros(0, np.int8))  # fmt: skip

        def chain_of(j: int) -> Chain:  # a member's chain, or its row of session d
            if sliced is None:
                return self.chain(j)
            return sliced[j][0] if j in sliced else nowhere

        def cached(i: int) -> Knots | None:
            with self._lock:
                k = self._knots.get((i, block))
            if k is None or not k.first <= d < k.first + len(k.knots):
                return None
            r = slice(d - k.first, d - k.first + 1)
            return Knots(
                d, k.knots[r], k.seg_high[r], k.seg_low[r], k.seg_volume[r], k.seg_amount[r], k.close[r]
            )

        out: dict[int, Knots] = {}
        todo = []
        for i in stocks:
            k = cached(i)
            if k is None:
                todo.append(i)
            else:
                out[i] = k
        for a in range(0, len(todo), 1024):
            part = todo[a : a + 1024]
            out.update(self._stock_knots_many(part, block, day=d, chains=[chain_of(i) for i in part])[0])
        for ix in indices_needed:
            out[ix] = cached(ix) or self._index_knots_from_members(
                ix, block, day=d, members_day=out, chain_of=chain_of
            )
        for i, ix in index_of.items():
            out[i] = cached(i) or self._etf_knots(i, block, day=d, index_day=out[ix])
        return {i: out[i] for i in want}

    def bars(self, i: int, lo: int, hi: int) -> DailyBars:
        """Daily bars for calendar indices [lo, hi] (clipped to the instrument's life)."""
        c = self.chain(i)
        lo = max(lo, c.start)
        hi = min(hi, self.n_days - 1)
        if hi < lo:
            empty = np.zeros(0, np.int64)
            return DailyBars(empty, empty, empty, empty, empty, empty, empty, np.zeros(0), empty, empty)
        highs, lows, amounts = [], [], []
        for block in range(int(self.block_id[lo]), int(self.block_id[hi]) + 1):
            if block not in self._block_bounds:
                continue
            first, high, low, amount = self.summary(i, block)
            a, b = max(lo, first) - first, min(hi, first + len(high) - 1) - first
            if b < a:
                continue
            highs.append(high[a : b + 1])
            lows.append(low[a : b + 1])
            amounts.append(amount[a : b + 1])
        rows = c.rows(lo, hi)
        return DailyBars(
            index=np.arange(lo, hi + 1),
            open=c.open[rows],
            high=np.concatenate(highs),
            low=np.concatenate(lows),
            close=c.close[rows],
            pre=c.pre[rows],
            volume=c.volume[rows],
            amount=np.concatenate(amounts),
            flags=c.flags[rows],
            limit_pct=c.limit_pct[rows],
        )

    def limits(self, i: int, d: int) -> tuple[int, int] | None:
        """(down, up) limit prices in ticks on session ``d``; None when the day has no limit."""
        c = self.chain(i)
        r = d - c.start
        pct = int(c.limit_pct[r])
        if pct == NO_LIMIT:
            return None
        down, up = limit_ticks(int(c.pre[r]), pct)
        return int(down), int(up)

    # ------------------------------------------------------------------ stocks

    def _stock_chain(self, i: int) -> Chain:
        return self._stock_chains([i])[i]

    def _limit_matrix(self, idx: np.ndarray, since: np.ndarray, c0: int = 0) -> np.ndarray:
        """Limit percent per (instrument, session from ``c0``); NO_LIMIT where none applies."""
        board = self.u.board[idx][:, None]
        st = self.u.is_st[idx][:, None]
        after_st = self._after_st_change[None, c0:]
        after_cn = self._after_chinext[None, c0:]
        pct = np.full(since.shape, 10, np.int64)
        pct = np.where(board == Board.STAR, 20, pct)
        pct = np.where(board == Board.BJ, 30, pct)
        pct = np.where(board == Board.CHINEXT, np.where(after_cn, 20, np.where(st, 5, 10)), pct)
        main_st = st & ((board == Board.SH_MAIN) | (board == Board.SZ_MAIN))
        pct = np.where(main_st, np.where(after_st, 10, 5), pct)
        fresh = np.where(board == Board.BJ, 1, np.where(board == Board.ETF, 0, 5))
        pct = np.where(since < fresh, NO_LIMIT, pct)
        return np.where(board == Board.INDEX, NO_LIMIT, pct)

    def _stock_chains(self, idx_list: list[int] | np.ndarray) -> dict[int, Chain]:
        """Chains of many stocks at once: (instruments x sessions) arrays, one random stream per code."""
        u = self.u
        idx = np.asarray(idx_list, dtype=np.int64)
        k, n = len(idx), self.n_days
        draws_n = np.empty((k, 3, n))
        draws_u = np.empty((k, 4, n))
        scalars = np.empty((k, 2))
        n_years = self.days[-1].year - self.days[0].year + 1
        div_u = np.empty((k, n_years, 4))
        for r, i in enumerate(idx):
            rng = keyed_rng(self.seed, 10, code_key(u.instruments[i].code))
            draws_n[r] = rng.standard_normal((3, n))
            draws_u[r] = rng.random((4, n))
            scalars[r] = rng.random(2)
            div_u[r] = rng.random((n_years, 4))
        # Sessions before the earliest listing of the batch are skipped (a quarter of all stock-days;
        # callers batch codes of similar listing dates): every value there is 0 or unused, and every
        # later value is the same (the running sums add exact zeros over the skipped sessions)
        c0 = min(int(np.maximum(self.list_index[idx], 0).min()), n - 1) if k else 0
        w = n - c0
        draws_n, draws_u = draws_n[:, :, c0:], draws_u[:, :, c0:]
        eps, gap_eps, vol_eps = draws_n[:, 0], draws_n[:, 1], draws_n[:, 2]
        # fat tails: a normal scaled by a lognormal mixing variable (unit variance overall)
        eps = eps * np.exp(0.45 * draws_n[:, 1] * draws_n[:, 2] - 0.2)
        jump_u, lock_u, susp_u, size_u = draws_u[:, 0], draws_u[:, 1], draws_u[:, 2], draws_u[:, 3]
        ipo_pop = 0.3 + 2.2 * scalars[:, 0]
        level0 = u.anchor[idx] * np.exp(0.35 * (scalars[:, 1] - 0.5) * 3.4)

        cal_idx = np.arange(c0, n)[None, :]
        list_index = self.list_index[idx][:, None]
        start = np.maximum(list_index, 0)
        alive = cal_idx >= start
        since = cal_idx - list_index
        listed_here = (list_index[:, 0] >= 0) & (list_index[:, 0] < n)
        ipo_day = (cal_idx == list_index) & listed_here[:, None]
        pct = self._limit_matrix(idx, since, c0)
        limited = pct != NO_LIMIT
        lim = np.log1p(np.maximum(pct, 0) / 100.0)
        tick = u.tick[idx][:, None]
        sigma = u.sigma[idx][:, None]
        beta = u.beta[idx][:, None]
        board = np.minimum(u.board[idx], 5)

        # suspensions: runs of sessions without trading
        suspended = np.zeros((k, w), bool)
        resumed = np.zeros((k, w), bool)
        rs, ts = np.nonzero((susp_u < 0.0004) & (since > 10))
        for r, t in zip(rs.tolist(), ts.tolist(), strict=True):
            e = min(t + 1 + int(size_u[r, t] * 14), w)
            suspended[r, t:e] = True
            if e < w:
                resumed[r, e] = True
        resumed &= ~suspended

        m = self.market[c0:]
        factor = 0.011 * m[None, :, 0] + 0.006 * m[:, 1 + board].T
        shock = beta * factor + sigma * eps
        jump = (0.04 + 0.12 * size_u) * np.where(jump_u < 0.0036, 1.0, -1.0)
        shock = shock + np.where(jump_u < 0.006, jump, 0.0)
        lock_up = limited & (shock > lim + 0.04) & (lock_u < 0.5) & ~suspended
        lock_dn = limited & (shock < -lim - 0.04) & (lock_u < 0.5) & ~suspended
        bound = np.where(limited, lim - LIMIT_MARGIN, 0.5)
        step = np.where(suspended | ~alive | ipo_day, 0.0, np.clip(shock, -bound, bound))

        # dividends: yearly cash (a yield on the previous close) in June/July, sometimes bonus shares
        ev_r, ev_t, ev_y, ev_b, ev_g = [], [], [], [], []
        first_year = self.days[0].year
        rates = u.dividend_yield[idx]
        for r in range(k):
            y_rate = float(rates[r])
            for yk in range(n_years):
                du = div_u[r, yk]
                pays = y_rate > 0 and du[0] < 0.85
                bonus = du[1] < 0.05
                if not (pays or bonus):
                    continue
                t = self.cal.index_on_or_after(
                    dt.date(first_year + yk, 6, 1) + dt.timedelta(days=int(du[2] * 55))
                )
                if t >= n or t <= start[r, 0] + 60 or suspended[r, t - c0]:
                    continue
                total = [0.2, 0.3, 0.4, 0.5, 1.0][int(du[3] * 5)] if bonus else 0.0
                b = round(total * du[3], 1) if bonus else 0.0
                ev_r.append(r)
                ev_t.append(t)
                ev_y.append(y_rate if pays else 0.0)
                ev_b.append(b)
                ev_g.append(round(total - b, 1))
        ev_r_a, ev_t_a = np.array(ev_r, np.int64), np.array(ev_t, np.int64)
        ev_y_a, ev_bg = np.array(ev_y), np.array(ev_b) + np.array(ev_g)
        ev_c = ev_t_a - c0  # columns of the (k, w) arrays
        log_adj = np.zeros((k, w))
        log_adj[ev_r_a, ev_c] = np.log((1.0 - ev_y_a) / (1.0 + ev_bg))

        # continuous log path from the listing level, pinned to the anchor at the calendar's end
        logx = np.log(level0)[:, None] + np.cumsum(step + log_adj, axis=1)
        live = alive & ~suspended
        n_live = np.maximum(live.sum(axis=1), 1)
        drift = (np.log(u.anchor[idx]) - logx[:, -1]) / n_live
        logx = logx + drift[:, None] * np.cumsum(live, axis=1)
        x = np.exp(logx) / tick
        xr = np.maximum(np.rint(x), 1).astype(np.int64)
        issue = np.maximum(
            np.rint(x[np.arange(k), np.minimum(start[:, 0], n - 1) - c0] / (1.0 + ipo_pop)), 1
        ).astype(np.int64)

        # close_t = the path rounded to the grid, clipped to limits set by the (clipped) previous close.
        # Clipping only bites after lock days and rounding edges, so iterate on the rows still moving.
        ev_tick = tick[ev_r_a, 0]
        close = xr.copy()
        pre, down, up = self._pre_and_limits(
            close, issue, ipo_day, pct, limited, ev_r_a, ev_c, ev_tick, ev_y_a, ev_bg
        )
        rows = np.arange(k)
        for _ in range(12):
            new = np.clip(xr[rows], down[rows], up[rows])
            new = np.where(lock_up[rows], up[rows], np.where(lock_dn[rows], down[rows], new))
            new = np.where(suspended[rows], pre[rows], new)
            moved = (new != close[rows]).any(axis=1)
            if not moved.any():
                break
            close[rows] = new
            rows = rows[moved]
            # every operation is per row: only the rows whose closes moved get new preCloses and limits
            ev = np.flatnonzero(np.isin(ev_r_a, rows))
            pre[rows], down[rows], up[rows] = self._pre_and_limits(
                close[rows], issue[rows], ipo_day[rows], pct[rows], limited[rows],
                np.searchsorted(rows, ev_r_a[ev]), ev_c[ev], ev_tick[ev], ev_y_a[ev], ev_bg[ev],
            )  # fmt: skip
        gap = 0.3 * step + 0.5 * sigma * gap_eps
        opn = np.clip(np.rint(pre * np.exp(gap)), down, up).astype(np.int64)
        ipo_open = np.rint(pre * (1.0 + ipo_pop[:, None]) * np.exp(0.1 * gap_eps))
        opn = np.where(ipo_day, np.clip(ipo_open, 1, up), opn).astype(np.int64)
        opn = np.where(lock_up, up, np.where(lock_dn, down, opn))
        opn = np.where(suspended, pre, opn)

        move = np.abs(np.log(close / np.maximum(pre, 1)))
        activity = np.exp(0.5 * np.minimum(move / np.maximum(sigma, 0.004), 4.0) - 0.5 + 0.35 * vol_eps)
        turnover = np.where(ipo_day, 0.6, u.turnover[idx][:, None])
        lots = (u.float_shares[idx] / 100.0)[:, None] * turnover * activity
        lots = np.where(lock_up | lock_dn, lots * 0.12, lots)
        volume = np.where(suspended, 0, np.maximum(np.rint(lots), 200)).astype(np.int64)
        flags = (
            suspended * FLAG_SUSPENDED + resumed * FLAG_RESUMED + (lock_up | lock_dn) * FLAG_LOCKED
        ).astype(np.int8)

        events_by_row: dict[int, list[DividendEvent]] = {}
        prev_all = close[ev_r_a, ev_c - 1] if len(ev_r_a) else np.zeros(0, np.int64)
        for e in range(len(ev_r_a)):
            r, t = int(ev_r_a[e]), int(ev_t_a[e])
            cash = round(int(prev_all[e]) * float(ev_tick[e]) * ev_y[e], 3)
            events_by_row.setdefault(r, []).append(
                DividendEvent(
                    self.days[t], cash, ev_b[e], ev_g[e], 0.0, 0.0, int(prev_all[e]) / int(pre[r, t - c0])
                )
            )
        out: dict[int, Chain] = {}
        for r, i in enumerate(idx.tolist()):
            s0 = int(start[r, 0])
            sl = slice(s0 - c0, n - c0)
            out[i] = Chain(
                s0,
                close[r, sl].copy(),
                pre[r, sl].copy(),
                opn[r, sl].copy(),
                volume[r, sl].copy(),
                flags[r, sl].copy(),
                pct[r, sl].astype(np.int8),
                sorted(events_by_row.get(r, []), key=lambda ev: ev.day),
            )
        return out

    @staticmethod
    def _pre_and_limits(
        close: np.ndarray,
        issue: np.ndarray,
        ipo_day: np.ndarray,
        pct: np.ndarray,
        limited: np.ndarray,
        ev_r: np.ndarray,
        ev_t: np.ndarray,
        ev_tick: np.ndarray,
        ev_y: np.ndarray,
        ev_bg: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """preClose (previous close; adjusted on ex-dates; the issue price on listing day) and limits."""
        pre = np.empty_like(close)
        pre[:, 1:] = close[:, :-1]
        pre[:, 0] = close[:, 0]
        pre = np.where(ipo_day, issue[:, None], pre)
        prev = close[ev_r, ev_t - 1]
        cash = np.round(prev * ev_tick * ev_y, 3)
        pre[ev_r, ev_t] = np.maximum(np.floor((prev * ev_tick - cash) / (1.0 + ev_bg) / ev_tick + 0.5), 1)
        down, up = limit_ticks(pre, np.maximum(pct, 0))
        return pre, np.where(limited, down, 1), np.where(limited, up, pre * 20)

    def warm(self, indices: list[int] | np.ndarray | None = None, chunk: int = 32) -> None:
        """Compute (and cache) chains for many instruments in vectorised batches."""
        todo = list(range(len(self.u))) if indices is None else [int(i) for i in indices]
        with self._lock:
            todo = [i for i in todo if i not in self._chains]
        # batches of similar listing dates: a batch's arrays start at its earliest listing
        stocks = sorted((i for i in todo if self.u.kind[i] == "stock"), key=lambda i: int(self.list_index[i]))
        for a in range(0, len(stocks), chunk):
            chains = self._stock_chains(stocks[a : a + chunk])
            with self._lock:
                self._chains.update(chains)
        for i in todo:
            if self.u.kind[i] != "stock":
                self.chain(i)

    def _block_rows(self, c: Chain, block: int) -> tuple[int, int]:
        """Calendar index range [lo, hi] of a quarterly block within the chain's life (hi < lo if none)."""
        lo, hi = self._block_bounds[block]
        return max(lo, c.start), hi

    def warm_range(self, indices: list[int] | np.ndarray, lo: int, hi: int) -> None:
        """Prepare daily bars of many instruments for sessions [lo, hi] in vectorised batches."""
        lo, hi = max(lo, 0), min(hi, self.n_days - 1)
        if hi < lo:
            return
        idx = [int(i) for i in indices]
        self.warm(idx)
        for block in range(int(self.block_id[lo]), int(self.block_id[hi]) + 1):
            if block not in self._block_bounds:
                continue
            with self._lock:
                todo = [i for i in idx if (i, block) not in self._summaries]
            if todo:
                self.warm_knots(todo, block)

    def _stock_knots(self, i: int, block: int) -> Knots:
        return self._stock_knots_many([i], block)[0][i]

    def warm_knots(self, indices: list[int] | np.ndarray, block: int, chunk: int = 256) -> None:
        """Compute (and cache) one quarterly block's knots for many instruments in vectorised batches."""
        with self._lock:
            todo = [int(i) for i in indices if (int(i), block) not in self._knots]
        self.warm(todo)
        stocks = [i for i in todo if self.u.kind[i] == "stock"]
        for a in range(0, len(stocks), chunk):
            got, summaries = self._stock_knots_many(stocks[a : a + chunk], block)
            for i, k in got.items():
                self._remember((i, block), k, summaries[i])
        for i in todo:
            if self.u.kind[i] != "stock":
                self.knots(i, block)

    def _stock_knots_many(
        self, idx_list: list[int], block: int, day: int | None = None, chains: list[Chain] | None = None
    ) -> tuple[dict[int, Knots], dict[int, tuple]]:
        """Knots of many stocks for one block (or only its session ``day``, of stocks listed by then:
        every operation is per session, so its row is the block's), and their (first, high, low,
        amount) summaries."""
        ylo, yhi = self._block_bounds[block]
        span = yhi - ylo + 1
        chains = [self.chain(i) for i in idx_list] if chains is None else chains
        parts = []
        for i, c in zip(idx_list, chains, strict=True):
            lo, hi = (max(ylo, c.start), yhi) if day is None else (day, day)
            rng = keyed_rng(self.seed, 11, code_key(self.u.instruments[i].code), block)
            draws = rng.standard_normal((span, 3 * N_SEG + 1))[lo - ylo : hi - ylo + 1]
            share = rng.random((span, 2))[lo - ylo : hi - ylo + 1]
            rows = c.rows(lo, hi)
            parts.append((i, lo, rows, draws, share))
        if not parts:
            return {}, {}
        draws = np.concatenate([p[3] for p in parts])
        share = np.concatenate([p[4] for p in parts])

        def cat(attr: str) -> np.ndarray:
            return np.concatenate([getattr(c, attr)[p[2]] for c, p in zip(chains, parts, strict=True)])

        pre, opn, close, volume = cat("pre"), cat("open"), cat("close"), cat("volume")
        flags, pct = cat("flags"), cat("limit_pct").astype(np.int64)
        sizes = [len(p[3]) for p in parts]
        rep = lambda arr: np.repeat(arr[np.asarray(idx_list)], sizes)  # noqa: E731
        sigma = np.maximum(rep(self.u.sigma), 0.004)
        tick = rep(self.u.tick)
        limited = pct != NO_LIMIT
        down, up = limit_ticks(pre, np.maximum(pct, 0))
        down = np.where(limited, down, 1)
        up = np.where(limited, up, pre * 20)
        z = draws[:, :N_SEG]
        exc = np.abs(draws[:, N_SEG : 3 * N_SEG]).reshape(-1, 2, N_SEG)
        auction_eps = draws[:, -1]
        vol_noise = np.exp(0.25 * z[:, ::-1])
        auc_share = 0.005 + 0.02 * share
        knots, seg_high, seg_low = _draw_knots(opn, close, down, up, sigma, z, exc, auction_eps)
        # one-price days (locked at a limit, or suspended: no trade at all) have no intraday range
        flat = ((flags & (FLAG_LOCKED | FLAG_SUSPENDED)) > 0)[:, None]
        knots = np.where(flat, close[:, None], knots)
        seg_high = np.where(flat, close[:, None], seg_high)
        seg_low = np.where(flat, close[:, None], seg_low)
        seg_volume = _split_volume(volume, vol_noise, auc_share)
        seg_amount = _amounts(knots, seg_high, seg_low, close, seg_volume, tick)
        batch = Knots(0, knots, seg_high, seg_low, seg_volume, seg_amount, close)
        high, low, amount = batch.high, batch.low, seg_amount.sum(axis=1)
        out: dict[int, Knots] = {}
        summaries: dict[int, tuple] = {}
        a = 0
        for (i, lo, *_), size in zip(parts, sizes, strict=True):
            sl = slice(a, a + size)
            out[i] = Knots(
                lo, knots[sl], seg_high[sl], seg_low[sl], seg_volume[sl], seg_amount[sl], close[sl]
            )
            summaries[i] = (lo, high[sl], low[sl], amount[sl])
            a += size
        return out, summaries

    # ------------------------------------------------------------------ indices

    def _members(self, i: int) -> np.ndarray:
        return self.u.index_members[self.u.instruments[i].code]

    def _member_weights(
        self, i: int, lo: int, hi: int, chain_of: Any = None
    ) -> tuple[np.ndarray, np.ndarray, list[Chain]]:
        """(weights (m, d), trading mask (m, d), chains) of an index's members over [lo, hi]: a member
        weighs its float capitalisation per tick on the sessions it trades once seasoned."""
        members = self._members(i)
        chains = [(chain_of or self.chain)(int(j)) for j in members]
        cal_idx = np.arange(lo, hi + 1)[None, :]
        seasoned = cal_idx >= (self.list_index[members] + INDEX_SEASONING)[:, None]
        inside = cal_idx >= np.array([c.start for c in chains], np.int64)[:, None]
        flags = self._member_matrix(chains, "flags", lo, hi, np.int8)
        trading = seasoned & inside & ((flags & FLAG_SUSPENDED) == 0)
        weights = (self.u.float_shares[members] * self.u.tick[members])[:, None] * trading
        return weights, trading, chains

    @staticmethod
    def _member_matrix(
        chains: list[Chain], attr: str, lo: int, hi: int, dtype: type = np.float64
    ) -> np.ndarray:
        out = np.zeros((len(chains), hi - lo + 1), dtype)
        for r, c in enumerate(chains):
            a = max(lo, c.start)
            if a > hi:
                continue
            arr = getattr(c, attr)
            out[r, a - lo :] = arr[a - c.start : hi - c.start + 1]
        return out

    def _index_chain(self, i: int) -> Chain:
        cache, code = self.chain_cache, self.u.instruments[i].code
        if cache is not None:
            got = cache.load_chain(code)
            if got is not None:
                return Chain(start=int(got.pop("start")), **got)
        self.warm(self._members(i))
        c = self._index_chain_from_members(i)
        if cache is not None:
            cache.save_chain(code, {f: getattr(c, f) for f in _CHAIN_ARRAYS} | {"start": np.int64(c.start)})
        return c

    def _index_chain_from_members(self, i: int) -> Chain:
        """Level_t = level_{t-1} x sum(w x close_t) / sum(w x preClose_t) over seasoned, trading members;
        the chain is then scaled so that the level at the calendar's end is the index's anchor."""
        n = self.n_days
        cal_idx = np.arange(n)
        # Sums over members, one member at a time in member order: the same float additions as
        # summing (members x sessions) matrices over axis 0, without ~5 such matrices of up to 2,300
        # members x 2,916 sessions (the SSE composite's: ~50 MB each).
        cap_pre, cap_close, cap_open, vol = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        for j in self._members(i).tolist():
            c = self.chain(j)
            a = c.start
            if a >= n:
                continue
            live = (cal_idx[a:] >= self.list_index[j] + INDEX_SEASONING) & ((c.flags & FLAG_SUSPENDED) == 0)
            w = self.u.float_shares[j] * self.u.tick[j] * live
            cap_pre[a:] += w * c.pre.astype(np.float64)
            cap_close[a:] += w * c.close.astype(np.float64)
            cap_open[a:] += w * c.open.astype(np.float64)
            vol[a:] += c.volume.astype(np.float64) * (w > 0)
        has = cap_pre > 0
        safe = np.where(has, cap_pre, 1.0)
        ratio = np.where(has, cap_close / safe, 1.0)
        open_ratio = np.where(has, cap_open / safe, 1.0)
        level = np.cumprod(ratio)
        level = level * (self.u.anchor[i] / level[-1]) / 0.01  # ticks of 0.01 points
        pre_level = np.concatenate([[level[0] / ratio[0]], level[:-1]])
        volume = vol.astype(np.int64)
        return Chain(
            0,
            np.rint(level).astype(np.int64),
            np.rint(pre_level).astype(np.int64),
            np.rint(pre_level * open_ratio).astype(np.int64),
            volume,
            np.zeros(n, np.int8),
            np.full(n, NO_LIMIT, np.int8),
        )

    def _index_knots(self, i: int, block: int) -> Knots:
        self.warm_knots(self._members(i), block)
        return self._index_knots_from_members(i, block)

    def _index_knots_from_members(
        self,
        i: int,
        block: int,
        day: int | None = None,
        members_day: dict[int, Knots] | None = None,
        chain_of: Any = None,
    ) -> Knots:
        """Index knots = member knots weighted as in the chain (exact at every segment boundary);
        segment highs/lows add half the members' average excursion (their extremes do not coincide).
        With ``day``: that session only, from the members' knots of that session (``members_day``)."""
        c = self.chain(i)
        lo, hi = self._block_rows(c, block) if day is None else (day, day)
        d = hi - lo + 1
        w, trading, chains = self._member_weights(i, lo, hi, chain_of)
        members = self._members(i)
        pre = self._member_matrix(chains, "pre", lo, hi)
        knots = np.zeros((d, N_SEG + 1))
        exc_up = np.zeros((d, N_SEG))
        exc_dn = np.zeros((d, N_SEG))
        seg_volume = np.zeros((d, N_SEG + 2), np.int64)
        seg_amount = np.zeros((d, N_SEG + 2))
        for r, j in enumerate(members):
            if not trading[r].any():
                continue
            k = self.knots(int(j), block) if members_day is None else members_day[int(j)]
            a = k.first - lo
            cols = slice(a, a + len(k.knots))
            wr = w[r, cols][:, None]
            tr = trading[r, cols][:, None]
            knots[cols] += wr * k.knots
            hi_end = np.maximum(k.knots[:, :-1], k.knots[:, 1:])
            lo_end = np.minimum(k.knots[:, :-1], k.knots[:, 1:])
            exc_up[cols] += wr * (k.seg_high - hi_end)
            exc_dn[cols] += wr * (lo_end - k.seg_low)
            seg_volume[cols] += k.seg_volume * tr
            seg_amount[cols] += k.seg_amount * tr
        cap_pre = (w * pre).sum(axis=0)
        scale = np.where(
            cap_pre > 0, c.pre[lo - c.start : hi - c.start + 1] / np.where(cap_pre > 0, cap_pre, 1), 0.0
        )
        flat = cap_pre <= 0
        knots = np.rint(knots * scale[:, None]).astype(np.int64)
        knots[flat] = c.pre[lo - c.start : hi - c.start + 1][flat, None]
        # the chain's open/close are authoritative (same weights); pin the ends to them exactly
        knots[:, 0] = c.open[lo - c.start : hi - c.start + 1]
        hi_end = np.maximum(knots[:, :-1], knots[:, 1:])
        lo_end = np.minimum(knots[:, :-1], knots[:, 1:])
        seg_high = hi_end + np.rint(0.5 * exc_up * scale[:, None]).astype(np.int64)
        seg_low = lo_end - np.rint(0.5 * exc_dn * scale[:, None]).astype(np.int64)
        return Knots(
            lo, knots, seg_high, seg_low, seg_volume, seg_amount, c.close[lo - c.start : hi - c.start + 1]
        )

    # ------------------------------------------------------------------ ETFs

    def _tracked(self, i: int) -> int:
        return self.u.by_code[self.u.instruments[i].tracks]

    def _etf_chain(self, i: int) -> Chain:
        """ETF close = previous close x its index's daily ratio x a small tracking difference."""
        u = self.u
        inst = u.instruments[i]
        start = int(max(self.list_index[i], 0))
        idx = self.chain(self._tracked(i))
        n = self.n_days - start
        rng = keyed_rng(self.seed, 12, code_key(inst.code))
        noise = rng.normal(size=self.n_days)[start:] * float(u.sigma[i])
        vol_eps = rng.normal(size=self.n_days)[start:]
        ratio = idx.close[start:] / np.maximum(idx.pre[start:], 1)
        open_ratio = idx.open[start:] / np.maximum(idx.pre[start:], 1)
        tick = float(u.tick[i])
        logx = np.log(u.anchor[i]) + np.cumsum(np.log(ratio) + noise)
        logx = logx - (logx[-1] - np.log(u.anchor[i]))
        x = np.exp(logx) / tick
        close = np.maximum(np.rint(x), 1).astype(np.int64)
        since = np.arange(self.n_days)[None, :] - self.list_index[i]
        pct = self._limit_matrix(np.array([i]), since)[0, start:]
        pre = np.empty(n, np.int64)
        for _ in range(4):
            pre[1:] = close[:-1]
            pre[0] = close[0]
            down, up = limit_ticks(pre, np.maximum(pct, 0))
            new = np.clip(close, down, up)
            if np.array_equal(new, close):
                break
            close = new
        opn = np.clip(np.rint(pre * open_ratio), down, up).astype(np.int64)
        lots = u.float_shares[i] / 100.0 * u.turnover[i] * np.exp(0.35 * vol_eps - 0.06)
        volume = np.maximum(np.rint(lots), 200).astype(np.int64)
        return Chain(start, close, pre, opn, volume, np.zeros(n, np.int8), pct.astype(np.int8))

    def _etf_knots(self, i: int, block: int, day: int | None = None, index_day: Knots | None = None) -> Knots:
        """An ETF's knots track its index's (for the block, or only session ``day`` from the index's
        knots of that session, ``index_day``)."""
        c = self.chain(i)
        lo, hi = self._block_rows(c, block) if day is None else (day, day)
        rows = c.rows(lo, hi)
        ik = self.knots(self._tracked(i), block) if index_day is None else index_day
        ic = self.chain(self._tracked(i))
        a = lo - ik.first
        d = hi - lo + 1
        scale = (c.pre[rows] / np.maximum(ic.pre[lo - ic.start : hi - ic.start + 1], 1))[:, None]
        pct = c.limit_pct[rows]
        down, up = limit_ticks(c.pre[rows], np.maximum(pct, 0))

        def track(arr: np.ndarray) -> np.ndarray:
            return np.clip(np.rint(scale * arr), down[:, None], up[:, None]).astype(np.int64)

        knots = track(ik.knots[a : a + d])
        knots[:, 0] = c.open[rows]
        knots[:, -1] = np.clip(knots[:, -1], down, up)
        seg_high = np.maximum(track(ik.seg_high[a : a + d]), np.maximum(knots[:, :-1], knots[:, 1:]))
        seg_low = np.minimum(track(ik.seg_low[a : a + d]), np.minimum(knots[:, :-1], knots[:, 1:]))
        rng = keyed_rng(self.seed, 13, code_key(self.u.instruments[i].code), block)
        span = self._block_bounds[block][1] - self._block_bounds[block][0] + 1
        off = lo - self._block_bounds[block][0]
        vol_noise = np.exp(0.25 * rng.normal(size=(span, N_SEG)))[off : off + d]
        auc_share = rng.uniform(0.005, 0.025, size=(span, 2))[off : off + d]
        seg_volume = _split_volume(c.volume[rows], vol_noise, auc_share)
        seg_amount = _amounts(knots, seg_high, seg_low, c.close[rows], seg_volume, float(self.u.tick[i]))
        return Knots(lo, knots, seg_high, seg_low, seg_volume, seg_amount, c.close[rows])


# ---------------------------------------------------------------------- pure helpers


def suspended_days(c: Chain, d: int) -> int:
    """Consecutive suspended sessions of a chain up to session ``d`` (get_instrument_detail's
    InstrumentStatus)."""
    if not len(c.flags) or d < c.start:
        return 0
    k, n = min(d - c.start, len(c.flags) - 1), 0
    while k >= 0 and c.flags[k] & FLAG_SUSPENDED:
        n += 1
        k -= 1
    return n


def _draw_knots(
    opn: np.ndarray,
    close: np.ndarray,
    down: np.ndarray,
    up: np.ndarray,
    sigma: np.ndarray | float,
    z: np.ndarray,
    exc: np.ndarray,
    auction_eps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment boundary prices (a Brownian bridge from the open to the last continuous price, in
    price space: an intraday move is small enough for that), and each segment's high/low as
    excursions beyond its end points, all within the limits."""
    o = opn.astype(np.float64)
    cc = np.clip(np.rint(close * (1.0 + 0.002 * auction_eps)), down, up)
    walk = np.cumsum(z * _SEG_W, axis=1)
    bridge = np.empty((len(z), N_SEG + 1))
    bridge[:, 0] = 0.0
    bridge[:, 1:] = walk - _SEG_FRAC[1:] * walk[:, -1:]
    sig = (
        (0.8 * np.asarray(sigma, dtype=np.float64) * o)[:, None]
        if np.ndim(sigma)
        else (0.8 * sigma * o)[:, None]
    )
    path = o[:, None] + _SEG_FRAC * (cc - o)[:, None] + sig * bridge
    knots = np.clip(np.rint(path), down[:, None], up[:, None]).astype(np.int64)
    knots[:, 0] = opn
    knots[:, -1] = cc
    hi_end = np.maximum(knots[:, :-1], knots[:, 1:])
    lo_end = np.minimum(knots[:, :-1], knots[:, 1:])
    span = (
        (0.35 * np.asarray(sigma, dtype=np.float64))[..., None] * _SEG_SPAN
        if np.ndim(sigma)
        else 0.35 * sigma * _SEG_SPAN
    )
    seg_high = np.minimum(np.ceil(hi_end * (1.0 + span * exc[:, 0])), up[:, None]).astype(np.int64)
    seg_low = np.maximum(np.floor(lo_end * (1.0 - span * exc[:, 1])), down[:, None]).astype(np.int64)
    return knots, np.maximum(seg_high, hi_end), np.minimum(seg_low, lo_end)


def _split_volume(volume: np.ndarray, noise: np.ndarray, auction_share: np.ndarray) -> np.ndarray:
    """Opening auction, 16 U-shaped segments and closing auction; integers summing to the day's volume,
    with at least 3 lots per segment and 1 per auction so every segment has trades to place."""
    weights = np.concatenate([auction_share[:, :1], SEG_PROFILE * noise, auction_share[:, 1:]], axis=1)
    weights[:, 1:-1] *= (1.0 - auction_share.sum(axis=1, keepdims=True)) / weights[:, 1:-1].sum(
        axis=1, keepdims=True
    )
    floor = np.array([1] + [3] * N_SEG + [1])
    spare = np.maximum(volume - floor.sum(), 0)
    out = apportion(weights, spare) + floor
    return np.where(volume[:, None] > 0, out, 0).astype(np.int64)


def _amounts(
    knots: np.ndarray,
    seg_high: np.ndarray,
    seg_low: np.ndarray,
    close: np.ndarray,
    seg_volume: np.ndarray,
    tick: np.ndarray | float,
) -> np.ndarray:
    """Turnover per part in 元: auctions at their price; segments at a VWAP inside their range."""
    tick = np.broadcast_to(np.asarray(tick, dtype=np.float64), close.shape)
    vwap = 0.25 * (knots[:, :-1] + knots[:, 1:] + seg_high + seg_low)
    out = np.empty(seg_volume.shape)
    out[:, 0] = seg_volume[:, 0] * 100.0 * knots[:, 0] * tick
    out[:, 1:-1] = seg_volume[:, 1:-1] * 100.0 * vwap * tick[:, None]
    out[:, -1] = seg_volume[:, -1] * 100.0 * close * tick
    return out


def apportion(weights: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Split integer ``totals`` (n,) across columns by ``weights`` (n, k): non-negative integers that
    sum exactly to each total (cumulative rounding; no sort needed)."""
    w = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w, axis=1)
    cum /= np.where(cum[:, -1:] > 0, cum[:, -1:], 1.0)
    edges = np.rint(cum * np.asarray(totals, dtype=np.float64)[:, None]).astype(np.int64)
    return np.diff(np.concatenate([np.zeros((len(w), 1), np.int64), edges], axis=1), axis=1)
