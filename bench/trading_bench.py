"""Trading round trip through the gateway (issue 21) minus the in-process SDK call, on the simulator.

Run: ``PYTHONPATH=src .venv/bin/python bench/trading_bench.py`` (a few minutes: the first part is the
simulator preparing the session). Prints p50/p99 of:

1. in-process ``XtQuantTrader.order_stock`` (sync) on the simulated paper broker, in a child process of
   its own: the simulator it loads (a few hundred thousand objects) would otherwise stay in this
   process's heap, and every garbage collection of the clients measured in 2-5 would walk it, which no
   strategy process beside a real QMT pays;
2. ``POST /api/v1/trading/orders`` with httpx on loopback against ``qmtgate serve --enable-trading`` in
   its own process (one order at a time): validation, idempotency claim, risk checks (which query the
   instrument, asset and position through the SDK), ``order_stock_async`` and its answer, and the audit
   rows committed before the answer;
3. ``Client.trading_place`` (the Python client's keep-alive REST path);
4. ``Client.order_socket().place``: the same order as a ``place`` message on the trading WebSocket;
5. the remote drop-in (``qmtgate.remote.install``): ``xtquant.xttrader.XtQuantTrader.order_stock`` from
   this process against the same gateway (a generated client_order_id, the request thread, and the
   trading channel's WebSocket, which carries its orders and its pushes);

and the added latency of each (minus 1). The paths take turns: ``TRADING_BENCH_ROUNDS`` rounds (default
10), each sending N / rounds orders on every path in a rotating order, so a slow stretch of a shared
machine falls on all of them alike instead of on whichever path ran then. Resting limit buys (below the
market, no fills) of 100 shares; 50 warm-up orders per path not counted, then ``TRADING_BENCH_N``
(default 1,000) in all.
``TRADING_BENCH_SRC=/path/to/other/src``: run the gateway and clients of another source tree (a before /
after comparison in one sitting); paths that tree does not have are skipped. ``TRADING_BENCH_PACE_MS=5``:
that long between one order's answer and the next, on every path (default 0: back to back).
``TRADING_BENCH_CLOCK=replay``: the gateway's simulator on its replay clock, so the whole market streams
through the hub (5,000+ codes every 3 s) while the orders are measured, as during trading hours (default
``manual``: no quote bursts); the resting buys are then priced 3 % under the fifth bid so the moving market
does not fill them. p99.9 and the slowest order are printed beside p50 / p99: bursts touch a few orders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(os.environ.get("TRADING_BENCH_SRC") or ROOT / "src")
sys.path.insert(0, str(SRC))

import httpx  # noqa: E402

N = int(os.environ.get("TRADING_BENCH_N", "1000"))
DROP_IN_WARMUP = (
    10  # orders not counted after the drop-in connects for its turn (its first order opens the socket)
)
ROUNDS = int(
    os.environ.get("TRADING_BENCH_ROUNDS", "10")
)  # the paths take turns this many times  # orders per path (p99 of 1,000 = the 10th worst)
WARMUP = 50  # orders first sent on each path and not counted (connections, caches, the first burst)
#: ms between one order's answer and the next order, on every path (the in-process one included); 0: back
#: to back. A strategy rarely saturates its gateway; paced, an order no longer meets the trailing work of
#: the one before (its pushes' writes, their callbacks)
PACE_MS = float(os.environ.get("TRADING_BENCH_PACE_MS", "0"))
DAY = dt.date(2025, 6, 12)
CODE = "000001.SZ"


CLOCK = os.environ.get("TRADING_BENCH_CLOCK", "manual")
if CLOCK not in ("manual", "replay"):
    raise SystemExit(f"TRADING_BENCH_CLOCK must be manual or replay, not {CLOCK!r}")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if q < 100 else max(values)


def tail(values: list[float]) -> str:
    """p99.9 and the slowest, for the orders a quote burst touches."""
    ordered = sorted(values)
    return f"p99.9 {ordered[int(len(ordered) * 0.999)]:7.2f} ms  max {ordered[-1]:7.2f} ms"


def in_process_child() -> None:
    """The child of part 1: order_stock on its own simulator (same seed and time). Prints the price,
    then for every ``n`` read from stdin sends n orders and prints their milliseconds (JSON lines)."""
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
    book = xtdata.get_full_tick([CODE])[CODE]
    # resting buys: under the book on the manual clock; far enough under it that a moving market leaves them
    price = book["bidPrice"][2] if CLOCK == "manual" else round(book["bidPrice"][4] * 0.97, 2)
    trader = xttrader.XtQuantTrader("/tmp/qmtgate-bench/userdata_mini", 424242)
    trader.register_callback(xttrader.XtQuantTraderCallback())
    trader.start()
    assert trader.connect() == 0
    account = xttype.StockAccount("8880001")

    def order(i: int) -> None:
        oid = trader.order_stock(
            account, CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "", ""
        )
        assert oid > 0

    print(json.dumps({"price": price}), flush=True)
    for line in sys.stdin:
        print(json.dumps(timed(order, int(line), warmup=0)), flush=True)
    trader.stop()


class InProcess:
    """Part 1's child process, driven round by round."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--in-process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.price = json.loads(self._line())["price"]
        self.run(WARMUP)

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the in-process child died")
        return line

    def run(self, n: int) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def timed(fn, n: int, warmup: int = WARMUP, start: int = 0) -> list[float]:
    """``fn(i)`` for ``warmup + n`` orders (i from ``start``); the milliseconds of the last ``n``."""
    times: list[float] = []
    for i in range(start, start + warmup + n):
        t0 = time.perf_counter()
        fn(i)
        if i >= start + warmup:
            times.append((time.perf_counter() - t0) * 1000)
        if PACE_MS:
            time.sleep(PACE_MS / 1000)
    return times


