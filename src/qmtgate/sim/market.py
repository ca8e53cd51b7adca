"""SimMarket: the simulated A-share market as one object (universe, calendar, daily and intraday
models, clock), queried by the xtquant-shaped facade and the live engine.

Everything here speaks in calendar indices, instrument positions, ticks and lots; the facade turns
that into xtquant's shapes and units.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .calendar import DEFAULT_HISTORY_START, TradingCalendar
from .clock import MarketClock
from .daily import FLAG_SUSPENDED, NO_LIMIT, DailyModel, code_key
from .daily import suspended_days as _suspended_days
from .daycache import DayCache, context_arrays
from .daypath import (
    CLOSE_SLOT,
    N_AUCTION,
    N_SLOTS,
    OPEN_SLOT,
    DayInputs,
    DayPath,
    build_day_paths,
    minute_bars,
    slot_at,
)
from .intraday import SegmentPaths, SegmentRows, auction_paths, simulate_segments
from .rules import Board, limit_ticks
from .snapshot import SnapshotArrays, build_tick_dicts
from .timeutil import N_SEG, SEG_SIZES, cst_date_of_ms, ms_of, seconds_of_day_of_ms
from .universe import build_universe

_SHARED_LOCK = threading.Lock()


#: instrument-day paths kept (LRU)
_PATH_CACHE = 512


@dataclass
class DayContext:
    """Every instrument's daily skeleton for one session, as aligned arrays (ticks / lots / 元)."""

    ordinal: int
    listed: np.ndarray
    knots: np.ndarray
    seg_high: np.ndarray
    seg_low: np.ndarray
    seg_volume: np.ndarray
    seg_amount: np.ndarray
    close: np.ndarray
    pre: np.ndarray
    down: np.ndarray
    up: np.ndarray
    auction: np.ndarray  # (n, 200) indicative auction prices
    auction_active: np.ndarray  # (n, 200) published auction snapshots
    limited: np.ndarray  # bool: the session has price limits (down/up are the limits)
    susp_days: np.ndarray  # int64: consecutive suspended sessions up to this one (instrument detail)


class _Shared:
    """Deterministic, seed-level data shared by every SimMarket with the same seed and history."""

    def __init__(self, seed: int, history_start: dt.date) -> None:
        self.universe = build_universe(seed)
        self.calendar = TradingCalendar(history_start)
        cal = self.calendar
        self.universe.snap_listing_dates(
            lambda day: cal.day(cal.index_on_or_after(day)) if cal.first <= day <= cal.last else day
        )
        self.daily = DailyModel(self.universe, self.calendar, seed)
        self.lock = threading.RLock()
        self.days: dict[int, DayContext] = {}
        self.segments: dict[tuple[int, int], SegmentPaths] = {}
        #: segments being drawn, by key: a second reader waits for the first draw instead of repeating it
        self.drawing: dict[tuple[int, int], threading.Event] = {}


_SHARED: dict[tuple[int, dt.date], _Shared] = {}

#: Sessions after a computed one whose rows of the stocks' chains go to the day cache (~0.2 MB each):
#: a process starting on one of them builds its skeleton without the daily history since 2015
DAY_SLICES_AHEAD = 20

#: Whole-market segments kept (~58 MB each): the live day reads the current one and draws the next just
#: before its first slot; an older one is never read again.
SEGMENTS_KEPT = 2


@dataclass(frozen=True)
class MarketTime:
    """Where the market is: ``day_index`` is the latest session that has started (or -1), ``slot``
    the latest snapshot slot of that session that has happened (-1 before 09:15)."""

    now_ms: int
    day_index: int
    slot: int

    @property
    def in_day(self) -> bool:
        return self.day_index >= 0 and self.slot >= 0


