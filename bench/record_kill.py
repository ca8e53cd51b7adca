"""The recorder's kill test: whole market at 10x, four starts of ``qmtgate record`` with ``kill -9`` between.

Each start is a real ``qmtgate record`` process with its own in-process simulator (``--source sim``,
replay clock at ``--speed``). The processes share one market timeline: the bench keeps a market clock
(``--start`` + wall time since the bench began x speed) and starts each process with ``--sim-start`` set to
that clock, so the market moves on while nothing records, exactly as a real market does during a crash.
The simulator is deterministic (seed 0), so every process publishes the same ticks for the same instants.

Starts 1-3 end with ``kill -9`` (no flush, no checkpoint); start 4 ends with SIGTERM. Then the bench:

* reads the simulator's own tick history (every (code, ts) it published) for the recorded span (the first
  start's market time to the last stored tick) and for the whole day up to it;
* counts the ticks of that history missing from the recording, and duplicates;
* reads ``qmtgate record --status --json`` and checks every missing tick lies in a reported hole.

    PYTHONPATH=src .venv/bin/python bench/record_kill.py [--run 240] [--down 20] [--speed 10] [--start 091500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2025, 6, 12)


def market_ms(start: dt.datetime, wall0: float, speed: float) -> int:
    return int(start.timestamp() * 1000 + (time.monotonic() - wall0) * speed * 1000)


def cst(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, CST).strftime("%H:%M:%S")


def launch(db: Path, create: bool, sim_start: str, speed: float, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-c",
        "from qmtgate.cli import app; app()",
        "record",
        "--db",
        str(db),
        "--source",
        "sim",
        "--sim-clock",
        "replay",
        "--sim-speed",
        f"{speed:g}",
        "--sim-start",
        sim_start,
        "--markets",
        "SH,SZ,BJ",
        *(["--create"] if create else []),
    ]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def expected_ticks(hi_ms: int) -> dict[str, list[int]]:
    """Every (code, ts) the simulator published on DAY up to ``hi_ms`` (seed 0, as the recorder's)."""
    import numpy as np

    import qmtgate.sim
    from qmtgate.sim.daypath import SLOT_SECONDS
    from qmtgate.sim.timeutil import ms_of

    market = qmtgate.sim.SimMarket(seed=0)
    d = market.calendar.index_on_or_before(DAY)
    market.day_context(d)
    day0 = ms_of(DAY, 0)
    slot_ms = day0 + np.asarray(SLOT_SECONDS, np.int64) * 1000
    upto = int(np.searchsorted(slot_ms, hi_ms, side="right")) - 1
    out: dict[str, list[int]] = {}
    for i, inst in enumerate(market.universe.instruments):
        code = inst.code
        if inst.market not in ("SH", "SZ", "BJ") or not market.listed_by(i, d):
            continue
        emitted = market.day_path(i, d).emitted[: upto + 1]
        out[code] = slot_ms[np.flatnonzero(emitted)].tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=float, default=240.0, help="wall seconds each start records")
    parser.add_argument(
        "--down", type=float, default=20.0, help="wall seconds between a kill and the next start"
    )
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--start", default="091500", help="market time of the first start (HHMMSS)")
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="max extra wall s the last start may take to finish its backfill",
    )
    parser.add_argument("--dir", type=Path, default=None, help="keep the database and logs here")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="record-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "kill.duckdb"
    for leftover in (db, Path(str(db) + ".wal")):
        if leftover.exists():
            leftover.unlink()
    start = dt.datetime.combine(DAY, dt.datetime.strptime(args.start, "%H%M%S").time(), CST)
    wall0 = time.monotonic()
    first_ms = int(start.timestamp() * 1000)
    runs: list[dict[str, object]] = []
    for n in range(args.starts):
        now_ms = market_ms(start, wall0, args.speed)
        sim_start = dt.datetime.fromtimestamp(now_ms / 1000, CST).strftime("%Y%m%d%H%M%S")
        log = work / f"start{n + 1}.log"
        proc = launch(db, n == 0, sim_start, args.speed, log)
        began = time.monotonic()
        last = n == args.starts - 1
        while time.monotonic() - began < args.run:
            time.sleep(1)
            if proc.poll() is not None:
                break
        if last:  # let the last start finish its backfill (bounded), then SIGTERM
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and "backfill done" not in log.read_text(errors="replace"):
                time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            proc.wait(timeout=120)
            how = f"SIGTERM (exit {proc.returncode}, {time.monotonic() - stopped:.1f} s)"
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            how = "kill -9"
        end_ms = market_ms(start, wall0, args.speed)
        text = log.read_text(errors="replace")
        runs.append(
            {
                "start": cst(now_ms),
                "end": cst(end_ms),
                "how": how,
                "failed_attempts": len(re.findall(r"backfill attempt \d+ failed", text)),
                "backfill_done": "backfill done" in text,
            }
        )
        print(f"start {n + 1}: market {cst(now_ms)} -> {cst(end_ms)}, ended by {how}, "
              f"failed backfill attempts {runs[-1]['failed_attempts']}", flush=True)  # fmt: skip
        if not last:
            time.sleep(args.down)
    wall = time.monotonic() - wall0

    import duckdb

    status = subprocess.run(
        [
            sys.executable,
            "-c",
            "from qmtgate.cli import app; app()",
            "record",
            "--db",
            str(db),
            "--status",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    text_status = subprocess.run(
        [sys.executable, "-c", "from qmtgate.cli import app; app()", "record", "--db", str(db), "--status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with duckdb.connect(str(db), read_only=True) as con:
        last_ts = con.execute("SELECT max(ts) FROM ticks WHERE date = ?", [DAY]).fetchall()[0][0]
        dupes = con.execute(
            "SELECT count(*) - count(DISTINCT (code, ts)) FROM ticks WHERE date = ?", [DAY]
        ).fetchall()[0][0]
        t0 = time.monotonic()
        want = expected_ticks(last_ts)
        print(f"\nsimulator history read in {time.monotonic() - t0:.0f} s", flush=True)
        import pyarrow as pa

        codes = [c for c, ts in want.items() for _ in ts]
        stamps = [t for ts in want.values() for t in ts]
        con.register("want", pa.table({"code": codes, "ts": pa.array(stamps, pa.int64())}))
        missing = con.execute(
            "SELECT w.code, w.ts FROM want w ANTI JOIN (SELECT code, ts FROM ticks WHERE date = ?) t "
            "USING (code, ts)",
            [DAY],
        ).fetchall()
        extra = con.execute(
            "SELECT count(*) FROM (SELECT code, ts FROM ticks WHERE date = ? AND ts <= ?) t ANTI JOIN want w "
            "USING (code, ts)",
            [DAY, last_ts],
        ).fetchall()[0][0]
    size = db.stat().st_size
    day = next((r for r in report if r["date"] == DAY.isoformat()), None)
    holes = day["holes"] if day else []

    def reported(code: str, ts: int) -> bool:
        market = code.rsplit(".", 1)[-1]
        return any(
            h["start_ms"] <= ts <= h["end_ms"] and (code in h["scopes"] or market in h["scopes"])
            for h in holes
        )

    in_span = [m for m in missing if m[1] >= first_ms]
    span_total = sum(1 for ts in want.values() for t in ts if t >= first_ms)
    day_total = len(stamps)
    unreported = [m for m in missing if not reported(*m)]
    print(f"\nwhole market (SH+SZ+BJ) at {args.speed:g}x, {args.starts} starts, {args.run:g} s each, "
          f"{args.down:g} s down between; {wall:.0f} s wall")  # fmt: skip
    print(f"recorded span     {cst(first_ms)} -> {cst(last_ts)} (market time, 2025-06-12)")
    print(f"published ticks   {span_total:,} in the span, {day_total:,} in the day up to its end")
    print(f"missing           {len(in_span):,} in the span = {len(in_span) / max(span_total, 1):.4%}; "
          f"{len(missing):,} in the day = {len(missing) / max(day_total, 1):.4%}")  # fmt: skip
    print(f"duplicates        {dupes:,}; stored ticks the simulator never published: {extra:,}")
    print(f"holes reported    {len(holes)} ({day['missing_seconds'] if day else '-'} s of session); "
          f"missing ticks outside every reported hole: {len(unreported):,}")  # fmt: skip
    print(f"database          {size / 1e6:.0f} MB")
    print("\nqmtgate record --status:\n" + text_status)
    for r in runs:
        print(r)
    print(f"\nlogs and database in {work}")


if __name__ == "__main__":
    main()
