"""The remote ``xttrader`` drop-in: an unchanged xttrader service (tests/trading/scripts/) runs in its own
process against a gateway on the simulator (real uvicorn on loopback): connect, subscribe, order_stock,
its on_stock_order / on_stock_trade / position and asset callbacks on a background thread, queries in
xttype objects with the real attribute names, an order the gateway's risk refuses (-1 and
on_order_error), order_stock_async (seq and its response). A key without the ``trade`` scope cannot connect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ACCOUNT_ID
from .live_support import KEYS, Gateway, ask, live_gateway

SCRIPT = Path(__file__).with_name("scripts") / "xttrader_service.py"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from live_gateway(tmp_path_factory.mktemp("remote-xttrader") / "audit.sqlite")


def run_service(gateway: Gateway, key: str, price: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), gateway.url, KEYS[key].token, ACCOUNT_ID, str(price)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_an_unchanged_xttrader_service_trades_through_the_gateway(gateway: Gateway) -> None:
    code = "600000.SH"
    with gateway.http() as http:
        before = {p["stock_code"]: p["volume"] for p in http.get("/api/v1/trading/positions").json()}
    done = run_service(gateway, "both", ask(code))
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["connect"] == 0 and out["subscribe"] == 0
    order_id = out["order_id"]
    assert isinstance(order_id, int) and order_id > 0
    # pushes: the order's events with the caller's remark, the trade, position and asset, as xttype objects
    mine = [o for o in out["orders"] if o[1] == order_id]
    assert mine and all(o[0] == "XtOrder" and o[3] == "my remark" and o[4] == code for o in mine)
    assert 56 in [o[2] for o in mine]  # ORDER_SUCCEEDED
    assert ["XtTrade", order_id, 100] == out["trades"][0][:3]
    assert any(p[0] == "XtPosition" and p[1] == code for p in out["positions"])
    assert out["assets"] and out["assets"][0][0] == "XtAsset"
    assert set(out["threads"]) == {"qmtgate-xttrader-callback"}  # a background thread, not the caller's
    # queries
    assert out["asset_before"][0] == "XtAsset" and out["asset_before"][1] > 0
    assert out["position"][0] == "XtPosition" and out["position"][1] == before.get(code, 0) + 100
    assert ["XtPosition", code, before.get(code, 0) + 100] in out["query_positions"]
    assert ["XtOrder", order_id, 56, "my remark"] == out["order"]
    # refused by the gateway's risk (odd lot): -1 and on_order_error, as the SDK
    assert out["refused"] == -1
    assert any(e[0] == "XtOrderError" and "lot" in e[2].lower() for e in out["errors"] if isinstance(e, list))
    # order_stock_async: a seq, then its response with the order id and the caller's remark
    response = next(r for r in out["responses"] if r[1] == out["seq"])
    assert response[0] == "XtOrderResponse" and response[2] > 0 and response[3] == "async"
    # each remote order went to QMT under a generated client_order_id (its remark there), once
    with gateway.http() as http:
        orders = {o["order_id"]: o for o in http.get("/api/v1/trading/orders").json()}
    remark = orders[order_id]["order_remark"]
    assert remark != "my remark" and len(remark) <= 24
    assert [o for o in orders.values() if o["order_remark"] == remark] == [orders[order_id]]
    trail = gateway.app.state.trading.audit.rows(remark)
    assert [r["payload"]["remark"] for r in trail if r["kind"] == "request.place"] == ["my remark"]


def test_a_key_without_the_trade_scope_cannot_connect(gateway: Gateway, tmp_path: Path) -> None:
    script = tmp_path / "connect.py"
    script.write_text(
        "import sys, qmtgate.remote\n"
        "qmtgate.remote.install(sys.argv[1], api_key=sys.argv[2])\n"
        "from xtquant.xttrader import XtQuantTrader\n"
        "t = XtQuantTrader('userdata_mini', 1)\n"
        "t.start()\n"
        "print(t.connect())\n"
        "t.stop()\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for key in ("read", "stream"):
        done = subprocess.run(
            [sys.executable, str(script), gateway.url, KEYS[key].token],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "-1", (key, done.stdout)


class Recorder:
    """An XtQuantTraderCallback that keeps what it is given (in-process tests below)."""

    def __init__(self) -> None:
        self.orders: list[Any] = []
        self.errors: list[Any] = []

    def on_stock_order(self, order: Any) -> None:
        self.orders.append(order)

    def on_order_error(self, error: Any) -> None:
        self.errors.append(error)


@pytest.fixture
def drop_in(gateway: Gateway) -> Iterator[Any]:
    """The drop-in in this process, without registering ``xtquant`` (the simulator holds that name
    here): ``qmtgate.remote.connect`` and the module itself."""
    import qmtgate.remote
    from qmtgate.remote.xtquant import xttrader

    qmtgate.remote.connect(gateway.url, api_key=KEYS["both"].token)
    trader = xttrader.XtQuantTrader("userdata_mini", 7)
    trader.register_callback(Recorder())
    trader.start()
    assert trader.connect() == 0
    try:
        yield trader
    finally:
        trader.stop()
        qmtgate.remote.uninstall()


def account() -> Any:
    from qmtgate.xtapi.xttype import StockAccount

    return StockAccount(ACCOUNT_ID)


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def test_a_transport_failure_is_retried_with_the_same_client_order_id_and_never_doubles(
    gateway: Gateway, drop_in: Any
) -> None:
    from qmtgate.client.errors import ConnectionFailed
    from qmtgate.xtapi import xtconstant

    real_send = drop_in._send  # orders go over the trading WebSocket (REST while it is down)
    sent: list[dict[str, Any]] = []
    on_socket = drop_in._orders.socket_orders

    def lossy_send(call: Any) -> Any:  # the first order reaches the gateway, its answer is lost
        answer = real_send(call)
        if call.path.endswith("/trading/orders") and call.method == "POST":
            sent.append(call.body)
            if len(sent) == 1:
                raise ConnectionFailed("connection reset while reading the answer")
        return answer

    drop_in._send = lossy_send
    try:
        acc = account()
        assert drop_in.subscribe(acc) == 0
        order_id = drop_in.order_stock(
            acc,
            "600036.SH",
            xtconstant.STOCK_BUY,
            100,
            xtconstant.FIX_PRICE,
            ask("600036.SH"),
            "s",
            "retry me",
        )
    finally:
        drop_in._send = real_send
    assert order_id > 0
    assert len(sent) == 2 and sent[0]["client_order_id"] == sent[1]["client_order_id"]
    assert drop_in._orders.socket_orders == on_socket + 2  # both attempts went over the socket
    with gateway.http() as http:
        mine = [
            o
            for o in http.get("/api/v1/trading/orders").json()
            if o["order_remark"] == sent[0]["client_order_id"]
        ]
    assert [o["order_id"] for o in mine] == [order_id]  # one order at QMT


def test_an_unknown_outcome_is_minus_one_and_the_live_order_still_shows_and_pushes(
    gateway: Gateway, drop_in: Any
) -> None:
    """QMT's answer is dropped and its pushes are lost: the gateway does not know the outcome, so
    ``order_stock`` returns -1 (as the SDK after its timeout) and nothing is resent; the order is live,
    shows in the queries with the caller's remark, and its later pushes reach the callbacks."""
    from qmtgate.xtapi import xtconstant

    from .conftest import sim_env

    acc = account()
    assert drop_in.subscribe(acc) == 0
    price = sys.modules["xtquant.xtdata"].get_full_tick(["000001.SZ"])["000001.SZ"]["bidPrice"][2]
    service = gateway.app.state.trading
    real_push = service.lane._on_push
    service.lane._on_push = lambda kind, data: None  # the pushes get lost
    sim_env().broker.faults.drop_order_responses(1)
    try:
        result = drop_in.order_stock(
            acc, "000001.SZ", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "s", "maybe live"
        )
    finally:
        service.lane._on_push = real_push
        sim_env().broker.faults.clear()
    assert result == -1
    (live,) = [o for o in drop_in.query_stock_orders(acc) if o.order_remark == "maybe live"]  # once
    assert live.order_id > 0 and live.order_status == xtconstant.ORDER_REPORTED
    assert drop_in.cancel_order_stock(acc, live.order_id) == 0
    sim_env().market.clock.advance(3)  # the cancel reaches the exchange with the next snapshot
    drop_in.query_stock_orders(acc)  # (a broker call that lets the manual-clock market catch up)
    callback = drop_in.callback
    pushed = wait_for(
        lambda: [o for o in callback.orders if o.order_id == live.order_id and o.order_status == 54]
    )
    assert pushed[0].order_remark == "maybe live" and type(pushed[0]).__name__ == "XtOrder"
    assert not callback.errors


