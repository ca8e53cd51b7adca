"""`qmtgate record --duration N` started after hours: ticks and bars it stores (issue 16, item 4).

Runs the real command on the simulator at a simulated after-hours wall time (the simulator then replays
the last session from 09:30:00), whole market by default, and prints the recorder's progress lines (ticks,
bars, every 10 s), the first moment bars were stored, and the day's counts from `record --status --json`.

    PYTHONPATH=src python bench/record_after_hours.py --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRESS = re.compile(r"recorded (\d+) ticks .*?, (\d+) bars")
#: what a normal start must not log (issue 16 item 4)
TROUBLE = re.compile(r"DEGRADED|backfill.*failed|ERROR|Traceback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--wall-time", default="20261204203000", help="simulated wall time, YYYYMMDDHHMMSS CST"
    )
    parser.add_argument("--codes", default="", help="codes instead of the whole market")
    args = parser.parse_args()
    env = {**os.environ, "QMTGATE_SIM__WALL_TIME": args.wall_time}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "after_hours.duckdb"
        cmd = [
            sys.executable,
            "-m",
            "qmtgate",
            "record",
            "--db",
            str(db),
            "--create",
            "--duration",
            str(args.duration),
        ]
        if args.codes:
            cmd += ["--codes", args.codes]
        began = time.monotonic()
        first_bars: float | None = None
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        ready: float | None = None
        for line in proc.stdout:
            if "qmtgate.record.recorder: recording " in line:
                ready = time.monotonic()
            if TROUBLE.search(line):
                print("  !", line.rstrip())
            m = PROGRESS.search(line)
            if m:
                ticks, bars = int(m.group(1)), int(m.group(2))
                since = time.monotonic() - (ready or began)
                print(f"  {since:5.1f} s after start: {ticks:>9,} ticks {bars:>7,} bars")
                if bars and first_bars is None:
                    first_bars = since
        proc.wait()
        status = subprocess.run(
            [sys.executable, "-m", "qmtgate", "record", "--db", str(db), "--status", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        for day in json.loads(status.stdout):
            holes = ", ".join(f"{h['start'][11:19]}..{h['end'][11:19]}" for h in day["holes"]) or "none"
            print(
                f"{day['date']}: {day['ticks']:,} ticks, {day['codes']:,} codes, {day['bars']:,} 1m bars; "
                f"holes: {holes}"
            )
        print(
            f"first bars stored: {'never' if first_bars is None else f'by {first_bars:.0f} s'}; "
            f"source ready {((ready or began) - began):.1f} s after launch; exit code {proc.returncode}"
        )


if __name__ == "__main__":
    main()
