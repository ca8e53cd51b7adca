"""First query of each kind in a fresh interpreter on the simulated xtquant, cold and warm (issue 19,
item 5: the first ``get_full_tick`` took ~10 s; real QMT answers from its cache in milliseconds).

    PYTHONPATH=src python bench/sim_first_query.py [--at 20261120100731] [--runs 1] [--only 'SH+SZ']

Each measurement is a new ``python`` process that installs the simulator (seed 0, a manual clock at
``--at``; the subscriptions use a replay clock at 10x from there) on a data directory and times
only the first call of one query. "cold": an empty data directory; "warm": a directory in which one
process has already answered a whole-market snapshot of that session (the day cache is written).
Prints one JSON line per (query, cache) and a summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERIES = {
    "get_full_tick 1 code": "xtdata.get_full_tick(['600000.SH'])",
    "get_full_tick SH+SZ": "xtdata.get_full_tick(['SH', 'SZ'])",
    "get_full_tick 1,000 codes": "xtdata.get_full_tick(CODES_1000)",
    "get_market_data_ex 1m 1 code": ("xtdata.get_market_data_ex([], ['600000.SH'], period='1m', count=241)"),
    "get_market_data_ex 1d 1 code": ("xtdata.get_market_data_ex([], ['600000.SH'], period='1d', count=250)"),
    "get_instrument_detail": "xtdata.get_instrument_detail('600000.SH')",
    "get_instrument_detail index": "xtdata.get_instrument_detail('000300.SH')",
    "get_stock_list_in_sector": "xtdata.get_stock_list_in_sector('沪深A股')",
    "subscribe_quote first push": "subscribe",  # time to the first push of a count=0 subscription
    "subscribe_whole_quote first push": "subscribe_whole",  # the whole market's first push
}

CHILD = r"""
import datetime as dt, json, sys, threading, time
import qmtgate.sim
from qmtgate.sim.timeutil import CST
at = dt.datetime.strptime(sys.argv[1], "%Y%m%d%H%M%S").replace(tzinfo=CST)
ms = int(at.timestamp() * 1000)
query = sys.argv[3]
if query.startswith("subscribe"):
    env = qmtgate.sim.install(0, clock="replay", speed=10.0, replay_day=at.date(), start_ms=ms,
                              data_dir=sys.argv[2])
else:
    env = qmtgate.sim.install(0, clock="manual", start_ms=ms, data_dir=sys.argv[2])
from xtquant import xtdata
xtdata.enable_hello = False
out = {}
if query == "subscribe":
    got = threading.Event()
    began = time.perf_counter()
    xtdata.subscribe_quote("600000.SH", period="tick", count=0, callback=lambda data: got.set())
    out["call_s"] = time.perf_counter() - began
    got.wait(60)
    out["seconds"] = time.perf_counter() - began
elif query == "subscribe_whole":
    got = threading.Event()
    size = []
    began = time.perf_counter()
    xtdata.subscribe_whole_quote(["SH", "SZ"], callback=lambda data: (size.append(len(data)), got.set()))
    out["call_s"] = time.perf_counter() - began
    got.wait(60)
    out["seconds"] = time.perf_counter() - began
    out["size"] = size[0] if size else 0
else:
    # a watch list: every 5th A-share stock (read before the clock starts: not part of the figure)
    CODES_1000 = xtdata.get_stock_list_in_sector("沪深A股")[::5][:1000]
    began = time.perf_counter()
    result = eval(query)
    out["seconds"] = time.perf_counter() - began
    out["size"] = len(result)
env.close()
print(json.dumps(out))
"""


SRC = Path("src").resolve()


def run(at: str, data_dir: Path, query: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, at, str(data_dir), query],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", default="20261120100731", help="market time, YYYYMMDDHHMMSS (CST)")
    parser.add_argument("--runs", type=int, default=1, help="measurements per (query, cache)")
    parser.add_argument(
        "--prime-at",
        help="market time of the priming process (default --at; an earlier session: 'warm' is"
        " then a data directory primed on that session, the next-morning case)",
    )
    parser.add_argument("--only", action="append", help="measure only queries whose name has this text")
    parser.add_argument("--src", type=Path, help="sources to run (another checkout: a 'before' figure)")
    args = parser.parse_args()
    if args.src is not None:
        global SRC
        SRC = args.src.resolve()
    names = [n for n in QUERIES if not args.only or any(o in n for o in args.only)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="qmtgate-bench-simdata-") as root:
        warm = Path(root) / "warm"
        began = time.perf_counter()
        run(args.prime_at or args.at, warm, QUERIES["get_full_tick SH+SZ"])  # one process writes the cache
        prime = time.perf_counter() - began
        for name in names:
            query = QUERIES[name]
            for cache in ("cold", "warm"):
                times = []
                calls = []
                for k in range(args.runs):
                    folder = warm if cache == "warm" else Path(root) / f"cold-{len(rows)}-{k}"
                    got = run(args.at, folder, query)
                    times.append(got["seconds"])
                    calls.append(got.get("call_s"))
                row = {"query": name, "cache": cache, "first_call_s": round(statistics.median(times), 4)}
                if query.startswith("subscribe"):
                    row["subscribe_returns_s"] = round(statistics.median(calls), 4)
                print(json.dumps(row), flush=True)
                rows.append(row)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    primed = f" at {args.prime_at}" if args.prime_at else ""
    print(
        f"\nat {args.at}; priming process{primed} (cold whole-market snapshot, writes the cache): {prime:.1f} s"
    )
    print(f"load average after the runs (1, 5, 15 min): {load}")
    print(f"{'query':32} {'cold s':>8} {'warm s':>8}")
    for name in names:
        cold = next(r for r in rows if r["query"] == name and r["cache"] == "cold")
        hot = next(r for r in rows if r["query"] == name and r["cache"] == "warm")
        print(f"{name:32} {cold['first_call_s']:8.3f} {hot['first_call_s']:8.3f}")


if __name__ == "__main__":
    main()