def test_sync_requests_run_inline_only_when_nothing_is_queued_before_them() -> None:
    """order_stock runs in the caller's thread when no request waits before it; after an
    order_stock_async it waits for it (one request at a time, in call order)."""
    import threading as th
    import time as tm
    from concurrent.futures import ThreadPoolExecutor

    from qmtgate.remote.xtquant.xttrader import XtQuantTrader

    trader = XtQuantTrader.__new__(XtQuantTrader)
    trader._requests = ThreadPoolExecutor(max_workers=1)
    trader._running, trader._queued, trader._queued_lock = th.Lock(), 0, th.Lock()
    log: list[tuple[str, str]] = []
    release = th.Event()

    def slow(name: str) -> str:
        release.wait(5)
        log.append((name, th.current_thread().name))
        return name

    def fast(name: str) -> str:
        log.append((name, th.current_thread().name))
        return name

    try:
        assert trader._call(fast, "alone") == "alone"
        assert log == [("alone", th.current_thread().name)]  # inline: nothing was queued
        queued = trader._submit(slow, "async")
        waiter = ThreadPoolExecutor(max_workers=1).submit(trader._call, fast, "sync")
        tm.sleep(0.2)
        assert [n for n, _ in log] == ["alone"]  # the sync call waits behind the queued one
        release.set()
        assert queued.result(5) == "async" and waiter.result(5) == "sync"
        assert [n for n, _ in log] == ["alone", "async", "sync"]
        assert trader._queued == 0
    finally:
        release.set()
        trader._requests.shutdown(wait=True)


