"""Simulated trader benchmark (issue 20).

Run: ``PYTHONPATH=src .venv/bin/python bench/trader_bench.py`` (about two minutes). Prints the figures and
rewrites the "Simulated trader (issue 20)" section of bench/RESULTS.md, leaving other sections alone.

1. **Orders per second through the simulated xttrader**: resting limit buys (below the market, so no
   fills) placed with the sync ``order_stock`` (each call waits for its answer through the push worker,
   as on a real terminal) and with ``order_stock_async`` (all answers awaited at the end); in memory and
   with the account kept in a SQLite file (every order committed).
2. **Matching cost per snapshot with 1,000 resting orders**: 1,000 resting buys and sells spread over
   50 codes at prices around the market; the manual clock is stepped 3 s at a time (one snapshot slot)
   and each ``PaperBroker.sync()`` is timed: median and p95 per step, with the fills it produced.
3. **A busy day** (a SQLite account): rounds of 4,000 orders (nine in ten marketable buys that fill at once,
   one in ten resting far below the market) over 200 codes; per round the placing rate and the median
   ``PaperBroker.sync()`` of the 3-s steps that follow, so a cost that grows with the day's orders and
   fills shows as falling rates and rising syncs from round to round.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Simulated trader (issue 20)"
sys.path.insert(0, str(ROOT / "src"))

import qmtgate.sim  # noqa: E402
from qmtgate.sim.broker import BrokerConfig  # noqa: E402
from qmtgate.sim.timeutil import ms_of  # noqa: E402

DAY = dt.date(2026, 11, 20)


def setup(db: Path | None = None):
    env = qmtgate.sim.install(
        seed=0,
        clock="manual",
        start_ms=ms_of(DAY, 10 * 3600),
        download_seconds_per_code=0.0,
        broker=BrokerConfig(starting_cash=1e10, db_path=db, create=db is not None),
    )
    env.publisher.stop(manual=True)
    from xtquant import xtdata, xttrader, xttype

    xtdata.enable_hello = False

    class Quiet(xttrader.XtQuantTraderCallback):
        def __init__(self) -> None:
            self.answers = 0

        def on_order_stock_async_response(self, response):
            self.answers += 1

    cb = Quiet()
    trader = xttrader.XtQuantTrader("/tmp/qmtgate-bench/userdata_mini", 1)
    trader.register_callback(cb)
    trader.start()
    assert trader.connect() == 0
    account = xttype.StockAccount("8880001")
    assert trader.subscribe(account) == 0
    return env, trader, cb, account


def orders_per_second(n: int, db: Path | None) -> tuple[float, float]:
    env, trader, cb, account = setup(db)
    from xtquant import xtconstant as c
    from xtquant import xtdata

    codes = [k for k in xtdata.get_stock_list_in_sector("沪深A股")[:200]]
    ticks = xtdata.get_full_tick(codes)
    targets = [(k, round(t["lastPrice"] * 0.95, 2)) for k, t in ticks.items() if t["lastPrice"] > 1][:100]
    t0 = time.perf_counter()
    for i in range(n):
        code, price = targets[i % len(targets)]
        assert trader.order_stock(account, code, c.STOCK_BUY, 100, c.FIX_PRICE, price) > 0
    sync_rate = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(n):
        code, price = targets[i % len(targets)]
        trader.order_stock_async(account, code, c.STOCK_BUY, 100, c.FIX_PRICE, price)
    while cb.answers < n:
        time.sleep(0.001)
    async_rate = n / (time.perf_counter() - t0)
    trader.stop()
    env.close()
    return sync_rate, async_rate


def matching_cost(resting: int = 1000, steps: int = 300) -> dict:
    env, trader, _cb, account = setup()
    from xtquant import xtconstant as c
    from xtquant import xtdata

    broker = env.broker
    pool = [k for k in xtdata.get_stock_list_in_sector("沪深A股") if k.endswith((".SH", ".SZ"))][:200]
    snap = xtdata.get_full_tick(pool)
    codes = [k for k in pool if k in snap and snap[k]["bidPrice"][0] > 0 and snap[k]["askPrice"][0] > 0][:50]
    # yesterday's holdings so that sells are possible
    from qmtgate.sim.broker.model import Position

    acct = broker.accounts["8880001"]
    for code in codes:
        acct.positions[code] = Position(code, 10_000_000, 10_000_000, 0, 0, 0, 0, "20261119")
    ticks = xtdata.get_full_tick(codes)
    placed = 0
    for i in range(resting):
        code = codes[i % len(codes)]
        t = ticks[code]
        k = (i // len(codes)) % 10
        side = c.STOCK_BUY if i % 2 == 0 else c.STOCK_SELL
        base = t["bidPrice"][0] if side == c.STOCK_BUY else t["askPrice"][0]
        tick = 0.01
        price = round(base - k * tick, 2) if side == c.STOCK_BUY else round(base + k * tick, 2)
        if trader.order_stock(account, code, side, 100_000, c.FIX_PRICE, price) > 0:
            placed += 1
    live = sum(1 for o in acct.orders.values() if o.live)
    times = []
    fills_before = len(acct.trades)
    for _ in range(steps):
        env.market.clock.advance(3)
        t0 = time.perf_counter()
        broker.sync()
        times.append(time.perf_counter() - t0)
    fills = len(acct.trades) - fills_before
    still = sum(1 for o in acct.orders.values() if o.live)
    trader.stop()
    env.close()
    times.sort()
    return {
        "placed": placed,
        "live_at_start": live,
        "live_at_end": still,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(len(times) * 0.95)] * 1000,
        "fills": fills,
        "steps": steps,
    }


def busy_day(rounds: int = 6, per_round: int = 4000) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        env, trader, cb, account = setup(Path(d) / "paper.sqlite")
        from xtquant import xtconstant as c
        from xtquant import xtdata

        broker = env.broker
        pool = [k for k in xtdata.get_stock_list_in_sector("沪深A股") if k.endswith((".SH", ".SZ"))][:400]
        snap = xtdata.get_full_tick(pool)
        codes = [k for k in pool if snap[k]["askPrice"][0] > 0][:200]
        acct = broker.accounts["8880001"]
        out = []
        for r in range(rounds):
            ticks = xtdata.get_full_tick(codes)
            t0 = time.perf_counter()
            for i in range(per_round):
                t = ticks[codes[i % len(codes)]]
                if i % 10:
                    price = round(min(t["askPrice"][0] * 1.01, t["lastPrice"] * 1.05), 2)
                else:
                    price = round(t["bidPrice"][0] * 0.95, 2)
                trader.order_stock_async(account, codes[i % len(codes)], c.STOCK_BUY, 100, c.FIX_PRICE, price)
            while cb.answers < (r + 1) * per_round:
                time.sleep(0.001)
            rate = per_round / (time.perf_counter() - t0)
            times = []
            for _ in range(10):
                env.market.clock.advance(3)
                t1 = time.perf_counter()
                broker.sync()
                times.append(time.perf_counter() - t1)
            out.append(
                {
                    "orders": len(acct.orders),
                    "trades": len(acct.trades),
                    "live": sum(1 for o in acct.orders.values() if o.live),
                    "rate": rate,
                    "sync_ms": statistics.median(times) * 1000,
                }
            )
            print(out[-1], flush=True)
        trader.stop()
        env.close()
    return out


def main() -> None:
    n = 2000
    mem_sync, mem_async = orders_per_second(n, None)
    with tempfile.TemporaryDirectory() as d:
        db_sync, db_async = orders_per_second(n, Path(d) / "paper.sqlite")
    m = matching_cost()
    busy = busy_day()
    lines = [
        SECTION,
        "",
        f"Measured by `bench/trader_bench.py` on {dt.date.today():%Y-%m-%d} (2 CPUs shared with other work, "
        f"Python {sys.version_info.major}.{sys.version_info.minor}); simulated market seed 0, manual clock "
        "at 2026-11-20 10:00.",
        "",
        "**Orders per second through the simulated xttrader** (resting limit buys, "
        f"{n} orders each; sync = `order_stock` waiting for each answer through the push worker):",
        "",
        "| account | sync `order_stock` | `order_stock_async` |",
        "|---|---|---|",
        f"| in memory | {mem_sync:,.0f} orders/s | {mem_async:,.0f} orders/s |",
        f"| SQLite file (WAL, committed per order) | {db_sync:,.0f} orders/s | {db_async:,.0f} orders/s |",
        "",
        f"**Matching cost per snapshot** with {m['live_at_start']:,} resting orders (50 codes, buys and sells "
        f"at the touch and up to 9 ticks away; {m['steps']} steps of 3 s): median {m['median_ms']:.2f} ms, "
        f"p95 {m['p95_ms']:.2f} ms per `PaperBroker.sync()`; {m['fills']:,} fills, "
        f"{m['live_at_end']:,} orders still resting at the end.",
        "",
        "**A busy day** (SQLite account; rounds of 4,000 orders over 200 codes, nine in ten filled at once, "
        "one in ten resting; then ten 3-s steps):",
        "",
        "| after round | orders / fills / resting | placing (orders/s) | `sync()` median |",
        "|---|---|---|---|",
        *(
            f"| {i + 1} | {b['orders']:,} / {b['trades']:,} / {b['live']:,} | {b['rate']:,.0f} | "
            f"{b['sync_ms']:.2f} ms |"
            for i, b in enumerate(busy)
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    old = RESULTS.read_text(encoding="utf-8")
    if SECTION in old:
        old = re.sub(re.escape(SECTION) + r".*?(?=\n## |\Z)", text.rstrip("\n") + "\n", old, flags=re.S)
        RESULTS.write_text(old, encoding="utf-8")
    else:
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


if __name__ == "__main__":
    main()
