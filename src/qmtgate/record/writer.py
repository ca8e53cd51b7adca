"""The recording writer: one thread that owns the DuckDB connection and writes in batches.

The event loop never touches the database. It hands lists of normalized tick rows (the hub's rows,
docs/streaming.md units) to :meth:`RecordWriter.offer`, which only appends to a bounded queue. The
writer thread drains the queue, writes a batch every ``flush_seconds`` or ``batch_rows`` rows as one
Arrow-table insert, and after each write builds the 1-minute bars that closed since (from the ticks just
stored, so a backfill, a restart or a late batch all end in the same bars).

Idempotence: a tick already stored (same code and ts) is never stored again; the check is an anti-join
against the stored rows of the batch's own time range (cheap: rows arrive in time order, so DuckDB's
zone maps skip everything else). Bars continue from the last stored bar (see :mod:`.bars`). So a
restarted recorder, a re-sent snapshot or a backfill that overlaps live data leave no duplicate.

Backfill: between :meth:`begin_fill` and :meth:`end_fill` ticks are stored as they come (live and
history, in any order) and bars are built only in front of the *fill barrier* the recorder reports with
:meth:`fill_barrier` (the oldest hole from the opening match on that is not filled yet; none reported
yet: no bar), because a minute is only complete once the history in front of it is stored. So a
whole-market start after the open writes its first bars as soon as the minutes from the opening match
on are filled, not after the whole backfill (issue 16: a 60 s recording after hours wrote 0 bars).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qmtgate.record.bars import (
    AUCTION_MATCH_S,
    N_BARS,
    MinuteBarBuilder,
    bar_index,
    label_ms,
    last_closed_index,
)
from qmtgate.record.schema import BAR_COLUMNS, open_database
from qmtgate.source.convert import (
    CST_OFFSET_MS,
    MS_PER_DAY,
    SNAPSHOT_ARROW_TYPES,
    date_of_ms,
    day_start_ms,
)

logger = logging.getLogger(__name__)

#: Bars after which no snapshot comes until the next session (11:30, 15:00).
SESSION_END_BARS = frozenset({120, 240})

#: a stored tick's Arrow types: the snapshot's, without ``time`` (a recording derives it from ``ts``)
_TICK_TYPES: dict[str, pa.DataType] = {n: t for n, t in SNAPSHOT_ARROW_TYPES.items() if n != "time"}
_BAR_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "ts": pa.int64(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "pre_close": pa.float64(),
    "volume": pa.int64(),
    "amount": pa.float64(),
}


def _dates(ts: np.ndarray) -> pa.Array:
    return pa.array(((ts + CST_OFFSET_MS) // MS_PER_DAY).astype(np.int32), pa.date32())


def rows_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Normalized tick rows (dicts: backfill, conflated frames) -> a table of :data:`TICK_COLUMNS`."""
    return pa.table({name: pa.array([r.get(name) for r in rows], kind) for name, kind in _TICK_TYPES.items()})


#: the tick columns a batch carries, in the ``ticks`` table's order (``date`` and ``seq`` are added here)
TICK_COLUMNS = tuple(_TICK_TYPES)


def stored_table(batch: pa.Table, row0: int) -> pa.Table:
    """A batch in the ``ticks`` column order: ``date`` from ``ts``, ``seq`` numbering rows from row0 (the
    recording's own row counter, not the hub's seq).

    Rows without a ts are dropped. Duplicates ((code, ts) seen before, or twice in the batch) are left
    to the insert, which keeps the first."""
    batch = batch.select(list(TICK_COLUMNS))
    ts_col = batch.column("ts")
    if ts_col.null_count:
        batch = batch.filter(pc.is_valid(ts_col))
    ts = batch.column("ts").to_numpy()
    cols: dict[str, Any] = {"date": _dates(ts)}
    for name in TICK_COLUMNS:
        cols[name] = batch.column(name)
        if name == "ts":
            cols["seq"] = pa.array(np.arange(row0, row0 + batch.num_rows, dtype=np.int64), pa.int64())
    return pa.table(cols)


