"""The simulated xttrader reproduces the SDK's threading model (xtquant-api.md 7.3) and its faults."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from .conftest import Desk, Recorder

CODE = "600000.SH"


def consts():
    from xtquant import xtconstant

    return xtconstant


def test_sync_call_inside_a_callback_raises_instead_of_deadlocking(desk: Desk) -> None:
    c = consts()
    seen: list[BaseException] = []

    def on_stock_order(order):
        try:
            desk.trader.query_stock_asset(desk.account)
        except RuntimeError as e:
            seen.append(e)

    desk.cb.on_stock_order = on_stock_order
    desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][4])
    desk.drain()
    assert seen and "deadlock" in str(seen[0]) and "set_relaxed_response_order_enabled" in str(seen[0])


def test_relaxed_mode_lets_queries_run_inside_callbacks_but_never_orders(desk: Desk) -> None:
    c = consts()
    desk.trader.set_relaxed_response_order_enabled(True)
    assets: list = []
    order_errors: list[BaseException] = []

    def on_stock_order(order):
        assets.append(desk.trader.query_stock_asset(desk.account))
        try:
            desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, 1.0)
        except RuntimeError as e:
            order_errors.append(e)

    desk.cb.on_stock_order = on_stock_order
    desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][4])
    desk.drain()
    assert assets and all(a is not None and a.account_id == desk.account.account_id for a in assets)
    assert order_errors and "order_stock" in str(order_errors[0])


def test_callback_exceptions_are_swallowed_and_logged(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    c = consts()
    trades: list = []

    def broken(order):
        raise ValueError("user bug")

    desk.cb.on_stock_order = broken
    desk.cb.on_stock_trade = trades.append
    with caplog.at_level(logging.ERROR, logger="qmtgate.sim.xttrader"):
        oid = desk.trader.order_stock(
            desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
        )
        desk.drain()
    assert oid > 0 and len(trades) == 1  # later pushes still delivered
    assert any("user bug" in (r.exc_text or "") or "swallowed" in r.getMessage() for r in caplog.records)


def test_async_order_answer_and_query_async(desk: Desk) -> None:
    c = consts()
    seq = desk.trader.order_stock_async(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0], "st", "rm"
    )
    desk.drain()
    assert seq > 0
    (resp,) = desk.cb.of("order_stock_async_response")
    assert (resp.seq, resp.strategy_name, resp.order_remark, resp.account_type) == (seq, "st", "rm", 2)
    assert desk.trader.query_stock_order(desk.account, resp.order_id).order_status == c.ORDER_SUCCEEDED
    assert desk.cb.kinds()[0] == "order_stock_async_response"  # the answer precedes the pushes it caused
    got: list = []
    assert desk.trader.query_stock_asset_async(desk.account, got.append) is None  # no seq, as the real SDK
    positions: list = []
    seq2 = desk.trader.query_stock_positions_async(desk.account, positions.append)
    desk.drain()
    assert seq2 > 0 and got[0].account_id == desk.account.account_id and positions[0][0].volume == 100


def test_order_error_is_held_until_after_a_late_async_answer(desk: Desk) -> None:
    c = consts()
    desk.broker.faults.delay_order_responses(0.3)
    seq = desk.trader.order_stock_async(
        desk.account, CODE, c.STOCK_BUY, 150, c.FIX_PRICE, 10.0
    )  # odd lot: junk
    desk.drain()
    assert "order_error" not in desk.cb.kinds()  # arrived before the answer: held
    time.sleep(0.6)
    desk.drain()
    kinds = desk.cb.kinds()
    assert kinds.index("order_stock_async_response") == kinds.index("order_error") - 1
    assert desk.cb.of("order_stock_async_response")[0].seq == seq


def test_dropped_answer_leaves_the_outcome_unknown_while_the_order_lives(desk: Desk) -> None:
    c = consts()
    desk.broker.faults.drop_order_responses(1)
    desk.trader.set_timeout(200)
    assert (
        desk.trader.order_stock(
            desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][4]
        )
        == -1
    )
    orders = desk.trader.query_stock_orders(desk.account)
    assert len(orders) == 1 and orders[0].order_status == c.ORDER_REPORTED  # live at the exchange
    seq = desk.trader.order_stock_async(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][4]
    )
    desk.drain()
    assert seq > 0 and len(desk.cb.of("order_stock_async_response")) == 1  # only the second is answered


def test_forced_rejection_with_a_given_error(desk: Desk) -> None:
    c = consts()
    desk.broker.faults.reject_orders(-12345, "[COUNTER] [10086][模拟拒单]")
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
    )
    desk.drain()
    err = desk.cb.of("order_error")[0]
    assert (err.order_id, err.error_id, err.error_msg) == (oid, -12345, "[COUNTER] [10086][模拟拒单]")
    assert desk.trader.query_stock_order(desk.account, oid).status_msg == "[COUNTER] [10086][模拟拒单]"
    ok = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
    )
    assert desk.trader.query_stock_order(desk.account, ok).order_status == c.ORDER_SUCCEEDED  # count=1


def test_refused_connect(desk: Desk) -> None:
    from xtquant import xttrader

    desk.broker.faults.refuse_connect(1)
    t = xttrader.XtQuantTrader("/tmp/qmtgate-sim/userdata_mini", 4242)
    t.start()
    try:
        assert t.connect() == -1
    finally:
        t.stop()


def test_disconnect_fires_once_and_the_trader_stays_dead(desk: Desk) -> None:
    from .conftest import open_desk

    c = consts()
    desk.broker.faults.disconnect()
    desk.broker.faults.disconnect()
    desk.drain()
    assert desk.cb.kinds().count("disconnected") == 1
    assert desk.trader.connect() == -1  # one-shot
    assert desk.trader.query_stock_asset(desk.account) is None
    assert desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, 10.0) == -1
    fresh = open_desk(desk.env)  # a new XtQuantTrader connects again
    try:
        assert fresh.trader.query_stock_asset(fresh.account) is not None
    finally:
        fresh.trader.stop()


def test_lifecycle_quirks() -> None:
    from xtquant import xttrader

    t = xttrader.XtQuantTrader("/tmp/qmtgate-sim/userdata_mini", 77)
    with pytest.raises(AttributeError):  # stop() before start(): executors are None, as the real SDK
        t.stop()
    assert isinstance(Recorder(), object)
    assert threading.current_thread().name == "MainThread"


def test_a_session_id_connects_once_at_a_time(desk: Desk) -> None:
    from xtquant import xttrader

    session = desk.trader.async_client.session
    twin = xttrader.XtQuantTrader("/tmp/qmtgate-sim/userdata_mini", session)
    twin.start()
    try:
        assert twin.connect() == -1
        desk.trader.stop()
        assert twin.connect() == 0  # free again once the first one stopped
    finally:
        twin.stop()


def test_a_running_clock_fills_resting_orders_without_any_call(fresh_env) -> None:
    """With a moving clock the broker follows it on its own thread: pushes arrive by themselves."""
    from qmtgate.sim.clock import MarketClock

    from .conftest import DAY, at, open_desk

    c = consts()
    base = fresh_env()
    clock = MarketClock(base.market.calendar, mode="replay", speed=30.0, replay_day=DAY, start_ms=at(DAY, 10))
    env = fresh_env(clock=clock)
    desk = open_desk(env)
    try:
        bid = desk.tick(CODE)["bidPrice"][1]
        oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, bid)
        deadline = time.monotonic() + 30
        while not desk.cb.of("stock_trade") and time.monotonic() < deadline:
            time.sleep(0.05)
        (trade,) = desk.cb.of("stock_trade")
        assert (trade.order_id, trade.traded_price, trade.traded_volume) == (oid, bid, 100)
    finally:
        desk.trader.stop()
