"""Generation speed of the simulated market (issue 2).

Each scenario runs in a fresh interpreter so that nothing is cached, and is timed twice: cold (first
call in the process, including every lazy model step it needs) and warm (the same call again).

    .venv/bin/python bench/sim_generation.py            # all scenarios
    .venv/bin/python bench/sim_generation.py minute     # one of: minute, daily, snapshots
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCENARIOS = {
    "minute": textwrap.dedent(
        """
        import datetime as dt, time, json
        from qmtgate.sim.market import SimMarket
        t0 = time.perf_counter(); m = SimMarket(seed=0); setup = time.perf_counter() - t0
        i = m.index_of("600519.SH"); d1 = m.calendar.index_of(dt.date(2026, 11, 20)); days = list(range(d1 - 243, d1 + 1))
        def run():
            m._paths.clear()
            t = time.perf_counter()
            m.day_paths(i, days)
            bars = sum(len(m.minute_bars(i, d)["open"]) for d in days)
            return time.perf_counter() - t, bars
        cold, bars = run(); warm, _ = run()
        print(json.dumps({"setup_s": setup, "cold_s": cold, "warm_s": warm, "bars": bars,
                          "snapshots": int(sum(m.day_path(i, d).emitted.sum() for d in days))}))
        """
    ),
    "daily": textwrap.dedent(
        """
        import datetime as dt, time, json
        from qmtgate.sim.market import SimMarket
        t0 = time.perf_counter(); m = SimMarket(seed=0); setup = time.perf_counter() - t0
        idx = m.universe.stock_idx[:5000]; d1 = m.calendar.index_of(dt.date(2026, 11, 20)); d0 = d1 - 243
        def run():
            t = time.perf_counter()
            m.daily.warm_range(idx, d0, d1)
            n = sum(len(m.daily.bars(int(i), d0, d1).close) for i in idx)
            return time.perf_counter() - t, n
        cold, bars = run(); warm, _ = run()
        t = time.perf_counter(); m.daily.warm(range(len(m.universe))); chains = time.perf_counter() - t
        print(json.dumps({"setup_s": setup, "cold_s": cold, "warm_s": warm, "bars": bars}))
        """
    ),
    "snapshots": textwrap.dedent(
        """
        import datetime as dt, time, json
        import numpy as np
        from qmtgate.sim.market import SimMarket, MarketTime
        from qmtgate.sim.live import LiveSession
        from qmtgate.sim.daypath import N_SLOTS
        m = SimMarket(seed=0); d = m.calendar.index_of(dt.date(2026, 11, 20))
        t = time.perf_counter(); m.daily.warm(); chains = time.perf_counter() - t
        t = time.perf_counter(); m.day_context(d); ctx = time.perf_counter() - t
        s = LiveSession(m); count = [0, 0]
        def on_slot(k, rows):
            count[0] += len(rows)
        t = time.perf_counter(); s.advance(MarketTime(0, d, N_SLOTS - 1), on_slot, max_replay=None); day = time.perf_counter() - t
        s2 = LiveSession(m); dicts = [0]
        def on_slot_dicts(k, rows):
            dicts[0] += len(s2.tick_dicts(rows))
        t = time.perf_counter(); s2.advance(MarketTime(0, d, 1500), on_slot_dicts, max_replay=None); part = time.perf_counter() - t
        print(json.dumps({"chains_s": chains, "day_context_s": ctx, "day_s": day, "snapshots": count[0],
                          "instruments": len(m.universe), "dicts_first_1500_slots": dicts[0], "dicts_s": part}))
        """
    ),
}


def run(name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCENARIOS[name]], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        r = run(name)
        if name == "minute":
            print(
                f"1m bars, one symbol, one year: {r['bars']} bars from {r['snapshots']} snapshots; "
                f"cold {r['cold_s']:.2f} s ({r['bars'] / r['cold_s']:,.0f} bars/s), warm {r['warm_s']:.2f} s; "
                f"market setup {r['setup_s']:.2f} s"
            )
        elif name == "daily":
            print(
                f"daily bars, 5,000 symbols x one year: {r['bars']:,} bars; cold {r['cold_s']:.2f} s "
                f"({r['bars'] / r['cold_s']:,.0f} bars/s, includes each symbol's history since 2015), "
                f"warm {r['warm_s']:.2f} s; market setup {r['setup_s']:.2f} s"
            )
        else:
            print(
                f"full-market trading day of snapshots: {r['snapshots']:,} snapshots for {r['instruments']:,} "
                f"instruments in {r['day_s']:.2f} s ({r['snapshots'] / r['day_s']:,.0f} snapshots/s) after "
                f"{r['chains_s']:.2f} s of daily history and {r['day_context_s']:.2f} s of day set-up; as xtquant "
                f"tick dicts: {r['dicts_first_1500_slots']:,} in {r['dicts_s']:.2f} s "
                f"({r['dicts_first_1500_slots'] / r['dicts_s']:,.0f} dicts/s)"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
