"""The live session: the whole market's current trading day, advanced 3 s slot by 3 s slot.

:class:`LiveSession` keeps every instrument's latest-snapshot state for the current session and moves
it forward segment by segment (one vectorised 15-minute segment for all ~5,900 instruments at a time),
which is what makes whole-market snapshots cheap. Its paths are drawn from the same random streams as
the per-instrument history (:mod:`.daypath`), so live snapshots equal historical ticks exactly.

:class:`Publisher` is the thread that follows the clock and hands each slot's updates to the
subscribed callbacks (on its own thread, as xtquant's dispatcher threads do).
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .daypath import CLOSE_SLOT, CONT0, N_SLOTS, OPEN_SLOT, SUSPENDED_SLOT
from .intraday import SegmentPaths
from .market import MarketTime, SimMarket
from .snapshot import SnapshotArrays, build_tick_dicts
from .timeutil import SEG_BOUNDS, SEG_LEN, ms_of

#: More slots than this behind the clock are not replayed one by one (one conflated burst instead).
MAX_REPLAY_SLOTS = 40
#: A slot's whole-market tick dicts are built this many at a time (~2-3 ms of Python each) ...
DICT_SLICE_ROWS = 500
#: ... with the interpreter lock let go this long in between, so the process's other threads take
#: their turns within a slice instead of waiting for the interpreter's 5 ms switch interval.
SLICE_PAUSE_S = 0.00005


def _take(arrays: SnapshotArrays, index: np.ndarray | slice) -> SnapshotArrays:
    """The rows ``index`` of every array (a copy for an index array, views for a slice)."""
    return SnapshotArrays(**{f: getattr(arrays, f)[index] for f in SnapshotArrays.__dataclass_fields__})


#: Slots after which a fresh advance's state is kept in the day cache: the opening match, the end of
#: each continuous segment and the close (a fresh process restores the latest one before its time).
BOUNDARY_SLOTS = frozenset(
    [OPEN_SLOT, CLOSE_SLOT] + [CONT0 + int(SEG_BOUNDS[j + 1]) - 1 for j in range(len(SEG_BOUNDS) - 1)]
)


class LiveSession:
    """Latest-snapshot state of every instrument for one session, advanced incrementally.

    ``rows`` (instrument indices) makes a session of those instruments only: the per-code answer of a
    fresh process (issue 19: the first ``get_full_tick`` must not build the whole market). Every
    instrument's numbers come from its own random streams and every operation here is per instrument,
    so a row's state equals its state in the whole-market session advanced the same way.
    """

    def __init__(self, market: SimMarket, rows: np.ndarray | None = None) -> None:
        self.m = market
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        #: instrument index of each of this session's rows
        self.index = np.arange(len(market.universe)) if self.rows is None else self.rows
        self.n = len(self.index)
        self._own_segment: tuple[int, int, SegmentPaths] | None = None  # (day, j, paths) of a rows session
        self._fresh: tuple[int, SnapshotArrays] | None = None
        self.day = -1
        self.slot = -1
        self._lock = threading.RLock()
        #: slots pushed one by one, and slots merged into a conflated catch-up update because the
        #: publisher fell more than ``max_replay`` slots behind the clock (a machine too slow for the
        #: clock's speed: benches check this stays 0)
        self.pushed_slots = 0
        self.merged_slots = 0

    # ------------------------------------------------------------------ setup per day

    def _start_day(self, d: int) -> None:
        ctx = self.m.day_context(d) if self.rows is None else self.m.rows_context(d, self.rows)
        n = self.n
        self.day = d
        self.slot = -1
        self.ctx = ctx
        self.day_start_ms = ms_of(self.m.calendar.day(d), 0)
        self.listed = ctx.listed
        self.knots, self.seg_high, self.seg_low = ctx.knots, ctx.seg_high, ctx.seg_low
        self.seg_volume, self.seg_amount = ctx.seg_volume, ctx.seg_amount
        self.close, self.auction, self.auction_active = ctx.close, ctx.auction, ctx.auction_active
        #: suspended for the whole session: one flat snapshot at SUSPENDED_SLOT, at the previous close
        self.suspended = (ctx.susp_days > 0) & ctx.listed
        self.state = SnapshotArrays(
            slot=np.full(n, -1, np.int64),
            price=np.zeros(n, np.int64),
            open=np.zeros(n, np.int64),
            high=np.zeros(n, np.int64),
            low=np.zeros(n, np.int64),
            cum_volume=np.zeros(n, np.int64),
            cum_amount=np.zeros(n),
            cum_trades=np.zeros(n, np.int64),
            pre=ctx.pre,
            down=ctx.down,
            up=ctx.up,
            tick=self.m.universe.tick[self.index].astype(np.float64),
            auction_volume=ctx.seg_volume[:, 0].copy(),
        )
        #: (slot, state) of a fresh advance at the latest boundary this session has passed: the live
        #: session moves slot by slot (other float sums), so the fresh states it passes are extended
        #: beside it and written to the day cache for processes started later (:meth:`_extend_fresh`)
        self._fresh: tuple[int, SnapshotArrays] | None = (
            (-1, replace(self.state)) if self.rows is None and self.m.day_cache is not None else None
        )

    def _segment(self, j: int, keep: bool = True) -> SegmentPaths:
        """Segment ``j`` of the day (``keep``: worth writing to the day cache, see
        :meth:`SimMarket.day_segment`)."""
        if self.rows is None:
            return self.m.day_segment(self.day, j, keep)
        own = self._own_segment
        if own is None or own[:2] != (self.day, j):
            own = self._own_segment = (self.day, j, self.m.rows_segment(self.ctx, self.rows, j))
        return own[2]

    # ------------------------------------------------------------------ advancing

    def advance(
        self,
        t: MarketTime,
        on_slot: Callable[[int, np.ndarray], None] | None = None,
        max_replay: int | None = MAX_REPLAY_SLOTS,
    ) -> None:
        """Move the state to ``t``. With ``on_slot``, call ``on_slot(slot, emitted_rows)`` after each
        slot; of a long catch-up only the last ``max_replay`` slots are replayed one by one (None: all),
        the rest arrive as one conflated update."""
        with self._lock:
            if t.day_index < 0:
                return
            if t.day_index != self.day:
                self._start_day(t.day_index)
            target = min(t.slot, N_SLOTS - 1)
            if target <= self.slot:
                return
            if on_slot is None:
                first_emit = target + 1
            elif max_replay is None:
                first_emit = self.slot + 1
            else:
                first_emit = max(self.slot + 1, target - max_replay + 1)
            changed = None
            if first_emit > self.slot + 1:
                if on_slot is not None:
                    self.merged_slots += first_emit - 1 - self.slot
                changed = self._apply_range(self.slot + 1, first_emit - 1)
        if on_slot is not None and changed is not None and changed.any():
            on_slot(first_emit - 1, np.flatnonzero(changed))
        # The lock is taken per slot and released around the callbacks: a reader (get_full_tick) waits
        # for one slot's update at most, never for a whole catch-up and its pushes. Only one thread
        # advances at a time (Publisher.step's lock).
        for k in range(max(first_emit, self.slot + 1), target + 1):
            self._prefetch(k)  # a new 15-minute segment takes seconds to draw: not while readers wait
            with self._lock:
                if k <= self.slot:  # applied meanwhile (defensive: advancing is serialized)
                    continue
                emitted = self._apply_slot(k)
                if on_slot is not None:
                    self.pushed_slots += 1
            if on_slot is not None and emitted.any():
                on_slot(k, np.flatnonzero(emitted))
        self._extend_fresh()

    def _prefetch(self, k: int) -> None:
        """Draw (and cache) the segment slot ``k`` reads, outside the lock."""
        if OPEN_SLOT < k < CLOSE_SLOT:  # the continuous slots of _apply_slot
            c = k - CONT0
            self._segment(int(np.searchsorted(SEG_BOUNDS, c, side="right") - 1))

    def _apply_slot(self, k: int) -> np.ndarray:
        s = self.state
        if k < OPEN_SLOT:
            emitted = self.auction_active[:, k]
            s.price = np.where(emitted, self.auction[:, k], s.price)
            if k == SUSPENDED_SLOT:  # a suspended stock's one snapshot of the day
                emitted = emitted | self.suspended
                s.price = np.where(self.suspended, s.pre, s.price)
        elif k == OPEN_SLOT:
            vol = self.seg_volume[:, 0]
            emitted = vol > 0
            price = self.knots[:, 0]
            self._trade(
                emitted, price, vol, self.seg_amount[:, 0], np.where(vol > 0, np.maximum(vol // 8, 1), 0)
            )
            s.open = np.where(emitted, price, s.open)
        elif k == CLOSE_SLOT:
            vol = self.seg_volume[:, -1]
            emitted = vol > 0
            self._trade(
                emitted,
                self.close,
                vol,
                self.seg_amount[:, -1],
                np.where(vol > 0, np.maximum(vol // 8, 1), 0),
            )
        else:
            c = k - CONT0
            j = int(np.searchsorted(SEG_BOUNDS, c, side="right") - 1)
            pos = c - int(SEG_BOUNDS[j])
            seg = self._segment(j)
            emitted = seg.traded[:, pos]
            self._trade(
                emitted, seg.price[:, pos], seg.volume[:, pos], seg.amount[:, pos], seg.trades[:, pos]
            )
        emitted = emitted & self.listed
        s.slot = np.where(emitted, k, s.slot)
        self.slot = k
        return emitted

    def _apply_range(self, a: int, b: int, cached: bool = True) -> np.ndarray:
        """Apply slots a..b without per-slot emission; returns which instruments changed.

        From the session's start (``a == 0``, a fresh advance) it starts at the latest state the day
        cache holds before ``b`` and, in the whole-market session, writes the states it passes."""
        changed = np.zeros(self.n, bool)
        k = a
        fresh = cached and a == 0 and self.slot == -1
        if fresh:
            k = self._restore_fresh(b)
            if k > 0:
                changed |= self.state.slot >= 0
        while k <= b:
            if CONT0 <= k < CLOSE_SLOT:
                c0 = k - CONT0
                j = int(np.searchsorted(SEG_BOUNDS, c0, side="right") - 1)
                seg_end = CONT0 + int(SEG_BOUNDS[j + 1]) - 1
                e = min(b, seg_end)
                changed |= self._apply_continuous_block(
                    j, c0 - int(SEG_BOUNDS[j]), e - CONT0 - int(SEG_BOUNDS[j])
                )
                self.slot = e
                k = e + 1
            else:
                changed |= self._apply_slot(k)
                k += 1
            if fresh and self.slot in BOUNDARY_SLOTS:
                self._save_fresh()
        return changed

    def _restore_fresh(self, b: int) -> int:
        """Take the latest cached fresh state at or before slot ``b``; returns the next slot to apply."""
        cache = self.m.day_cache
        if cache is None:
            return 0
        day = self.m.calendar.day(self.day)
        for slot in reversed(cache.state_slots(day)):
            if slot > b:
                continue
            got = cache.load_state(day, slot)
            if got is None or len(got["slot"]) != len(self.m.universe):
                continue
            for name, value in got.items():
                setattr(self.state, name, value if self.rows is None else value[self.rows])
            self.slot = slot
            return slot + 1
        return 0

    def _extend_fresh(self) -> None:
        """Bring the fresh-advance state up to the latest boundary the session has passed (from the
        cache when another process wrote it, else computed from the previous one on a scratch copy of
        the session, outside its lock) and write it to the day cache: a whole-market first query
        started later restores it instead of drawing every segment of the day again.

        Only segments still in memory are used: after a jump of the clock the extension stops (a
        later fresh process computes and writes what is missing) rather than redraw the day here."""
        cache = self.m.day_cache
        if self._fresh is None or cache is None:
            return
        fslot, fstate = self._fresh
        todo = sorted(b for b in BOUNDARY_SLOTS if fslot < b <= self.slot)
        if not todo:
            return
        day = self.m.calendar.day(self.day)
        have = [b for b in cache.state_slots(day) if fslot < b <= self.slot]
        if have:
            got = cache.load_state(day, have[-1])
            if got is not None and len(got["slot"]) == self.n:
                fslot, fstate = have[-1], replace(fstate, **got)
                todo = [b for b in todo if b > fslot]
        scratch = copy.copy(self)  # shares the day's read-only arrays; its own state, slot and lock
        scratch._lock = threading.RLock()
        scratch._fresh = None
        for b in todo:
            if CONT0 <= b < CLOSE_SLOT:
                j = int(np.searchsorted(SEG_BOUNDS, b - CONT0, side="right") - 1)
                if not self.m.has_segment(self.day, j):
                    self._fresh = None
                    return
            scratch.state, scratch.slot = replace(fstate), fslot
            scratch._apply_range(fslot + 1, b, cached=False)
            fslot, fstate = b, scratch.state
            cache.save_state(day, b, fstate)
        self._fresh = (fslot, fstate)

    def _save_fresh(self) -> None:
        """Keep the whole market's fresh state at this boundary for the next process."""
        cache = self.m.day_cache
        if cache is not None and self.rows is None:
            cache.save_state(self.m.calendar.day(self.day), self.slot, self.state)

    def _apply_continuous_block(self, j: int, p0: int, p1: int) -> np.ndarray:
        # a block that reaches the segment's end passes it whole: the state after it is cached instead
        seg = self._segment(j, keep=p1 < int(SEG_BOUNDS[j + 1] - SEG_BOUNDS[j]) - 1)
        s = self.state
        cols = slice(p0, p1 + 1)
        traded = seg.traded[:, cols]
        any_t = traded.any(axis=1) & self.listed
        s.cum_volume = s.cum_volume + seg.volume[:, cols].sum(axis=1)
        s.cum_amount = s.cum_amount + seg.amount[:, cols].sum(axis=1)
        s.cum_trades = s.cum_trades + seg.trades[:, cols].sum(axis=1)
        big = np.iinfo(np.int64).max
        hi = np.where(traded, seg.price[:, cols], 0).max(axis=1)
        lo = np.where(traded, seg.price[:, cols], big).min(axis=1)
        s.high = np.where(any_t, np.maximum(s.high, hi), s.high)
        s.low = np.where(any_t, np.where(s.low > 0, np.minimum(s.low, lo), lo), s.low)
        last_pos = p1 - np.argmax(traded[:, ::-1], axis=1)
        s.price = np.where(any_t, seg.price[np.arange(self.n), last_pos], s.price)
        s.slot = np.where(any_t, CONT0 + int(SEG_BOUNDS[j]) + last_pos, s.slot)
        return any_t

    def _trade(
        self, emitted: np.ndarray, price: np.ndarray, vol: np.ndarray, amt: np.ndarray, trades: np.ndarray
    ) -> None:
        s = self.state
        s.cum_volume = s.cum_volume + vol
        s.cum_amount = s.cum_amount + amt
        s.cum_trades = s.cum_trades + trades
        s.price = np.where(emitted, price, s.price)
        s.high = np.where(emitted, np.maximum(s.high, price), s.high)
        s.low = np.where(emitted, np.where(s.low > 0, np.minimum(s.low, price), price), s.low)

    # ------------------------------------------------------------------ reading

    def rows_with_data(self, rows: np.ndarray | None = None) -> np.ndarray:
        return np.flatnonzero(self.state.slot >= 0) if rows is None else rows[self.state.slot[rows] >= 0]

    def tick_dicts(self, rows: np.ndarray, slice_rows: int = 0) -> list[dict]:
        """Tick dicts for rows of this session (each must have a snapshot today); in the whole-market
        session a row is an instrument index.

        ``slice_rows``: build the dicts that many rows at a time, the interpreter lock let go for a
        moment in between (:data:`SLICE_PAUSE_S`). Building a whole market's ~5,500 dicts is ~25-30 ms
        of Python; held in one piece, every other thread of the process (the gateway's event loop, its
        trading lane) waits up to the interpreter's 5 ms switch interval at each of its turns, and an
        order sent just before a burst took 25-45 ms. The values are copied once, so every slice is of
        the same slot and the dicts equal those built at once."""
        with self._lock:  # held only to copy one consistent slot's values; the dicts are built after
            s = self.state
            sub = _take(s, rows)
            day_start_ms = self.day_start_ms
            suspended = self.suspended[rows]
        m = self.m
        ia = self.index[rows]
        is_index, liquidity, keys = m.universe.kind[ia] == "index", m.universe.p_trade[ia], m.keys[ia]
        n = len(rows)
        if slice_rows <= 0 or n <= slice_rows:
            return build_tick_dicts(sub, day_start_ms, is_index, liquidity, keys, suspended)
        out: list[dict] = []
        for start in range(0, n, slice_rows):
            if start:
                time.sleep(SLICE_PAUSE_S)
            part = slice(start, start + slice_rows)
            out += build_tick_dicts(
                _take(sub, part), day_start_ms, is_index[part], liquidity[part], keys[part], suspended[part]
            )
        return out


