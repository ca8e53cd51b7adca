"""First ``subscribe_quote(count=0)`` in a fresh interpreter: how many pushes arrive and what market
time they span (issue 19, item 4: before, 113 ticks within one second spanning 123 s of market time).

    PYTHONPATH=src python bench/sim_first_subscribe.py [--speed 10] [--seconds 10]

Prints one JSON line: pushes, the market-time span of the first second's pushes, and the first push's
lag behind the clock when it arrived.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--code", default="600000.SH")
    args = parser.parse_args()

    import inspect

    import qmtgate.sim

    extra = (
        {"data_dir": tempfile.mkdtemp()}
        if "data_dir" in inspect.signature(qmtgate.sim.install).parameters
        else {}
    )
    env = qmtgate.sim.install(0, clock="replay", speed=args.speed, **extra)  # (older trees: no data_dir)
    from xtquant import xtdata

    xtdata.enable_hello = False
    arrivals: list[tuple[float, int, int]] = []  # (wall, tick time, clock time)
    lock = threading.Lock()

    def on_data(data: dict) -> None:
        now = env.market.clock.now_ms()
        with lock:
            for tick in data[args.code]:
                arrivals.append((time.monotonic(), tick["time"], now))

    t0 = time.monotonic()
    xtdata.subscribe_quote(args.code, period="tick", count=0, callback=on_data)
    time.sleep(args.seconds)
    with lock:
        got = list(arrivals)
    first_wall = got[0][0] if got else None
    first_second = [a for a in got if first_wall is not None and a[0] - first_wall <= 1.0]
    print(
        json.dumps(
            {
                "speed": args.speed,
                "watched_s": args.seconds,
                "pushes": len(got),
                "first_push_after_s": round(first_wall - t0, 2) if first_wall else None,
                "pushes_in_first_second": len(first_second),
                "first_second_market_span_s": (
                    (first_second[-1][1] - first_second[0][1]) / 1000 if first_second else None
                ),
                "first_push_lag_behind_clock_s": round((got[0][2] - got[0][1]) / 1000, 1) if got else None,
            }
        )
    )
    env.close()


if __name__ == "__main__":
    main()