class SimMarket:
    """A deterministic simulated market. Two markets with the same seed produce identical data."""

    def __init__(
        self,
        seed: int = 0,
        clock: MarketClock | None = None,
        history_start: dt.date = DEFAULT_HISTORY_START,
    ) -> None:
        self.seed = int(seed)
        with _SHARED_LOCK:
            shared = _SHARED.get((self.seed, history_start))
            if shared is None:
                shared = _SHARED[(self.seed, history_start)] = _Shared(self.seed, history_start)
        self._shared = shared
        self.universe, self.calendar, self.daily = shared.universe, shared.calendar, shared.daily
        self.clock = clock or MarketClock(self.calendar)
        self._paths: OrderedDict[tuple[int, int], DayPath] = OrderedDict()
        self._lock = threading.RLock()
        self.keys = np.array([code_key(inst.code) for inst in self.universe.instruments], dtype=np.int64)
        #: The data directory's cache of computed sessions (None: compute everything in this process)
        self.day_cache: DayCache | None = None

    def use_data_dir(self, data_dir: Path | str) -> None:
        """Read and write the day cache under the simulator's data directory (see :mod:`.daycache`)."""
        import hashlib

        cal = self.calendar
        sessions = hashlib.blake2b(cal.ordinals.tobytes(), digest_size=4).hexdigest()
        self.day_cache = DayCache(Path(data_dir), self.seed, cal.first, f"{len(cal)}-{sessions}")
        self.daily.chain_cache = self.day_cache  # shared by this seed's markets: the values are the same

    # ------------------------------------------------------------------ time

    def time(self, now_ms: int | None = None) -> MarketTime:
        now = self.clock.now_ms() if now_ms is None else now_ms
        day = cst_date_of_ms(now)
        if day > self.calendar.last:
            return MarketTime(now, len(self.calendar) - 1, N_SLOTS - 1)
        d = self.calendar.index_on_or_before(day)
        if d < 0:
            return MarketTime(now, -1, -1)
        if self.calendar.day(d) == day:
            slot = slot_at(seconds_of_day_of_ms(now))
            if slot < 0:  # before today's auction: the previous session is the latest complete one
                return MarketTime(now, d - 1, N_SLOTS - 1) if d > 0 else MarketTime(now, -1, -1)
            return MarketTime(now, d, slot)
        return MarketTime(now, d, N_SLOTS - 1)

    def last_complete_day(self, t: MarketTime | None = None) -> int:
        """Index of the latest session whose closing match has happened."""
        t = t or self.time()
        return t.day_index if t.slot >= CLOSE_SLOT else t.day_index - 1

    # ------------------------------------------------------------------ instruments

    def index_of(self, code: str) -> int | None:
        return self.universe.by_code.get(code)

    def listed_by(self, i: int, d: int) -> bool:
        return int(self.daily.list_index[i]) <= d

    def codes(
        self, market: str | None = None, kinds: tuple[str, ...] = ("stock", "index", "etf")
    ) -> list[str]:
        return [
            inst.code
            for inst in self.universe.instruments
            if inst.kind in kinds and (market is None or inst.market == market)
        ]

    # ------------------------------------------------------------------ intraday

    def day_inputs(self, i: int, d: int) -> DayInputs:
        knots, seg_high, seg_low, seg_volume, seg_amount = self.daily.day_knots(i, d)
        c = self.daily.chain(i)
        r = d - c.start
        lim = self.daily.limits(i, d)
        pre = int(c.pre[r])
        down, up = lim if lim is not None else (1, pre * 20)
        return DayInputs(
            knots=knots,
            seg_high=seg_high,
            seg_low=seg_low,
            seg_volume=seg_volume,
            seg_amount=seg_amount,
            close=int(c.close[r]),
            pre=pre,
            down=down,
            up=up,
            tick=float(self.universe.tick[i]),
            p_trade=float(self.universe.p_trade[i]),
            key=int(self.keys[i]),
            day_ordinal=self.calendar.day(d).toordinal(),
            seed=self.seed,
            suspended=bool(c.flags[r] & FLAG_SUSPENDED),
        )

    def day_path(self, i: int, d: int) -> DayPath:
        """The 3 s path of one instrument-day (LRU-cached)."""
        key = (i, d)
        with self._lock:
            p = self._paths.get(key)
            if p is not None:
                self._paths.move_to_end(key)
                return p
        p = build_day_paths([self.day_inputs(i, d)])[0]
        with self._lock:
            self._paths[key] = p
            while len(self._paths) > _PATH_CACHE:
                self._paths.popitem(last=False)
        return p

    def warm_day_paths(self, idx: list[int], d: int) -> None:
        """Build the missing day paths of many instruments of session ``d`` in one vectorised pass (a
        whole-market tick-history read: one by one they cost ~4 ms each). At most the cache's size."""
        with self._lock:
            missing = [i for i in dict.fromkeys(idx) if (i, d) not in self._paths][:_PATH_CACHE]
        missing = [i for i in missing if self.listed_by(i, d)]
        if not missing:
            return
        self.daily.warm_knots(missing, int(self.daily.block_id[d]))  # vectorised, not one code at a time
        built = build_day_paths([self.day_inputs(i, d) for i in missing])
        with self._lock:
            for i, p in zip(missing, built, strict=True):
                self._paths[(i, d)] = p
            while len(self._paths) > _PATH_CACHE:
                self._paths.popitem(last=False)

    def day_paths(self, i: int, days: list[int]) -> list[DayPath]:
        """Paths of many days of one instrument, vectorised (used for minute history)."""
        with self._lock:
            missing = [d for d in days if (i, d) not in self._paths]
        if missing:
            for block in sorted({int(self.daily.block_id[d]) for d in missing}):
                self.daily.warm_knots([i], block)
            for a in range(0, len(missing), 16):
                chunk = missing[a : a + 16]
                built = build_day_paths([self.day_inputs(i, d) for d in chunk])
                with self._lock:
                    for d, p in zip(chunk, built, strict=True):
                        self._paths[(i, d)] = p
                    while len(self._paths) > _PATH_CACHE:
                        self._paths.popitem(last=False)
        out = []
        for d in days:
            with self._lock:
                p = self._paths.get((i, d))
            out.append(p if p is not None else self.day_path(i, d))
        return out

    def minute_bars(self, i: int, d: int, upto_slot: int = N_SLOTS - 1) -> dict[str, np.ndarray]:
        return minute_bars(self.day_path(i, d), upto_slot)

    # ------------------------------------------------------------------ snapshots

    def tick_dict(self, i: int, d: int, slot: int) -> dict | None:
        """The xtquant tick dict of one instrument's latest snapshot at or before ``slot`` of session
        ``d`` (None if it has published none yet that day)."""
        out = self.tick_dicts([i], d, slot)
        return out[0] if out else None

    def snapshot_arrays(
        self, idx: list[int], d: int, slot: int
    ) -> tuple[list[int], SnapshotArrays, np.ndarray]:
        """Latest-snapshot state of instruments from their day paths (history path; the live
        session keeps the same arrays incrementally), and which of them are suspended for the
        session. Instruments without a snapshot are dropped."""
        kept, rows = [], []
        for i in idx:
            if not self.listed_by(i, d):
                continue
            p = self.day_path(i, d)
            k = _last_emitted(p, slot)
            if k >= 0:
                kept.append(i)
                rows.append((p, k))
        arr = lambda f: np.array([f(p, k) for p, k in rows])  # noqa: E731
        a = SnapshotArrays(
            slot=arr(lambda p, k: k).astype(np.int64),
            price=arr(lambda p, k: p.price[k]).astype(np.int64),
            open=arr(lambda p, k: p.open_price if k >= OPEN_SLOT else 0).astype(np.int64),
            high=arr(lambda p, k: p.running_high[k]).astype(np.int64),
            low=arr(lambda p, k: p.running_low[k]).astype(np.int64),
            cum_volume=arr(lambda p, k: p.cum_volume[k]).astype(np.int64),
            cum_amount=arr(lambda p, k: p.cum_amount[k]).astype(np.float64),
            cum_trades=arr(lambda p, k: p.cum_trades[k]).astype(np.int64),
            pre=arr(lambda p, k: p.pre).astype(np.int64),
            down=arr(lambda p, k: p.down).astype(np.int64),
            up=arr(lambda p, k: p.up).astype(np.int64),
            tick=arr(lambda p, k: p.tick).astype(np.float64),
            auction_volume=arr(lambda p, k: p.volume[OPEN_SLOT]).astype(np.int64),
        )
        return kept, a, np.array([p.suspended for p, _ in rows], bool)

    def tick_history(self, i: int, d: int, upto_slot: int = N_SLOTS - 1, from_slot: int = 0) -> list[dict]:
        """Every snapshot one instrument published in session ``d`` from ``from_slot`` up to ``upto_slot``
        (vectorised; only the asked slots are built, so a short range of a long day stays cheap)."""
        if not self.listed_by(i, d):
            return []
        p = self.day_path(i, d)
        slots = np.flatnonzero(p.emitted[: upto_slot + 1])
        if from_slot > 0:
            slots = slots[slots >= from_slot]
        if not len(slots):
            return []
        n = len(slots)
        opened = slots >= OPEN_SLOT
        a = SnapshotArrays(
            slot=slots.astype(np.int64),
            price=p.price[slots],
            open=np.where(opened, p.open_price, 0).astype(np.int64),
            high=p.running_high[slots],
            low=p.running_low[slots],
            cum_volume=p.cum_volume[slots],
            cum_amount=p.cum_amount[slots],
            cum_trades=p.cum_trades[slots],
            pre=np.full(n, p.pre, np.int64),
            down=np.full(n, p.down, np.int64),
            up=np.full(n, p.up, np.int64),
            tick=np.full(n, p.tick),
            auction_volume=np.full(n, p.volume[OPEN_SLOT], np.int64),
        )
        return build_tick_dicts(
            a,
            ms_of(self.calendar.day(d), 0),
            np.full(n, self.universe.kind[i] == "index"),
            np.full(n, self.universe.p_trade[i]),
            np.full(n, self.keys[i], np.int64),
            np.full(n, p.suspended),
        )

    def tick_dicts(self, idx: list[int], d: int, slot: int) -> list[dict]:
        kept, a, suspended = self.snapshot_arrays(idx, d, slot)
        if not kept:
            return []
        ia = np.asarray(kept, dtype=np.int64)
        return build_tick_dicts(
            a,
            ms_of(self.calendar.day(d), 0),
            self.universe.kind[ia] == "index",
            self.universe.p_trade[ia],
            self.keys[ia],
            suspended,
        )

    def has_snapshot(self, i: int, d: int, slot: int) -> bool:
        """Whether the instrument has published any snapshot in session ``d`` by ``slot``."""
        if not self.listed_by(i, d):
            return False
        return _last_emitted(self.day_path(i, d), slot) >= 0

    # ------------------------------------------------------------------ reference data

    def instrument_detail(self, i: int, d: int) -> dict:
        """get_instrument_detail's 31 keys for session ``d`` (limits and preClose of that day)."""
        inst = self.universe.instruments[i]
        tick = inst.tick
        dec = 3 if tick < 0.01 else 2
        ctx = self._known_context(d)
        if ctx is not None and ctx.listed[i]:  # the day's skeleton has them: no daily history needed
            pre = round(float(ctx.pre[i]) * tick, dec)
            lim = (int(ctx.down[i]), int(ctx.up[i])) if ctx.limited[i] else None
            susp_days = int(ctx.susp_days[i])
        else:
            c = self.daily.chain(i)
            r = min(max(d - c.start, 0), len(c.pre) - 1)
            pre = round(float(c.pre[r]) * tick, dec) if len(c.pre) else 0.0
            lim = self.daily.limits(i, d) if d >= c.start else None
            susp_days = _suspended_days(c, d)
        if inst.kind == "index" or lim is None:
            up = down = 0.0 if inst.kind == "index" else None
            if up is None:  # no limit (first days of a listing): vendors publish sentinels
                up, down = 1.7976931348623157e308, 0.0
        else:
            down, up = round(lim[0] * tick, dec), round(lim[1] * tick, dec)
        dbl_max = 1.7976931348623157e308
        int_max = 2147483647
        return {
            "ExchangeID": inst.market,
            "InstrumentID": inst.symbol,
            "InstrumentName": inst.name,
            "ProductID": "",
            "ProductName": "",
            "ProductType": -1,
            "ExchangeCode": inst.symbol,
            "UniCode": inst.symbol,
            "CreateDate": "0",
            "OpenDate": inst.list_date.strftime("%Y%m%d"),
            "ExpireDate": "99999999",
            "PreClose": pre,
            "SettlementPrice": pre,
            "UpStopPrice": up,
            "DownStopPrice": down,
            "FloatVolume": float(inst.float_shares),
            "TotalVolume": float(inst.total_shares),
            "LongMarginRatio": dbl_max,
            "ShortMarginRatio": dbl_max,
            "PriceTick": tick,
            "VolumeMultiple": 1,
            "MainContract": int_max,
            "LastVolume": int_max,
            "InstrumentStatus": susp_days,
            "IsTrading": False,
            "IsRecent": False,
            "ProductTradeQuota": None,
            "ContractTradeQuota": None,
            "ProductOpenInterestQuota": None,
            "ContractOpenInterestQuota": None,
            "TradingDay": self.calendar.day(d).strftime("%Y%m%d"),
        }

    # ------------------------------------------------------------------ whole-market day (live)

    def day_context(self, d: int) -> DayContext:
        """Every instrument's skeleton of session ``d`` (shared by all markets with this seed; read from
        the data directory's day cache when a process has computed it, else computed and written)."""
        with self._shared.lock:
            ctx = self._shared.days.get(d)
            if ctx is not None:
                return ctx
            ctx = self._cached_context(d)
            if ctx is None:
                sliced = self.daily.day_chains(d) is not None
                ctx = _build_day_context(self, d)
                if self.day_cache is not None:
                    self.day_cache.save_context(self.calendar.day(d), context_arrays(ctx))
                    if not sliced:  # the chains were computed: keep the next sessions' rows of them
                        self.day_cache.save_day_slices(self.daily.day_slices(d, DAY_SLICES_AHEAD))
            self._shared.days[d] = ctx
            while len(self._shared.days) > 2:
                self._shared.days.pop(next(iter(self._shared.days)))
            return ctx

    def _known_context(self, d: int) -> DayContext | None:
        """Session ``d``'s whole-market skeleton if this process has it or the day cache holds it
        (then kept in memory); None rather than computing it, or waiting for a build in progress."""
        ctx = self._shared.days.get(d)  # a dict read needs no lock (a build holds it for seconds)
        if ctx is not None or self.day_cache is None:
            return ctx
        ctx = self._cached_context(d)
        if ctx is not None and self._shared.lock.acquire(blocking=False):
            try:  # kept for the next detail; when a build holds the lock, it will store its own
                self._shared.days.setdefault(d, ctx)
                while len(self._shared.days) > 2:
                    self._shared.days.pop(next(iter(self._shared.days)))
            finally:
                self._shared.lock.release()
        return ctx

    def _cached_context(self, d: int) -> DayContext | None:
        if self.day_cache is None:
            return None
        arrays = self.day_cache.load_context(self.calendar.day(d))
        if arrays is None:
            return None
        return DayContext(ordinal=self.calendar.day(d).toordinal(), **arrays)

    def rows_context(self, d: int, rows: np.ndarray) -> DayContext:
        """The skeleton of session ``d`` for instrument rows ``rows`` only: sliced from the whole
        market's (in memory or in the day cache) when there is one, else computed for those rows alone
        (the same values: every instrument's numbers come from its own random streams)."""
        whole = self._shared.days.get(d)  # no lock: a whole-market build holds it for seconds
        if whole is None:
            whole = self._cached_context(d)
        if whole is not None:
            return _context_rows(whole, rows)
        return _build_day_context(self, d, rows)

    def day_segment(self, d: int, j: int, keep: bool = True) -> SegmentPaths:
        """Segment ``j`` of session ``d`` for every instrument (vectorised; shared, the last few kept).

        Drawing takes a good fraction of a second for the whole market, so it runs outside the
        seed-wide lock: snapshot and history queries that need other data are not held up behind it,
        and a second caller of the same segment waits for the first draw instead of repeating it. With a
        day cache, a segment another process drew is read from it (the same arrays), and one drawn here
        is written there for the processes started later in that segment (unless ``keep`` is False: a
        catch-up that passes the whole segment, which the state after it covers)."""
        key = (d, j)
        while True:
            with self._shared.lock:
                seg = self._shared.segments.get(key)
                if seg is not None:
                    return seg
                pending = self._shared.drawing.get(key)
                if pending is None:
                    done = self._shared.drawing[key] = threading.Event()
                    ctx = self.day_context(d)
                    break
            pending.wait()  # drawn by another thread (or it failed: then this one tries)
        try:
            seg = self._cached_segment(d, j)
            if seg is None:
                seg = simulate_segments(self._segment_rows(ctx, j))
                if keep and self.day_cache is not None:
                    self.day_cache.save_segment(self.calendar.day(d), j, vars(seg))
            with self._shared.lock:
                self._shared.segments[key] = seg
                while len(self._shared.segments) > SEGMENTS_KEPT:
                    self._shared.segments.pop(next(iter(self._shared.segments)))
            return seg
        finally:
            with self._shared.lock:
                del self._shared.drawing[key]
            done.set()

    def _cached_segment(self, d: int, j: int) -> SegmentPaths | None:
        """Segment ``j`` of session ``d`` as a process that drew it wrote it to the day cache."""
        if self.day_cache is None:
            return None
        arrays = self.day_cache.load_segment(self.calendar.day(d), j)
        if arrays is None or len(arrays["price"]) != len(self.universe):
            return None
        return SegmentPaths(**arrays)

    def has_segment(self, d: int, j: int) -> bool:
        """Whether segment ``j`` of session ``d`` is drawn and kept in memory."""
        with self._shared.lock:
            return (d, j) in self._shared.segments

    def _segment_rows(self, ctx: DayContext, j: int, rows: np.ndarray | None = None) -> SegmentRows:
        """Segment ``j``'s inputs for the context's instruments (``rows``: the instruments of a
        context made by :meth:`rows_context`; None: the whole market)."""
        ia = np.arange(len(self.universe)) if rows is None else np.asarray(rows, np.int64)
        n = len(ia)
        keys = self.keys[ia].tolist()
        return SegmentRows(
            start=ctx.knots[:, j],
            end=ctx.knots[:, j + 1],
            high=ctx.seg_high[:, j],
            low=ctx.seg_low[:, j],
            volume=ctx.seg_volume[:, j + 1],
            amount=ctx.seg_amount[:, j + 1],
            length=np.full(n, SEG_SIZES[j], np.int64),
            p_trade=self.universe.p_trade[ia].astype(np.float64),
            tick=self.universe.tick[ia].astype(np.float64),
            seeds=[[self.seed, 20, k, ctx.ordinal, j] for k in keys],
        )

    def rows_segment(self, ctx: DayContext, rows: np.ndarray, j: int) -> SegmentPaths:
        """Segment ``j`` drawn for ``rows`` only (each row's path equals its whole-market draw)."""
        return simulate_segments(self._segment_rows(ctx, j, rows))

    def board(self, i: int) -> Board:
        return Board(int(self.universe.board[i]))