def start_gateway(tmp: Path) -> tuple[subprocess.Popen, str]:
    """``qmtgate serve --enable-trading`` on the simulator in its own process; (process, url) once it
    is connected."""
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
           "--sim-clock", CLOCK, "--sim-start", f"{DAY:%Y%m%d}103000", "--log-level", "error"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    with httpx.Client(timeout=60) as http:
        while True:
            try:
                if http.get(f"{url}/api/v1/trading/status").json().get("connected"):
                    return proc, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("gateway did not start")
            time.sleep(0.2)


def order_body(i: int, prefix: str, price: float) -> dict[str, object]:
    return {"code": CODE, "side": "buy", "volume": 100, "price": price, "client_order_id": f"{prefix}{i}"}


def measure(reference: InProcess) -> dict[str, list[float]]:
    """Every path against one gateway, in rounds (the in-process reference takes its turn too)."""
    from qmtgate.client import Client

    price = reference.price
    proc, url = start_gateway(Path(tempfile.mkdtemp(prefix="qmtgate-trading-bench-")))
    stack = contextlib.ExitStack()
    try:
        http = stack.enter_context(httpx.Client(timeout=60))
        client = stack.enter_context(Client(url))

        def rest(i: int) -> None:
            r = http.post(f"{url}/api/v1/trading/orders", json=order_body(i, "b", price))
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text

        def place(i: int) -> None:
            r = client.trading_place(CODE, "buy", 100, price, client_order_id=f"c{i}")
            assert r["status"] == "accepted", r

        paths: dict[str, Callable[[int], None]] = {
            "REST httpx POST /trading/orders": rest,
            "Client.trading_place": place,
        }
        orders = None
        if hasattr(client, "order_socket"):
            orders = stack.enter_context(client.order_socket())

            def socket_place(i: int) -> None:
                r = orders.place(CODE, "buy", 100, price, client_order_id=f"s{i}")
                assert r["status"] == "accepted", r

            paths["OrderSocket.place"] = socket_place
        out: dict[str, list[float]] = {"in-process order_stock": [], **{name: [] for name in paths}}
        sent = dict.fromkeys(paths, 0)
        for name, fn in paths.items():  # warm-up: connections, caches, the first orders
            timed(fn, 0, start=sent[name])
            sent[name] += WARMUP
        per_round = max(N // ROUNDS, 1)
        runners: list[tuple[str, Callable[[int], list[float]]]] = [("in-process order_stock", reference.run)]
        for name, fn in paths.items():
            runners.append((name, lambda n, name=name, fn=fn: timed(fn, n, warmup=0, start=sent[name])))

        def drop_in_turn(n: int) -> list[float]:
            # installed for its turn only: subscribed to the account, it would otherwise take every other
            # path's order pushes on this process's threads while those paths are measured
            with drop_in(url, price) as order:
                return timed(order, n, warmup=DROP_IN_WARMUP)

        drop_in_turn(WARMUP)
        runners.append(("remote drop-in order_stock", drop_in_turn))
        out["remote drop-in order_stock"] = []
        for r in range(ROUNDS):
            for name, run in (
                runners[r % len(runners) :] + runners[: r % len(runners)]
            ):  # rotate who goes first
                out[name] += run(per_round)
                if name in sent:
                    sent[name] += per_round
        if orders is not None:
            assert orders.rest_orders == 0, "the order socket fell back to REST"
        return out
    finally:
        stack.close()
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def drop_in(url: str, price: float) -> Iterator[Callable[[int], None]]:
    """The unchanged xttrader calls through ``qmtgate.remote.install(url)``: yields one order's call."""
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
    placed = 0

    def order(i: int) -> None:
        nonlocal placed
        oid = trader.order_stock(
            account, CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "", ""
        )
        assert oid > 0
        placed += 1

    try:
        yield order
        deadline = time.monotonic() + 10
        while Counter.orders < 2 * placed and time.monotonic() < deadline:  # two pushes per order
            time.sleep(0.05)
        print(f"drop-in: {Counter.orders} on_stock_order callbacks for {placed} orders")
    finally:
        trader.stop()
        qmtgate.remote.uninstall()
        del session


def main() -> None:
    if sys.argv[1:] == ["--in-process"]:
        in_process_child()
        return
    reference = InProcess()
    try:
        results = measure(reference)
    finally:
        reference.close()
    direct = results.pop("in-process order_stock")
    pace = f", {PACE_MS:g} ms between orders" if PACE_MS else ""
    print(
        f"source tree: {SRC}  ({ROUNDS} rounds of {max(N // ROUNDS, 1)} orders per path{pace}, {CLOCK} clock)"
    )
    print(
        f"{'in-process order_stock':32s} p50 {statistics.median(direct):7.2f} ms  p99 {pct(direct, 99):7.2f} ms  (n={len(direct)})"
    )
    for name, values in results.items():
        print(
            f"{name:32s} p50 {statistics.median(values):7.2f} ms  p99 {pct(values, 99):7.2f} ms  {tail(values)}"
        )
    # p99 - p99 can flatter (or go negative) when the in-process tail is noisy; p99 - p50 of the in-process
    # call charges the gateway with every slow order, whatever slowed it: both are printed
    print("added latency (path minus in-process):")
    for name, values in results.items():
        print(
            f"  {name:30s} p50 {statistics.median(values) - statistics.median(direct):7.2f} ms  "
            f"p99 {pct(values, 99) - pct(direct, 99):7.2f} ms  "
            f"(p99 - in-process p50: {pct(values, 99) - statistics.median(direct):.2f} ms)"
        )


if __name__ == "__main__":
    main()
