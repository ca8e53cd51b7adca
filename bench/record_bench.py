"""Recording throughput: the simulated whole market (~5,900 instruments) recorded at 10x speed.

Runs the simulator (replay clock at ``--speed``) -> whole-market subscription -> StreamHub -> Recorder
-> writer thread -> DuckDB, all in this process, exactly as ``qmtgate record`` does, over a span of
the 2025-06-12 session (default 09:14-10:00: the opening call auction, whose 3-second snapshots carry
every instrument, plus 30 minutes of continuous trading). Prints rows/s, process CPU, the writer's own
time, the backlog sampled over time (it must not grow), the database size and its projection to a day.

    .venv/bin/python bench/record_bench.py [--minutes 46] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import tempfile
import time
from pathlib import Path

CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2025, 6, 12)
#: snapshots of a whole simulated session (measured: the 2025-06-12 session, all instruments)
SLOTS_PER_DAY = 4942


async def run(minutes: float, speed: float, path: Path) -> None:
    import qmtgate.sim
    from qmtgate.config import Settings
    from qmtgate.hub.stream import HubConfig, StreamHub
    from qmtgate.ops.gc_tuning import freeze_when_live
    from qmtgate.record.recorder import Recorder, RecordTarget
    from qmtgate.record.writer import RecordWriter
    from qmtgate.source.factory import build_simulated_source

    market = qmtgate.sim.SimMarket(seed=0)
    t0 = time.monotonic()
    market.day_context(market.calendar.index_on_or_before(DAY))  # shared by seed: the run starts warm
    print(f"simulator warm-up (day context, not measured): {time.monotonic() - t0:.1f} s")
    start = dt.datetime(2025, 6, 12, 9, 14, tzinfo=CST)
    settings = Settings(
        source="sim", sim={"clock": "replay", "speed": speed, "start": start.strftime("%Y%m%d%H%M%S")}
    )
    source = build_simulated_source(settings)
    await source.start()
    config = HubConfig(max_codes_per_client=1_000_000)
    hub = StreamHub(source, config)
    await hub.start()
    writer = RecordWriter(path, create=True)
    recorder = Recorder(hub, source, writer, RecordTarget(markets=("SH", "SZ", "BJ")), backfill=False)
    wall0, cpu0 = time.monotonic(), time.process_time()
    await recorder.start()
    await freeze_when_live(lambda: True)  # as `qmtgate record` and the gateway do
    gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(gc_timer)
    close = start.replace(hour=15, minute=0, second=0)  # the replay clock stops at the session's end
    end_ms = int(min(start + dt.timedelta(minutes=minutes), close).timestamp() * 1000)
    samples: list[tuple[float, str, int, int, int]] = []
    from qmtgate.sim.xtquant import _env

    session = _env.current().publisher.session
    print("  wall s  market    rows stored  backlog (batches)  1m bars  sim slots merged", flush=True)
    last_ms = source.now_ms()
    while last_ms < end_ms:
        await asyncio.sleep(5)
        now_ms = source.now_ms()
        if now_ms < last_ms:
            break  # the replay clock looped back to the morning (it does ~10 s after 15:00)
        last_ms = now_ms
        market_time = dt.datetime.fromtimestamp(source.now_ms() / 1000, CST).strftime("%H:%M:%S")
        w = writer.stats
        samples.append(
            (time.monotonic() - wall0, market_time, w.rows_written, recorder.backlog(), w.max_queue)
        )
        at, mt, rows, backlog, _ = samples[-1]
        print(  # progress of a long run
            f"  {at:6.0f}  {mt}  {rows:11,d}  {backlog:7d}  {w.bars_written:16,d}  {session.merged_slots:8,d}",
            flush=True,
        )
    await asyncio.to_thread(writer.flush)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    gc.callbacks.remove(gc_timer)
    pushed, merged = session.pushed_slots, session.merged_slots
    info = recorder.info()
    await recorder.stop()
    await hub.stop()
    await source.stop()

    w = info["writer"]
    size = path.stat().st_size
    print(f"\nspan: 2025-06-12 09:14 + {minutes:g} min of market time at {speed:g}x -> {wall:.0f} s wall")
    print(f"\nticks stored      {w['rows_written']:,} ({w['rows_written'] / wall:,.0f} rows/s over the run)")
    print(
        f"duplicates        {w['duplicates_skipped']:,}   conflated away: {info['recorder']['conflated_updates']:,}"
    )
    print(f"1m bars stored    {w['bars_written']:,}")
    import duckdb

    # continuous-trading minutes in bar convention ((m, m + 60 s]: 20 snapshots each), as UTC ms of day
    am, pm = (5_400_000, 12_540_000), (18_000_000, 24_960_000)  # 09:30-11:29 and 13:00-14:56 CST starts
    with duckdb.connect(str(path), read_only=True) as con:
        got = con.execute(
            "SELECT count(DISTINCT ts), count(*) - count(DISTINCT (code, ts)) FROM ticks WHERE date = ?",
            [DAY],
        ).fetchall()[0]
        full = con.execute(
            "SELECT count(*) FROM (SELECT (ts - 1) // 60000 * 60000 % 86400000 AS m, count(DISTINCT ts) AS n "
            "FROM ticks WHERE date = ? GROUP BY 1) WHERE n >= 20 AND (m BETWEEN ? AND ? OR m BETWEEN ? AND ?)",
            [DAY, *am, *pm],
        ).fetchall()[0][0]
    lo = int(start.timestamp() * 1000) % 86_400_000
    hi = end_ms % 86_400_000 - 60_000
    expected = sum(
        1
        for m in range(0, 86_400_000, 60_000)
        if lo <= m <= hi and (am[0] <= m <= am[1] or pm[0] <= m <= pm[1])
    )
    print(f"snapshot times    {got[0]:,} distinct in the day's ticks; duplicate (code, ts) rows: {got[1]:,}")
    print(f"simulator         {pushed:,} slots pushed one by one, {merged:,} merged into catch-ups "
          f"(0 = it kept up with the clock)")  # fmt: skip
    print(f"complete minutes  {full} of {expected} continuous-trading minutes hold all 20 snapshot times")
    print("gc pauses         " + ", ".join(
        f"gen {g}: {len(v)} x, {sum(v):.1f} s, max {max(v, default=0) * 1e3:.0f} ms" for g, v in gc_pauses.items()
    ))  # fmt: skip
    print(f"writer thread     {w['write_seconds']:.1f} s in inserts ({w['write_seconds'] / wall:.0%} of wall), "
          f"{w['batches']} batches, max queue {w['max_queue']} batches")  # fmt: skip
    print(
        f"process CPU       {cpu:.0f} s = {cpu / wall:.0%} of one core (simulator + hub + recorder + DuckDB)"
    )
    print(f"database          {size / 1e6:.1f} MB = {size / max(w['rows_written'], 1):.1f} bytes per tick")
    slots = (end_ms - int(start.timestamp() * 1000)) // 3000
    per_slot = w["rows_written"] / max(min(slots, SLOTS_PER_DAY), 1)
    print(f"projection        ~{per_slot * SLOTS_PER_DAY / 1e6:.1f} M ticks/day, "
          f"~{size / max(w['rows_written'], 1) * per_slot * SLOTS_PER_DAY / 1e9:.2f} GB/day "
          "(auction slots are denser than continuous ones: an upper bound)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=46.0, help="market minutes from 09:14")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.duckdb"
        if path.exists():
            os.remove(path)
        asyncio.run(run(args.minutes, args.speed, path))


if __name__ == "__main__":
    main()