class CodeSessions:
    """Sessions of a few instruments each, for snapshot queries of a few codes while the whole-market
    session is not built (issue 19: a fresh process's first ``get_full_tick(['600000.SH'])`` took
    ~10 s because it built the whole market's day first; real QMT answers from its cache at once).

    Codes asked together share a session; a code keeps its session, advanced on each query, until the
    whole-market session takes over (:meth:`clear`) or :data:`MAX_ROWS` codes have been asked.
    """

    MAX_ROWS = 2000

    def __init__(self, market: SimMarket) -> None:
        self.m = market
        self._lock = threading.Lock()
        self._where: dict[int, tuple[LiveSession, int]] = {}  # instrument -> (session, its row there)

    def clear(self) -> None:
        with self._lock:
            self._where.clear()

    def ticks(self, want: np.ndarray, t: MarketTime) -> tuple[list[int], list[dict]]:
        """(instruments with a snapshot, their tick dicts) at ``t``, ascending by instrument index."""
        with self._lock:
            missing = [i for i in want.tolist() if i not in self._where]
            if missing:
                if len(self._where) + len(missing) > self.MAX_ROWS:
                    self._where.clear()
                    missing = want.tolist()
                session = LiveSession(self.m, np.asarray(missing, dtype=np.int64))
                for pos, i in enumerate(missing):
                    self._where[i] = (session, pos)
            groups: dict[int, tuple[LiveSession, list[tuple[int, int]]]] = {}
            for i in want.tolist():
                session, pos = self._where[i]
                groups.setdefault(id(session), (session, []))[1].append((i, pos))
            out: list[tuple[int, dict]] = []
            for session, members in groups.values():
                session.advance(t)
                if session.day != t.day_index:
                    continue
                positions = np.asarray([pos for _, pos in members], dtype=np.int64)
                has = session.state.slot[positions] >= 0
                if not has.any():
                    continue
                dicts = session.tick_dicts(positions[has])
                out += zip(
                    [i for (i, _), h in zip(members, has.tolist(), strict=True) if h], dicts, strict=True
                )
        out.sort(key=lambda item: item[0])
        return [i for i, _ in out], [d for _, d in out]


