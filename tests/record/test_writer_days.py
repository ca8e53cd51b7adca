"""The writer's 1m bars across day boundaries, driven by hand (no simulator): the order in which the
market clock, the previous session's last snapshots and today's first ticks reach the writer must not
change which bars it builds.

The regression behind these tests: a whole-market recorder started at 09:14 first stores the quote
cache's 15:00 snapshots of the previous session. When the clock reached the writer before them, the bar
builder was made for today, then "closed" all of today's bars behind those old ticks before a single
tick of today arrived, and the recording ended with no bar at all.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from qmtgate.record.writer import RecordWriter

CST = dt.timezone(dt.timedelta(hours=8))
TODAY = dt.date(2025, 6, 12)
YESTERDAY = dt.date(2025, 6, 11)
CODES = ("600000.SH", "000001.SZ")


def ms(day: dt.date, hh: int, mm: int, ss: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=CST).timestamp() * 1000)


def tick(code: str, ts: int, price: float, volume: int, pre: float = 10.0) -> dict[str, Any]:
    return {
        "code": code,
        "ts": ts,
        "last_price": price,
        "pre_close": pre,
        "volume": volume,  # shares, cumulative for the day
        "amount": volume * price,
    }


def burst(day: dt.date, hh: int, mm: int, ss: int, volume: int) -> list[dict[str, Any]]:
    return [tick(c, ms(day, hh, mm, ss), 10.0 + i, volume * (i + 1)) for i, c in enumerate(CODES)]


def bars(path: Path) -> list[tuple[dt.date, str, int, int]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT date, code, ts, volume FROM bars ORDER BY date, code, ts").fetchall()
    finally:
        con.close()


def feed_minutes(w: RecordWriter, day: dt.date, start: tuple[int, int, int], n: int, v0: int) -> int:
    """Feed ``n`` 3-second bursts from ``start`` with 100 shares traded per burst; return the volume."""
    t = ms(day, *start)
    volume = v0
    for _ in range(n):
        volume += 100
        w.offer([tick(c, t, 10.0 + i, volume * (i + 1)) for i, c in enumerate(CODES)])
        w.clock(t)
        t += 3000
    w.flush()
    return volume


def test_the_previous_sessions_snapshots_after_the_clock_do_not_end_todays_bars(tmp_path: Path) -> None:
    w = RecordWriter(tmp_path / "r.duckdb", create=True, flush_seconds=0.05, bar_grace_ms=0)
    w.start()
    try:
        w.clock(ms(TODAY, 9, 14))  # the clock first ...
        w.flush()
        w.offer(burst(YESTERDAY, 15, 0, 0, 50_000))  # ... then the cache's 15:00 snapshots of yesterday
        w.flush()
        w.offer(burst(TODAY, 9, 15, 0, 0))
        w.offer(burst(TODAY, 9, 25, 0, 1_000))  # the opening match
        w.flush()
        feed_minutes(w, TODAY, (9, 30, 3), 80, 1_000)  # 09:30:03 .. 09:34:00
    finally:
        w.close()
    got = bars(tmp_path / "r.duckdb")
    assert all(day == TODAY for day, *_ in got), "a lone 15:00 snapshot of yesterday makes no bar"
    labels = sorted({ts for _, code, ts, _ in got if code == CODES[0]})
    assert labels == [ms(TODAY, 9, 30 + i) for i in range(5)]  # 09:30 (the opening match) .. 09:34
    first = {code: v for _, code, ts, v in got if ts == ms(TODAY, 9, 30)}
    assert first == {CODES[0]: 1_000, CODES[1]: 2_000}  # the opening match's volume alone
    per_code = {code: sum(v for _, c, _, v in got if c == code) for code in CODES}
    assert per_code == {CODES[0]: 1_000 + 80 * 100, CODES[1]: 2 * (1_000 + 80 * 100)}


def test_a_clock_first_mid_session_start_builds_no_bar_it_cannot_know(tmp_path: Path) -> None:
    w = RecordWriter(tmp_path / "r.duckdb", create=True, flush_seconds=0.05, bar_grace_ms=0)
    w.start()
    try:
        w.clock(ms(TODAY, 10, 30))  # the clock reaches the writer before the first tick
        w.flush()
        feed_minutes(w, TODAY, (10, 30, 3), 60, 3_000_000)  # 10:30:03 .. 10:33:00
    finally:
        w.close()
    got = bars(tmp_path / "r.duckdb")
    labels = sorted({ts for _, code, ts, _ in got if code == CODES[0]})
    # 10:30:03 falls in the 10:31 bar, which holds trades from before the recording: it is not built
    assert labels == [ms(TODAY, 10, 32), ms(TODAY, 10, 33)]
    # each built bar holds its own 20 snapshots' trades: neither the volume traded before the recording
    # nor the rest of the minute it joined in (10:30:06 .. 10:31:00)
    assert {(code, v) for _, code, _, v in got} == {(CODES[0], 20 * 100), (CODES[1], 20 * 200)}


def test_a_day_recorded_only_until_11_keeps_no_bar_after_its_last_tick(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    w = RecordWriter(path, create=True, flush_seconds=0.05)
    w.start()
    try:
        w.offer(burst(TODAY, 9, 25, 0, 1_000))
        feed_minutes(w, TODAY, (9, 30, 3), 20, 1_000)  # 09:30:03 .. 09:31:00
        w.offer(burst(TODAY, 10, 59, 57, 9_000))
        w.offer(burst(TODAY, 11, 0, 0, 9_100))
        w.flush()
        w.clock(ms(TODAY + dt.timedelta(days=1), 9, 0))  # the next morning: the day is over
        w.flush()
    finally:
        w.close()
    labels = sorted({ts for _, code, ts, _ in bars(path) if code == CODES[0]})
    assert labels[-1] == ms(TODAY, 11, 0), "no flat bar for the afternoon nobody recorded"
    assert len(labels) == 1 + 90  # 09:30 .. 11:00


def test_a_restarted_writer_closes_the_bars_behind_its_stored_ticks(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    w = RecordWriter(path, create=True, flush_seconds=0.05, bar_grace_ms=10 * 60_000)
    w.start()
    try:
        w.offer(burst(TODAY, 9, 25, 0, 1_000))
        feed_minutes(w, TODAY, (9, 30, 3), 40, 1_000)  # 09:30:03 .. 09:32:00
    finally:
        w.close()
    assert bars(path) == []  # a 10-minute grace: nothing closed yet
    w = RecordWriter(path, bar_grace_ms=0)
    w.start()
    try:
        w.flush()  # no new tick: the bars behind the stored ones close from the database alone
    finally:
        w.close()
    labels = sorted({ts for _, code, ts, _ in bars(path) if code == CODES[0]})
    assert labels == [ms(TODAY, 9, 30), ms(TODAY, 9, 31), ms(TODAY, 9, 32)]


def test_tables_and_rows_in_one_batch_store_each_code_and_ts_once(tmp_path: Path) -> None:
    from qmtgate.record.writer import rows_table

    w = RecordWriter(tmp_path / "r.duckdb", create=True, flush_seconds=60)
    w.start()
    try:
        first = burst(TODAY, 9, 31, 0, 1_000)
        w.offer(rows_table(first))  # a live burst arrives as an Arrow table
        w.offer([*first, tick(CODES[0], ms(TODAY, 9, 31, 3), 10.5, 1_100)])  # a re-sent burst + a new tick
        w.offer([{**first[0], "ts": None}])  # no time: not storable
        w.flush()
        w.offer(rows_table(first))  # already stored
        w.flush()
    finally:
        w.close()
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT code, ts, volume, seq FROM ticks ORDER BY seq").fetchall()
    finally:
        con.close()
    assert [(c, t) for c, t, *_ in stored] == [
        (CODES[0], ms(TODAY, 9, 31)),
        (CODES[1], ms(TODAY, 9, 31)),
        (CODES[0], ms(TODAY, 9, 31, 3)),
    ]
    assert w.stats.rows_written == 3
    assert w.stats.duplicates_skipped == 2 + 1 + 2  # the re-sent burst, the ts-less row, the late copy