def test_a_market_order_keeps_the_xttrader_type_its_caller_chose(gateway: Gateway, drop_in: Any) -> None:
    """MARKET_MINE_PRICE_FIRST rests on the own side (passive), MARKET_PEER_PRICE_FIRST takes the opposite
    best: the gateway sends the type the service chose, not one market type for all."""
    from qmtgate.xtapi import xtconstant

    acc = account()
    assert drop_in.subscribe(acc) == 0
    code = "600036.SH"  # a two-sided book at the pinned moment
    own = drop_in.order_stock(
        acc, code, xtconstant.STOCK_BUY, 100, xtconstant.MARKET_MINE_PRICE_FIRST, 0, "s", "own"
    )
    assert own > 0
    resting = drop_in.query_stock_order(acc, own)
    assert resting.order_status in (xtconstant.ORDER_UNREPORTED, xtconstant.ORDER_WAIT_REPORTING,
                                     xtconstant.ORDER_REPORTED) and resting.traded_volume == 0  # fmt: skip
    peer = drop_in.order_stock(
        acc, code, xtconstant.STOCK_BUY, 100, xtconstant.MARKET_PEER_PRICE_FIRST, 0, "s", "peer"
    )
    assert peer > 0
    taken = wait_for(lambda: (o := drop_in.query_stock_order(acc, peer)).traded_volume and o)
    assert taken.traded_volume == 100
    latest = drop_in.order_stock(acc, code, xtconstant.STOCK_BUY, 100, xtconstant.LATEST_PRICE, 0, "s", "lp")
    assert latest > 0 and drop_in.query_stock_order(acc, latest).price > 0  # a limit at the last price
    # SZ has no best5_limit: refused before QMT, as the SDK's -1 with on_order_error
    errors = drop_in.callback.errors
    refused = drop_in.order_stock(
        acc, "000001.SZ", xtconstant.STOCK_BUY, 100, xtconstant.MARKET_SH_CONVERT_5_LIMIT, 0, "s", "x"
    )
    assert refused == -1
    assert "best5_limit" in wait_for(lambda: errors)[-1].error_msg
