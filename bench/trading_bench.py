"""Trading round trip through the gateway (issue 21) minus the in-process SDK call, on the simulator.

Run: ``PYTHONPATH=src .venv/bin/python bench/trading_bench.py`` (a few minutes: the first part is the
simulator preparing the session). Prints p50/p99 of:

1. in-process ``XtQuantTrader.order_stock`` (sync) on the simulated paper broker;
2. ``POST /api/v1/trading/orders`` with httpx on loopback against ``qmtgate serve --enable-trading`` in
   its own process (one order at a time): validation, idempotency claim, risk checks (which query the
   instrument, asset and position through the SDK), ``order_stock_async`` and its answer, and the audit
   rows committed before the answer;
3. ``Client.trading_place`` (the Python client's keep-alive REST path);
4. ``Client.order_socket().place``: the same order as a ``place`` message on the trading WebSocket;
5. the remote drop-in (``qmtgate.remote.install``): ``xtquant.xttrader.XtQuantTrader.order_stock`` from
   this process against the same gateway (a generated client_order_id, the request thread, and the
   trading channel's WebSocket, which carries its orders and its pushes);

and the added latency of each (minus 1). Resting limit buys (below the market, no fills) of 100 shares;
50 warm-up orders per path not counted, then ``TRADING_BENCH_N`` (default 1,000).
``TRADING_BENCH_SRC=/path/to/other/src``: run the gateway and clients of another source tree (a before /
after comparison in one sitting); paths that tree does not have are skipped.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(os.environ.get("TRADING_BENCH_SRC") or ROOT / "src")
sys.path.insert(0, str(SRC))

import httpx  # noqa: E402

N = int(os.environ.get("TRADING_BENCH_N", "1000"))  # orders per path (p99 of 1,000 = the 10th worst)
WARMUP = 50  # orders first sent on each path and not counted (connections, caches, the first burst)
DAY = dt.date(2025, 6, 12)
CODE = "000001.SZ"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if q < 100 else max(values)


def in_process() -> tuple[list[float], float]:
    """order_stock on the simulator in this process (its own simulated QMT, same seed and time)."""
    import qmtgate.sim
    from qmtgate.sim.broker import BrokerConfig
    from qmtgate.sim.timeutil import ms_of

    env = qmtgate.sim.install(
        seed=0,
        clock="manual",
        start_ms=ms_of(DAY, 10 * 3600 + 1800),
        broker=BrokerConfig(starting_cash=100_000_000.0),  # 50 + N resting buys must all be affordable
    )
    env.publisher.stop(manual=True)
    from xtquant import xtconstant, xtdata, xttrader, xttype

    xtdata.enable_hello = False
    price = xtdata.get_full_tick([CODE])[CODE]["bidPrice"][2]
    trader = xttrader.XtQuantTrader("/tmp/qmtgate-bench/userdata_mini", 424242)
    trader.register_callback(xttrader.XtQuantTraderCallback())
    trader.start()
    assert trader.connect() == 0
    account = xttype.StockAccount("8880001")
    times: list[float] = []
    for i in range(WARMUP + N):
        t0 = time.perf_counter()
        oid = trader.order_stock(
            account, CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "", ""
        )
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
        assert oid > 0
    trader.stop()
    return times, price


def timed(fn, n: int = N) -> list[float]:
    """``fn(i)`` for ``WARMUP + n`` orders; the milliseconds of the last ``n``."""
    times: list[float] = []
    for i in range(WARMUP + n):
        t0 = time.perf_counter()
        fn(i)
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def through_gateway(price: float) -> dict[str, list[float]]:
    """Every path against ``qmtgate serve --enable-trading`` in its own process."""
    tmp = Path(tempfile.mkdtemp(prefix="qmtgate-trading-bench-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "MINIQMT_ACCOUNT_ID": "8880001",
        "MINIQMT_USERDATA_PATH": "/tmp/qmtgate-bench/userdata_mini",
        "QMTGATE_TRADING__AUDIT_PATH": str(tmp / "audit.sqlite"),
        "QMTGATE_TRADING__ALLOW_LOOPBACK_WITHOUT_AUTH": "true",
        "QMTGATE_TRADING__RISK__MAX_ORDERS_PER_SECOND": "100000",
        "QMTGATE_TRADING__RISK__MAX_ORDERS_PER_DAY": "100000",
        "QMTGATE_SIM__PAPER_STARTING_CASH": "1000000000",  # 4 x (50 + N) resting buys must all be affordable
    }
    cmd = [sys.executable, "-m", "qmtgate", "serve", "--enable-trading", "--source", "sim", "--port", str(port),
           "--sim-clock", "manual", "--sim-start", f"{DAY:%Y%m%d}103000", "--log-level", "error"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    base = f"{url}/api/v1"
    out: dict[str, list[float]] = {}
    try:
        with httpx.Client(timeout=60) as http:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if http.get(f"{base}/trading/status").json().get("connected"):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("gateway did not start")
                time.sleep(0.2)

            def rest(i: int) -> None:
                body = {
                    "code": CODE,
                    "side": "buy",
                    "volume": 100,
                    "price": price,
                    "client_order_id": f"b{i}",
                }
                r = http.post(f"{base}/trading/orders", json=body)
                assert r.status_code == 200 and r.json()["status"] == "accepted", r.text

            out["REST httpx POST /trading/orders"] = timed(rest)
        from qmtgate.client import Client

        with Client(url) as client:

            def place(i: int) -> None:
                r = client.trading_place(CODE, "buy", 100, price, client_order_id=f"c{i}")
                assert r["status"] == "accepted", r

            out["Client.trading_place"] = timed(place)
            if hasattr(client, "order_socket"):
                with client.order_socket() as orders:

                    def socket_place(i: int) -> None:
                        r = orders.place(CODE, "buy", 100, price, client_order_id=f"s{i}")
                        assert r["status"] == "accepted", r

                    out["OrderSocket.place"] = timed(socket_place)
                    assert orders.rest_orders == 0, "the order socket fell back to REST"
        out["remote drop-in order_stock"] = drop_in(url, price)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def drop_in(url: str, price: float) -> list[float]:
    """The unchanged xttrader calls through ``qmtgate.remote.install(url)``."""
    import qmtgate.remote

    session = qmtgate.remote.install(url)
    from xtquant import xtconstant
    from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback
    from xtquant.xttype import StockAccount

    class Counter(XtQuantTraderCallback):
        orders = 0

        def on_stock_order(self, order: object) -> None:
            Counter.orders += 1

    trader = XtQuantTrader("/tmp/qmtgate-bench/userdata_mini", 434343)
    trader.register_callback(Counter())
    trader.start()
    assert trader.connect() == 0
    account = StockAccount("8880001")
    assert trader.subscribe(account) == 0
    try:

        def order(i: int) -> None:
            oid = trader.order_stock(
                account, CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "", ""
            )
            assert oid > 0

        times = timed(order)
        deadline = time.monotonic() + 10
        while Counter.orders < 2 * (WARMUP + N) and time.monotonic() < deadline:  # two pushes per order
            time.sleep(0.05)
        print(f"drop-in: {Counter.orders} on_stock_order callbacks for {WARMUP + N} orders")
    finally:
        trader.stop()
        qmtgate.remote.uninstall()
        del session
    return times


def main() -> None:
    direct, price = in_process()
    paths = through_gateway(price)
    print(f"source tree: {SRC}")
    print(
        f"{'in-process order_stock':32s} p50 {statistics.median(direct):7.2f} ms  p99 {pct(direct, 99):7.2f} ms  (n={N})"
    )
    for name, values in paths.items():
        print(f"{name:32s} p50 {statistics.median(values):7.2f} ms  p99 {pct(values, 99):7.2f} ms")
    # p99 - p99 can flatter (or go negative) when the in-process tail is noisy; p99 - p50 of the in-process
    # call charges the gateway with every slow order, whatever slowed it: both are printed
    print("added latency (path minus in-process):")
    for name, values in paths.items():
        print(
            f"  {name:30s} p50 {statistics.median(values) - statistics.median(direct):7.2f} ms  "
            f"p99 {pct(values, 99) - pct(direct, 99):7.2f} ms  "
            f"(p99 - in-process p50: {pct(values, 99) - statistics.median(direct):.2f} ms)"
        )


if __name__ == "__main__":
    main()