@dataclass
class Subscription:
    """A push subscription: whole-quote (rows mask) or one code with a period."""

    sub_id: int
    callback: Callable[[dict], None] | None
    generation: int
    rows: np.ndarray  # bool mask over instruments
    code: str | None = None
    period: str = "tick"
    whole: bool = False
    pending_first: bool = True
    extra: dict = field(default_factory=dict)


class Publisher:
    """Follows the clock; after each 3 s slot, calls every subscription's callback with its updates."""

    def __init__(
        self,
        market: SimMarket,
        session: LiveSession,
        faults,
        bar_payload: Callable[[Subscription, int], dict | None],
    ) -> None:
        self.m = market
        self.session = session
        self.faults = faults
        self._bar_payload = bar_payload
        self._code_of_row: list[str] = [i.code for i in market.universe.instruments]
        self._subs: dict[int, Subscription] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._step_lock = threading.RLock()  # the thread and snapshot queries (SimEnv.sync) both step
        self._stepping: int | None = None  # ident of the thread inside step() (callbacks may query)
        self._thread: threading.Thread | None = None
        self.errors = 0
        #: the last slot whose callbacks have all returned (tests wait on it after moving the clock)
        self.delivered_slot = -1
        #: False: no thread; tests call :meth:`step` themselves after moving a manual clock
        self.autostart = True

    def add(self, sub: Subscription) -> None:
        with self._lock:
            self._subs[sub.sub_id] = sub
        self.ensure_running()
        self._wake.set()

    def remove(self, sub_id: int) -> bool:
        with self._lock:
            return self._subs.pop(sub_id, None) is not None

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    def drop_generation_before(self, generation: int) -> None:
        with self._lock:
            for k in [k for k, s in self._subs.items() if s.generation < generation]:
                del self._subs[k]

    @property
    def running(self) -> bool:
        """A publisher thread is following the clock (it delivers every slot by itself)."""
        return self.autostart and self._thread is not None and self._thread.is_alive()

    @property
    def stepping_here(self) -> bool:
        """This thread is inside :meth:`step` (a push callback or a bar payload is querying)."""
        return self._stepping == threading.get_ident()

    def catch_up(self, t: MarketTime, timeout: float = 0.2) -> None:
        """Wake the thread and wait (at most ``timeout`` s) until it has delivered the slot of ``t``.

        For snapshot queries while the thread runs: the query never steps itself (under an accelerated
        clock that would hand it the thread's whole catch-up and its pushes) and never waits long; it
        then reads what was delivered, as QMT's client answers from what it has received.
        """
        if t.day_index < 0:
            return
        slot = min(t.slot, N_SLOTS - 1)
        deadline = time.monotonic() + timeout
        self._wake.set()
        while (self.session.day != t.day_index or self.delivered_slot < slot) and time.monotonic() < deadline:
            time.sleep(0.002)

    def ensure_running(self) -> None:
        if not self.autostart:
            return
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="qmtgate-sim-publisher", daemon=True)
            self._thread.start()

    def stop(self, manual: bool = False) -> None:
        """Stop the thread; ``manual=True`` keeps it stopped (drive with :meth:`step`)."""
        if manual:
            self.autostart = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the publisher must survive anything; it is the market's heartbeat
                self.errors += 1
                traceback.print_exc()
            speed = getattr(self.m.clock, "speed", 1.0)
            self._wake.wait(timeout=min(0.25, max(0.01, 0.5 / speed)))
            self._wake.clear()

    def step(self) -> MarketTime:
        """Advance to the clock's time and deliver what happened; returns the time reached.

        Called by the publisher thread, by snapshot queries (so they never skip past undelivered
        slots) and by tests driving a manual publisher.
        """
        with self._step_lock:
            outer, self._stepping = self._stepping, threading.get_ident()
            try:
                return self._step()
            finally:
                self._stepping = outer

    def _step(self) -> MarketTime:
        gen = self.faults.generation
        self.drop_generation_before(gen)
        t = self.m.time()
        subs = self.subscriptions()
        connected = self.faults.connected
        # Subscriptions still waiting for their first push take no slot updates (that push is the
        # whole state): with only those, the session moves in one vectorized jump, not slot by slot.
        live = connected and any(not sub.pending_first for sub in subs)
        on_slot = self._deliver if live else None
        self.session.advance(t, on_slot)
        if connected and any(sub.pending_first for sub in subs):
            # New subscriptions start at the market's time *after* this catch-up: building the day can
            # take seconds while the clock moves on, and those slots are not theirs (a count=0
            # subscription gets no history part; issue 19: a 123 s burst of stale ticks).
            t2 = self.m.time()
            if (t2.day_index, t2.slot) > (t.day_index, t.slot):
                self.session.advance(t2, on_slot)
                t = t2
        if connected:
            for sub in subs:
                if sub.pending_first:
                    sub.pending_first = False
                    self._first_push(sub)
        self.delivered_slot = self.session.slot
        return t

    def _first_push(self, sub: Subscription) -> None:
        if sub.callback is None:
            return
        if not sub.whole:
            self._first_live_push(sub)
            return
        rows = self.session.rows_with_data(np.flatnonzero(sub.rows))
        if len(rows):
            self._call(sub, dict(zip(self._codes(rows), self.session.tick_dicts(rows), strict=True)))

    def _first_live_push(self, sub: Subscription) -> None:
        """A code subscription's first push (count=0: no history part): the code's latest snapshot,
        once, if it is newer than the market time of the subscribe call. Whatever happened between
        the call and this first step (a day build can take seconds of clock time) arrives conflated
        in this one push, never replayed slot by slot as if live (issue 19: 113 stale ticks)."""
        since = sub.extra.get("since_ms")
        rows = self.session.rows_with_data(np.flatnonzero(sub.rows))
        if not len(rows) or since is None:
            return
        tick = self.session.tick_dicts(rows[:1])[0]
        if tick["time"] <= since:
            return
        if sub.period == "tick":
            self._call(sub, {self._code_of_row[int(rows[0])]: [tick]})
        else:
            payload = self._bar_payload(sub, self.session.slot)
            if payload is not None:
                self._call(sub, payload)

    def _codes(self, rows: np.ndarray) -> list[str]:
        codes = self._code_of_row
        return [codes[r] for r in rows.tolist()]

    def _deliver(self, slot: int, emitted: np.ndarray) -> None:
        """Call every subscription with its share of the slot's snapshots.

        Each tick dict is built once per slot however many subscriptions want it (whole-market
        subscribers share the objects, as xtquant's callbacks get fresh ones per call: consumers must
        not mutate them)."""
        subs = [s for s in self.subscriptions() if s.callback is not None and not s.pending_first]
        if not subs:
            return
        mask = np.zeros(self.session.n, bool)
        mask[emitted] = True
        need = np.zeros(self.session.n, bool)
        for sub in subs:
            if sub.whole or sub.period == "tick":
                need |= sub.rows & mask
        rows = np.flatnonzero(need)
        dicts = self.session.tick_dicts(rows, DICT_SLICE_ROWS) if len(rows) else []
        position = np.full(self.session.n, -1, np.int64)
        position[rows] = np.arange(len(rows))
        codes = self._code_of_row
        for sub in subs:
            hit = np.flatnonzero(sub.rows & mask)
            if not len(hit):
                continue
            if sub.whole:
                at = position[hit].tolist()
                self._call(sub, {codes[r]: dicts[i] for r, i in zip(hit.tolist(), at, strict=True)})
            elif sub.period == "tick":
                r = int(hit[0])
                self._call(sub, {codes[r]: [dicts[int(position[r])]]})
            else:
                payload = self._bar_payload(sub, slot)
                if payload is not None:
                    self._call(sub, payload)

    def _call(self, sub: Subscription, payload: dict) -> None:
        try:
            sub.callback(payload)  # type: ignore[misc]
        except Exception:  # as xtquant's wrapper: print and keep the subscription running
            print("subscribe callback error:")
            traceback.print_exc()


__all__ = ["SEG_LEN", "CodeSessions", "LiveSession", "Publisher", "Subscription"]