def bars_table(day: dt.date, period: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    n = len(rows)
    cols: dict[str, pa.Array] = {
        "date": pa.array([day] * n, pa.date32()),
        "code": pa.array([r["code"] for r in rows], pa.string()),
        "period": pa.array([period] * n, pa.string()),
    }
    for name in BAR_COLUMNS[3:]:
        cols[name] = pa.array([r[name] for r in rows], _BAR_TYPES[name])
    return pa.table(cols)


@dataclass
class WriterStats:
    """Counters for logs, health and the bench. Rows are ticks unless named otherwise."""

    rows_received: int = 0
    rows_written: int = 0
    duplicates_skipped: int = 0
    bars_written: int = 0
    batches: int = 0
    write_seconds: float = 0.0
    max_queue: int = 0
    last_tick_ts: int | None = None
    last_bar_ts: int | None = None
    errors: int = 0
    last_error: str | None = None
    filling: bool = False
    coverage_updates: int = 0
    bars_rebuilt: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "extra"} | self.extra


_STOP = object()


class RecordWriter:
    """Owns one recording database; see the module docstring. Construct, :meth:`start`, :meth:`close`.

    Opening happens in the constructor, so a missing file (without ``create``) or a schema mismatch
    raises there, in the caller's thread, before anything runs.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = False,
        batch_rows: int = 20_000,
        flush_seconds: float = 0.5,
        queue_batches: int = 1024,
        bar_grace_ms: int = 3_000,
        clock_grace_ms: int = 30_000,
        idle_seconds: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.con = open_database(self.path, create=create)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.bar_grace_ms = bar_grace_ms
        self.clock_grace_ms = clock_grace_ms
        self.idle_seconds = idle_seconds
        self._last_rows = time.monotonic()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_batches)
        self.stats = WriterStats()
        self._thread: threading.Thread | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_since = time.monotonic()
        self._next_row = int(self.con.execute("SELECT coalesce(max(seq), 0) FROM ticks").fetchall()[0][0]) + 1  # type: ignore[index]
        self._builder: MinuteBarBuilder | None = None
        self._finished_day: dt.date | None = None  # the day :meth:`_finish` closed last
        self._clock_ms = 0  # the market clock as last reported
        self._filling = 0
        #: while filling, every tick before this market time is stored: bars ending before it may be built
        #: (0: not reported yet, no bar)
        self._barrier_ms = 0
        self._rebuild: dict[dt.date, int] = {}  # days whose bars are rebuilt from a time on (late fills)
        row = self.con.execute("SELECT max(ts) FROM ticks").fetchall()[0]
        self.stats.last_tick_ts = row[0] if row else None
        self._live_ts = int(row[0]) if row and row[0] is not None else 0  # a restart continues the bars

    # -- the caller's side (any thread; never blocks) --------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qmtgate-record-writer", daemon=True)
        self._thread.start()

    def offer(self, rows: list[dict[str, Any]] | pa.Table) -> bool:
        """Queue tick rows (dicts, or an Arrow table of :data:`TICK_COLUMNS`); False when the queue is
        full (the caller retries later)."""
        try:
            self.queue.put_nowait(rows)
        except queue.Full:
            return False
        self.stats.max_queue = max(self.stats.max_queue, self.queue.qsize())
        return True

    def put(self, item: Any, timeout: float | None = None) -> None:
        """Blocking put for control messages and backfill (never call it on the event loop)."""
        self.queue.put(item, timeout=timeout)

    def clock(self, now_ms: int) -> bool:
        """Report the market clock, so the last bars of a session close without further ticks."""
        try:
            self.queue.put_nowait(("clock", now_ms))
            return True
        except queue.Full:
            return False

    def begin_fill(self) -> None:
        self.queue.put(("fill", 1))

    def end_fill(self) -> None:
        self.queue.put(("fill", -1))

    def fill_barrier(self, ms: int) -> None:
        """While filling, every tick before market time ``ms`` is stored (the recorder fills the holes from
        the opening match on oldest first and reports each step): bars that end before it are built."""
        self.queue.put(("barrier", int(ms)))

    def backlog(self) -> int:
        """Batches waiting in the queue (plus one if rows wait for the next flush)."""
        return self.queue.qsize() + (1 if self._pending else 0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until everything queued so far is stored (tests, export, shutdown)."""
        done = threading.Event()
        self.queue.put(("flush", done), timeout=timeout)
        if not done.wait(timeout):
            raise TimeoutError("the recording writer did not flush in time")

    def close(self, timeout: float = 60.0) -> None:
        """Store what is queued, checkpoint (the WAL folded into the file) and close."""
        if self._thread is not None and self._thread.is_alive():
            self.queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self.con.execute("CHECKPOINT").fetchall()
        with contextlib.suppress(Exception):
            self.con.close()

    def cover(self, op: str, *args: Any) -> None:
        """Queue a coverage record (docs/recording.md, "Completeness"); written after every row queued
        before it is committed. Blocking: not on the event loop when the queue may be full.

        ``("open", run, day, scopes, lo)``: a live span starts; ``("claim", run, hi, clock_ms)``: the live
        span reaches ``hi``; ``("filled", run, day, scopes, lo, hi)``: a hole was filled from history
        (bars from ``lo`` on are rebuilt when they were built already)."""
        self.queue.put(("coverage", (op, *args)))

    def try_cover(self, op: str, *args: Any) -> bool:
        """:meth:`cover` without waiting (the event loop's side); False when the queue is full."""
        try:
            self.queue.put_nowait(("coverage", (op, *args)))
            return True
        except queue.Full:
            return False

    def cursor(self) -> Any:
        """A connection to the same database for readers in this process (API routes)."""
        return self.con.cursor()

    def last_tick_ts(self, day: dt.date) -> int | None:
        row = self.con.cursor().execute("SELECT max(ts) FROM ticks WHERE date = ?", [day]).fetchall()[0]
        return row[0] if row else None

    # -- the writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = max(0.01, self.flush_seconds - (time.monotonic() - self._pending_since))
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            try:
                if item is _STOP:
                    self._write()
                    return
                if isinstance(item, list | pa.Table):
                    table = item if isinstance(item, pa.Table) else rows_table(item)
                    if not self._pending:
                        self._pending_since = time.monotonic()
                    self._pending.append(table)
                    self._pending_rows += table.num_rows
                    self._last_rows = time.monotonic()
                    self.stats.rows_received += table.num_rows
                elif isinstance(item, tuple):
                    kind, value = item
                    if kind == "clock":
                        self._clock_ms = max(self._clock_ms, int(value))
                    elif kind == "fill":
                        self._write()
                        self._filling += int(value)
                        self.stats.filling = self._filling > 0
                        if self._filling <= 0:
                            self._barrier_ms = 0  # the next fill waits for its own barrier
                    elif kind == "barrier":
                        self._barrier_ms = int(value)
                        self._bars()  # the bars the fill just completed
                    elif kind == "coverage":
                        self._write()  # a claim only for rows already committed
                        self._coverage(*value)
                    elif kind == "reference":
                        from qmtgate.record.reference import store

                        store(self.con, *value)
                    elif kind == "flush":
                        self._write()
                        self._bars()
                        value.set()
                        continue
                due = time.monotonic() - self._pending_since >= self.flush_seconds
                if self._pending_rows >= self.batch_rows or (self._pending and due):
                    self._write()
                if item is None or (isinstance(item, tuple) and item[0] == "clock") or due:
                    self._bars()
            except Exception as e:  # the recorder keeps going; the error is counted and logged
                self.stats.errors += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                logger.exception("recording writer failed a batch")

    def _write(self) -> None:
        pending, self._pending, received = self._pending, [], self._pending_rows
        self._pending_rows = 0
        self._pending_since = time.monotonic()
        if not pending:
            return
        began = time.perf_counter()
        table = stored_table(pa.concat_tables(pending), self._next_row)
        self._next_row += table.num_rows
        if table.num_rows:
            ts = table.column("ts")
            lo, hi = int(pc.min(ts).as_py()), int(pc.max(ts).as_py())
            self.con.register("batch_ticks", table)
            try:
                # the first of each (code, ts) in the batch, unless already stored (zone maps skip the
                # stored rows outside the batch's time range)
                inserted = self.con.execute(
                    "INSERT INTO ticks SELECT b.* FROM batch_ticks b ANTI JOIN "
                    "(SELECT code, ts FROM ticks WHERE ts BETWEEN ? AND ?) t ON b.code = t.code AND b.ts = t.ts "
                    "QUALIFY row_number() OVER (PARTITION BY b.code, b.ts ORDER BY b.seq) = 1 ORDER BY b.seq",
                    [lo, hi],
                ).fetchall()[0][0]
            finally:
                self.con.unregister("batch_ticks")
            self.stats.rows_written += int(inserted)
            self.stats.duplicates_skipped += received - int(inserted)
            self._live_ts = max(self._live_ts, hi)
            self.stats.last_tick_ts = max(self.stats.last_tick_ts or 0, hi)
        self.stats.batches += 1
        self.stats.write_seconds += time.perf_counter() - began

    # -- coverage --------------------------------------------------------------------------------------

    def _coverage(self, op: str, *args: Any) -> None:
        con = self.con
        if op == "open":
            run, day, scopes, lo = args
            con.executemany(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, 'live', ?)",
                [[day, s, lo, lo - 1, run] for s in scopes],
            )
        elif op == "claim":
            run, hi, clock_ms = args
            con.execute("UPDATE coverage SET hi = greatest(hi, ?) WHERE run = ?", [hi, run]).fetchall()
            con.execute(
                "INSERT INTO meta VALUES ('clock_ms', ?) ON CONFLICT (key) DO UPDATE SET value = "
                "CAST(greatest(CAST(meta.value AS BIGINT), CAST(excluded.value AS BIGINT)) AS VARCHAR)",
                [str(int(clock_ms))],
            ).fetchall()
        elif op == "filled":
            run, day, scopes, lo, hi = args
            con.executemany(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, 'fill', ?)", [[day, s, lo, hi, run] for s in scopes]
            )
            # bars from ``lo`` on are rebuilt (before the next bars are built); ticks before the opening
            # match carry no trade, so a fill that ends before it changes no bar
            if hi >= day_start_ms(day) + AUCTION_MATCH_S * 1000:
                self._rebuild[day] = min(lo, self._rebuild.get(day, lo))
        self.stats.coverage_updates += 1

    def _rebuild_from(self, day: dt.date, lo_ms: int) -> None:
        """Ticks before bars already built were stored (a hole filled later): drop that day's bars from
        the minute of ``lo_ms`` on and let :meth:`_bars` build them again from the stored ticks."""
        builder = self._builder
        built_day = builder is not None and builder.day == day and builder.built >= 0
        stored = self.con.execute(
            "SELECT max(ts) FROM bars WHERE date = ? AND period = '1m'", [day]
        ).fetchall()[0][0]
        if stored is None and not built_day:
            return
        k = bar_index(lo_ms, day_start_ms(day))
        cut = label_ms(day, k) if k is not None else 0
        if stored is not None and stored >= cut:
            deleted = self.con.execute(
                "DELETE FROM bars WHERE date = ? AND period = '1m' AND ts >= ?", [day, cut]
            ).fetchall()[0][0]
            self.stats.bars_rebuilt += int(deleted)
        if builder is not None and builder.day == day:
            self._builder = None  # restored from the bars that remain
        if self._finished_day == day:
            self._finished_day = None

    # -- bars ------------------------------------------------------------------------------------------

    def _bars(self) -> None:
        """Build every 1m bar that closed (behind the newest tick, or far behind the clock).

        The builder works on the newest day with a stored tick, never on a day known only from the
        clock: whether a recording holds a day's opening match (and so whether its first bar can be
        built) is only known from that day's first stored tick. A day whose session the clock has left
        behind ends whole. (A recorder started before the open first stores the previous session's
        15:00 snapshots, which the quote cache still holds; they must not end today's bars early.)
        """
        if self._live_ts == 0 or (self._filling > 0 and self._barrier_ms <= 0):
            return  # nothing stored, or a fill runs whose holes are not known yet
        while self._rebuild:
            day, lo = self._rebuild.popitem()
            self._rebuild_from(day, lo)
        live_day = date_of_ms(self._live_ts)
        builder = self._builder
        if builder is not None and builder.day < live_day:
            self._finish(builder)
            builder = None
        if builder is None:
            builder = self._builder = self._restore(live_day)
        if self._clock_ms and builder.day < date_of_ms(self._clock_ms):
            self._finish(builder)  # the clock is past this session: nothing more will come
            return
        day = builder.day
        upto = last_closed_index(day, self._live_ts, self.bar_grace_ms)
        after = max(upto, builder.built) + 1  # the next bar to close
        if (
            after in SESSION_END_BARS
            and time.monotonic() - self._last_rows >= self.idle_seconds
            and last_closed_index(day, self._clock_ms, self.clock_grace_ms) >= after
        ):
            # No snapshot follows 11:30 or 15:00 until the next session, so the clock closes those two
            # bars, and only once ticks closed everything before them and the feed is quiet: a busy
            # source may run behind the clock, and a bar closed early would miss its ticks.
            upto = after
        upto = self._cap(day, upto)
        if upto > builder.built:
            self._build_until(builder, upto)

    def _cap(self, day: dt.date, upto: int) -> int:
        """``upto`` limited, while a fill runs, to the bars that end before the fill barrier."""
        if self._filling <= 0:
            return upto
        return min(upto, last_closed_index(day, self._barrier_ms - 1, 0))

    def _finish(self, builder: MinuteBarBuilder) -> None:
        """Close ``builder``'s day: every bar that ended by the day's last stored tick.

        A recording that ran to the close ends whole (its last snapshot is the 15:00 match). One that
        stopped earlier keeps no bar after its last tick: a flat, zero-volume bar for minutes nobody
        recorded would be a lie."""
        if builder.built >= N_BARS - 1 or self._finished_day == builder.day:
            return
        row = self.con.execute("SELECT max(ts) FROM ticks WHERE date = ?", [builder.day]).fetchall()[0]
        if row and row[0] is not None:
            want = last_closed_index(builder.day, int(row[0]), 0)
            upto = self._cap(builder.day, want)
            if upto > builder.built:
                self._build_until(builder, upto)
            if upto < want:
                return  # the rest once the fill has stored the ticks in front of it
        self._finished_day = builder.day

    def _restore(self, day: dt.date) -> MinuteBarBuilder:
        first = self.con.execute("SELECT min(ts) FROM ticks WHERE date = ?", [day]).fetchall()[0]
        opening_match = label_ms(day, 0) - 5 * 60_000  # 09:25:00
        complete = first is None or first[0] is None or first[0] <= opening_match
        builder = MinuteBarBuilder(day, complete=complete)
        rows = self.con.execute(
            "SELECT code, max(ts), arg_max(close, ts), sum(volume), sum(amount) FROM bars "
            "WHERE date = ? AND period = '1m' GROUP BY code",
            [day],
        ).fetchall()
        builder.restore(rows)
        return builder

    def _build_until(self, builder: MinuteBarBuilder, upto: int) -> None:
        """Build bars up to index ``upto``, 15 at a time (a rebuild of a whole day reads its ticks in parts)."""
        self._write()  # bars only from stored ticks
        while builder.built < upto - 15:
            self._build_step(builder, builder.built + 15)
        self._build_step(builder, upto)

    def _build_step(self, builder: MinuteBarBuilder, upto: int) -> None:
        lo = label_ms(builder.day, builder.built) if builder.built >= 0 else 0
        hi = label_ms(builder.day, upto)
        ticks = self.con.execute(
            "SELECT code, ts, last_price, volume, amount, pre_close FROM ticks "
            "WHERE date = ? AND ts > ? AND ts <= ? ORDER BY ts, seq",
            [builder.day, lo, hi],
        ).fetchall()
        bars = builder.build(ticks, upto)
        if bars:
            self.con.register("batch_bars", bars_table(builder.day, "1m", bars))
            try:
                self.con.execute("INSERT INTO bars SELECT * FROM batch_bars").fetchall()
            finally:
                self.con.unregister("batch_bars")
            self.stats.bars_written += len(bars)
        self.stats.last_bar_ts = hi