def _last_emitted(path: DayPath, slot: int) -> int:
    """Latest slot <= ``slot`` with a published snapshot, or -1."""
    if slot < 0:
        return -1
    em = np.flatnonzero(path.emitted[: slot + 1])
    return int(em[-1]) if len(em) else -1


def _context_rows(ctx: DayContext, rows: np.ndarray) -> DayContext:
    """The rows ``rows`` of a whole-market context (copies: a cached context is memory-mapped)."""
    pick = {f.name: np.array(getattr(ctx, f.name)[rows]) for f in fields(DayContext) if f.name != "ordinal"}
    return DayContext(ordinal=ctx.ordinal, **pick)


def _build_day_context(m: SimMarket, d: int, rows: np.ndarray | None = None) -> DayContext:
    """Session ``d``'s skeleton for every instrument, or for the instruments ``rows`` only.

    Gathered row by row from the daily layer's chains and knots, then vectorised over the rows (limits,
    the opening auction's paths): the same values as :meth:`SimMarket.day_inputs` and
    :func:`~.intraday.auction_path` of each instrument, without their per-row numpy overhead (a
    whole-market skeleton is ~5,900 rows)."""
    ia = np.arange(len(m.universe)) if rows is None else np.asarray(rows, np.int64)
    n = len(ia)
    listed = m.daily.list_index[ia] <= d
    idx = np.flatnonzero(listed)
    day_knots = m.daily.day_knots_many(ia[idx], d)
    sliced = m.daily.day_chains(d) or {}  # stocks' rows of session d, when the day cache has them
    knots = np.zeros((n, N_SEG + 1), np.int64)
    seg_high = np.zeros((n, N_SEG), np.int64)
    seg_low = np.zeros((n, N_SEG), np.int64)
    seg_volume = np.zeros((n, N_SEG + 2), np.int64)
    seg_amount = np.zeros((n, N_SEG + 2))
    close = np.zeros(n, np.int64)
    pre = np.zeros(n, np.int64)
    down = np.ones(n, np.int64)
    up = np.zeros(n, np.int64)
    ordinal = m.calendar.day(d).toordinal()
    auction = np.zeros((n, N_AUCTION), np.int64)
    active = np.zeros((n, N_AUCTION), bool)
    limited = np.zeros(n, bool)
    susp_days = np.zeros(n, np.int64)
    pct = np.zeros(n, np.int64)
    for r in idx.tolist():
        i = int(ia[r])
        c, susp_days[r] = sliced[i] if i in sliced else (m.daily.chain(i), -1)
        pre[r], close[r], pct[r] = c.pre[d - c.start], c.close[d - c.start], c.limit_pct[d - c.start]
        if susp_days[r] < 0:
            susp_days[r] = _suspended_days(c, d)
        k = day_knots[i]
        knots[r], seg_high[r], seg_low[r], seg_volume[r], seg_amount[r] = (
            k.knots[0],
            k.seg_high[0],
            k.seg_low[0],
            k.seg_volume[0],
            k.seg_amount[0],
        )
    if len(idx):
        limited[idx] = pct[idx] != NO_LIMIT
        lo, hi = limit_ticks(pre[idx], np.maximum(pct[idx], 0))
        down[idx] = np.where(limited[idx], lo, 1)
        up[idx] = np.where(limited[idx], hi, pre[idx] * 20)
        keys = [[m.seed, 22, k, ordinal] for k in m.keys[ia[idx]].tolist()]
        auction[idx], act = auction_paths(
            knots[idx, 0], down[idx], up[idx], keys, m.universe.p_trade[ia[idx]].astype(np.float64)
        )
        active[idx] = act & (seg_volume[idx, 0] > 0)[:, None]
    return DayContext(
        ordinal,
        listed,
        knots,
        seg_high,
        seg_low,
        seg_volume,
        seg_amount,
        close,
        pre,
        down,
        up,
        auction,
        active,
        limited,
        susp_days,
    )
