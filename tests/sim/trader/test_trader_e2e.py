"""End to end on a stepped clock: the simulated xttrader's push sequences and the paper broker's
A-share rules, seen only through the real xttrader API (xtquant-api.md section 7)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from .conftest import DAY, NEXT_DAY, Desk, at, open_desk

CODE = "600000.SH"


def consts():
    from xtquant import xtconstant

    return xtconstant


def test_filled_limit_buy_pushes_the_documented_sequence(desk: Desk) -> None:
    c = consts()
    ask1 = desk.tick(CODE)["askPrice"][0]
    before = desk.trader.query_stock_asset(desk.account)
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, ask1, "s1", "r1")
    desk.drain()
    assert oid > 0
    assert desk.cb.sequence() == [
        ("stock_order", c.ORDER_WAIT_REPORTING),
        ("stock_order", c.ORDER_REPORTED),
        ("stock_trade", 100),
        ("stock_order", c.ORDER_SUCCEEDED),
        ("stock_position",),
        ("stock_asset",),
    ]
    assert desk.cb.threads and all(name.startswith("xttrader-push") for name in desk.cb.threads)
    reported = desk.cb.of("stock_order")[1]
    assert reported.order_sysid and reported.order_id == oid
    trade = desk.cb.of("stock_trade")[0]
    assert (trade.traded_price, trade.traded_volume, trade.order_id) == (ask1, 100, oid)
    assert trade.traded_amount == pytest.approx(ask1 * 100)
    assert trade.commission == pytest.approx(5.0 + round(ask1 * 100 * 0.00001, 2))  # 5 元 minimum + transfer
    assert (trade.strategy_name, trade.order_remark, trade.direction, trade.offset_flag) == (
        "s1",
        "r1",
        48,
        48,
    )
    order = desk.trader.query_stock_order(desk.account, oid)
    assert (order.order_status, order.traded_volume, order.traded_price) == (c.ORDER_SUCCEEDED, 100, ask1)
    assert order.order_time == desk.env.market.clock.now_ms() // 1000  # Unix seconds, not ms
    pos = desk.trader.query_stock_position(desk.account, CODE)
    assert (pos.volume, pos.can_use_volume, pos.yesterday_volume) == (100, 0, 0)  # T+1
    after = desk.trader.query_stock_asset(desk.account)
    assert after.cash == pytest.approx(before.cash - ask1 * 100 - trade.commission)
    assert after.frozen_cash == 0.0


def test_resting_limit_buy_freezes_cash_including_fees_and_fills_later(desk: Desk) -> None:
    c = consts()
    bid3 = desk.tick(CODE)["bidPrice"][2]
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 1000, c.FIX_PRICE, bid3)
    desk.drain()
    asset = desk.trader.query_stock_asset(desk.account)
    fees = max(round(bid3 * 1000 * 0.00025, 2), 5.0) + round(bid3 * 1000 * 0.00001, 2)
    assert asset.frozen_cash == pytest.approx(bid3 * 1000 + fees)
    assert desk.trader.query_stock_order(desk.account, oid).order_status == c.ORDER_REPORTED
    for _ in range(400):  # up to 20 minutes of 3 s snapshots
        desk.step(3)
        if desk.trader.query_stock_order(desk.account, oid).order_status == c.ORDER_SUCCEEDED:
            break
    trades = desk.trader.query_stock_trades(desk.account)
    assert trades and all(t.traded_price == bid3 for t in trades)  # at its price, never worse
    assert (
        sum(t.traded_volume for t in trades) == desk.trader.query_stock_order(desk.account, oid).traded_volume
    )


def test_partial_fill_then_cancel_ends_part_cancelled(make_desk) -> None:
    c = consts()
    desk = make_desk(starting_cash=1e9)
    bid1 = desk.tick(CODE)["bidPrice"][0]
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 5_000_000, c.FIX_PRICE, bid1)
    for _ in range(600):
        desk.step(3)
        order = desk.trader.query_stock_order(desk.account, oid)
        if order.traded_volume:
            break
    assert 0 < order.traded_volume < 5_000_000 and order.order_status == c.ORDER_PART_SUCC
    desk.cb.clear()
    assert desk.trader.cancel_order_stock(desk.account, oid) == 0
    desk.drain()
    assert desk.cb.sequence()[0] == ("stock_order", c.ORDER_PARTSUCC_CANCEL)  # 52 until it lands
    desk.step(3)  # the cancel reaches the exchange with the next snapshot
    final = desk.trader.query_stock_order(desk.account, oid)
    assert final.order_status == c.ORDER_PART_CANCEL
    assert desk.cb.of("stock_order")[-1].order_status == c.ORDER_PART_CANCEL
    assert desk.trader.query_stock_asset(desk.account).frozen_cash == 0.0
    traded = sum(t.traded_volume for t in desk.trader.query_stock_trades(desk.account))
    assert traded == final.traded_volume == desk.trader.query_stock_position(desk.account, CODE).volume


def test_cancel_of_a_filled_order_is_a_cancel_error(desk: Desk) -> None:
    c = consts()
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
    )
    desk.drain()
    desk.cb.clear()
    assert desk.trader.cancel_order_stock(desk.account, oid) == -1
    desk.drain()
    (err,) = desk.cb.of("cancel_error")
    assert (err.order_id, err.market, err.error_id) == (oid, c.SH_MARKET, -62) and err.error_msg


def test_junk_order_is_57_with_status_msg_and_an_order_error(desk: Desk) -> None:
    c = consts()
    up = desk.tick(CODE)["lastPrice"] * 1.2  # far beyond the 10% limit
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, round(up, 2))
    desk.drain()
    assert oid > 0
    assert desk.cb.sequence() == [("stock_order", 49), ("stock_order", c.ORDER_JUNK), ("order_error",)]
    junk = desk.cb.of("stock_order")[-1]
    assert junk.status_msg == "委托价格超出涨跌停价格范围"
    err = desk.cb.of("order_error")[0]
    assert (err.order_id, err.error_id, err.error_msg) == (oid, -61, junk.status_msg)
    assert desk.trader.query_stock_asset(desk.account).frozen_cash == 0.0


@pytest.mark.parametrize(
    ("volume", "price_delta", "msg"),
    [
        (150, 0.0, "委托数量必须为100股的整数倍"),
        (100, 0.005, "委托价格不符合最小变动价位"),
        (10_000_000, 0.0, "可用资金不足"),
    ],
)
def test_counter_rejections(desk: Desk, volume: int, price_delta: float, msg: str) -> None:
    c = consts()
    price = desk.tick(CODE)["bidPrice"][0] + price_delta
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, volume, c.FIX_PRICE, price)
    desk.drain()
    assert oid > 0 and desk.trader.query_stock_order(desk.account, oid).status_msg == msg


def test_refused_requests_answer_minus_one_with_an_order_error(desk: Desk) -> None:
    c = consts()
    assert desk.trader.order_stock(desk.account, "999999.SH", c.STOCK_BUY, 100, c.FIX_PRICE, 10.0) == -1
    assert desk.trader.order_stock(desk.account, CODE, 99, 100, c.FIX_PRICE, 10.0) == -1
    desk.drain()
    errors = desk.cb.of("order_error")
    assert [e.order_id for e in errors] == [-1, -1] and all(e.error_msg for e in errors)
    assert desk.trader.query_stock_orders(desk.account) == []


def test_sell_of_shares_bought_today_is_rejected_never_turned_into_a_buy(desk: Desk) -> None:
    c = consts()
    tick = desk.tick(CODE)
    desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 200, c.FIX_PRICE, tick["askPrice"][0])
    desk.drain()
    desk.cb.clear()
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_SELL, 100, c.FIX_PRICE, tick["bidPrice"][0])
    desk.drain()
    order = desk.trader.query_stock_order(desk.account, oid)
    assert (order.order_status, order.status_msg, order.offset_flag) == (c.ORDER_JUNK, "可用股份不足", 49)
    assert desk.cb.of("order_error")[0].order_id == oid
    assert desk.cb.of("stock_trade") == []
    assert desk.trader.query_stock_position(desk.account, CODE).volume == 200  # unchanged


def test_market_order_walks_the_five_level_book(make_desk) -> None:
    c = consts()
    desk = make_desk(starting_cash=1e8)  # a market buy freezes at the limit-up price
    tick = desk.tick(CODE)
    asks, sizes = tick["askPrice"], [v * 100 for v in tick["askVol"]]
    volume = sizes[0] + sizes[1] + 100
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, volume, c.MARKET_SH_CONVERT_5_CANCEL, 0)
    desk.drain()
    trades = desk.cb.of("stock_trade")
    assert [(t.traded_price, t.traded_volume) for t in trades] == [
        (asks[0], sizes[0]),
        (asks[1], sizes[1]),
        (asks[2], 100),
    ]
    order = desk.trader.query_stock_order(desk.account, oid)
    assert order.order_status == c.ORDER_SUCCEEDED and order.traded_volume == volume
    assert order.price_type == 49  # the broker price type for market orders, as QMT reports it
    assert desk.trader.query_stock_asset(desk.account).frozen_cash == 0.0


def test_market_order_rest_is_cancelled_when_the_book_is_exhausted(make_desk) -> None:
    c = consts()
    desk = make_desk(starting_cash=1e8)
    tick = desk.tick(CODE)
    book = sum(v * 100 for v in tick["askVol"])
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, book + 1000, c.MARKET_SH_CONVERT_5_CANCEL, 0
    )
    desk.drain()
    order = desk.trader.query_stock_order(desk.account, oid)
    assert (order.order_status, order.traded_volume) == (c.ORDER_PART_CANCEL, book)


@pytest.mark.parametrize(
    "price_type_name", ["MARKET_SZ_CONVERT_5_CANCEL", "MARKET_SZ_FULL_OR_CANCEL", "MARKET_CANCEL"]
)
def test_price_types_the_exchange_does_not_take_are_rejected(desk: Desk, price_type_name: str) -> None:
    c = consts()
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, getattr(c, price_type_name), 0)
    desk.drain()
    order = desk.trader.query_stock_order(desk.account, oid)
    assert order.order_status == c.ORDER_JUNK and order.status_msg == "报价类型不合法"


def test_sz_fill_or_kill_all_or_nothing(make_desk) -> None:
    c = consts()
    desk = make_desk(starting_cash=1e8)
    code = "000001.SZ"
    tick = desk.tick(code)
    book = sum(v * 100 for v in tick["askVol"])
    too_big = desk.trader.order_stock(
        desk.account, code, c.STOCK_BUY, book + 100, c.MARKET_SZ_FULL_OR_CANCEL, 0
    )
    fits = desk.trader.order_stock(desk.account, code, c.STOCK_BUY, 100, c.MARKET_SZ_FULL_OR_CANCEL, 0)
    desk.drain()
    assert desk.trader.query_stock_order(desk.account, too_big).order_status == c.ORDER_CANCELED
    assert desk.trader.query_stock_order(desk.account, fits).order_status == c.ORDER_SUCCEEDED


def test_next_day_expires_open_orders_rolls_t1_and_allows_the_sell(desk: Desk) -> None:
    c = consts()
    tick = desk.tick(CODE)
    desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 300, c.FIX_PRICE, tick["askPrice"][0])
    low = round(tick["lastPrice"] * 0.91, 2)
    resting = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, low)
    desk.drain()
    desk.goto(at(DAY, 15, 0, 5))
    assert desk.cb.of("stock_order")[-1].order_id == resting
    assert desk.trader.query_stock_order(desk.account, resting).order_status in (
        c.ORDER_CANCELED,
        c.ORDER_SUCCEEDED,
    )
    desk.goto(at(NEXT_DAY, 9, 31))
    assert desk.trader.query_stock_orders(desk.account) == []  # today's orders only
    pos = desk.trader.query_stock_position(desk.account, CODE)
    assert pos.yesterday_volume == pos.volume == pos.can_use_volume >= 300
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_SELL, 300, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][0]
    )
    desk.drain()
    sold = desk.trader.query_stock_order(desk.account, oid)
    assert sold.order_status == c.ORDER_SUCCEEDED and sold.offset_flag == 49
    trade = desk.trader.query_stock_trades(desk.account)[-1]
    amount = trade.traded_amount
    stamp = round(amount * 0.0005, 2)  # 0.05% since 2023-08-28
    assert trade.commission == pytest.approx(
        max(round(amount * 0.00025, 2), 5.0) + round(amount * 0.00001, 2) + stamp
    )
    assert desk.trader.query_stock_position(desk.account, CODE).volume == pos.volume - 300


def test_no_cancel_between_0920_and_0925(make_desk) -> None:
    c = consts()
    desk = make_desk(start_ms=at(DAY, 9, 16))
    pre = desk.tick(CODE)["lastClose"]
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, round(pre * 0.95, 2))
    desk.goto(at(DAY, 9, 21))
    assert desk.trader.cancel_order_stock(desk.account, oid) == -1
    desk.drain()
    assert desk.cb.of("cancel_error")[-1].error_msg == "当前时间不允许撤单"
    desk.goto(at(DAY, 9, 26))
    assert desk.trader.cancel_order_stock(desk.account, oid) == 0
    desk.drain()
    assert desk.trader.query_stock_order(desk.account, oid).order_status == c.ORDER_CANCELED


def test_opening_auction_order_fills_at_the_open_price(make_desk) -> None:
    c = consts()
    desk = make_desk(start_ms=at(DAY, 9, 16))
    from xtquant import xtdata

    limit_up = xtdata.get_instrument_detail(CODE)["UpStopPrice"]
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, limit_up)
    market_oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 100, c.MARKET_SH_CONVERT_5_CANCEL, 0
    )
    desk.goto(at(DAY, 9, 25, 1))
    trade = desk.trader.query_stock_trades(desk.account)[0]
    assert trade.order_id == oid and trade.traded_price == desk.tick(CODE)["open"]
    assert desk.trader.query_stock_order(desk.account, market_oid).status_msg == "集合竞价阶段不接受市价委托"


def test_orders_outside_sessions_are_rejected(make_desk) -> None:
    c = consts()
    desk = make_desk(start_ms=at(DAY, 12, 0))
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, 10.0)
    desk.drain()
    assert desk.trader.query_stock_order(desk.account, oid).status_msg == "当前时间不允许委托"


@pytest.mark.parametrize(
    ("code", "volume", "ok"),
    [
        ("688002.SH", 100, False),
        ("688002.SH", 201, True),
        ("430934.BJ", 99, False),
        ("430934.BJ", 101, True),
        ("300001.SZ", 200, True),
        ("300001.SZ", 250, False),
    ],
)
def test_lots_per_board(make_desk, code: str, volume: int, ok: bool) -> None:
    c = consts()
    desk = make_desk(starting_cash=1e8)
    price = desk.tick(code)["bidPrice"][0]
    oid = desk.trader.order_stock(desk.account, code, c.STOCK_BUY, volume, c.FIX_PRICE, price)
    desk.drain()
    status = desk.trader.query_stock_order(desk.account, oid).order_status
    assert (status != c.ORDER_JUNK) is ok


def test_restart_keeps_the_account(make_desk, tmp_path: Path) -> None:
    c = consts()
    db = tmp_path / "paper.sqlite"
    desk = make_desk(db_path=db, create=True)
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 500, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
    )
    desk.drain()
    asset = desk.trader.query_stock_asset(desk.account)
    desk.trader.stop()
    desk.env.close()  # closes the broker and its file
    again = make_desk(start_ms=at(DAY, 10, 5), db_path=db)
    assert again.trader.query_stock_asset(again.account).cash == asset.cash
    assert again.trader.query_stock_position(again.account, CODE).volume == 500
    assert [o.order_id for o in again.trader.query_stock_orders(again.account)] == [oid]
    new = again.trader.order_stock(
        again.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, again.tick(CODE)["bidPrice"][4]
    )
    assert new == oid + 1  # the order-id counter survives too


def test_missing_account_file_needs_create(make_desk, tmp_path: Path) -> None:
    from qmtgate.sim.broker import AccountStoreMissing

    with pytest.raises(AccountStoreMissing, match="--create"):
        make_desk(db_path=tmp_path / "typo.sqlite")
    assert not (tmp_path / "typo.sqlite").exists()


def test_several_accounts_are_separate(make_desk) -> None:
    from xtquant import xttype

    c = consts()
    desk = make_desk(accounts=(("8880001", "STOCK"), ("8880002", "STOCK"), ("9990001", "CREDIT")))
    other = xttype.StockAccount("8880002")
    credit = xttype.StockAccount("9990001", "CREDIT")
    assert desk.trader.subscribe(other) == 0 and desk.trader.subscribe(credit) == 0
    assert desk.trader.subscribe(xttype.StockAccount("nobody")) == -1
    desk.trader.order_stock(other, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0])
    assert desk.trader.query_stock_positions(desk.account) == []
    assert desk.trader.query_stock_position(other, CODE).volume == 100
    assert desk.trader.order_stock(credit, CODE, c.CREDIT_FIN_BUY, 100, c.FIX_PRICE, 10.0) == -1
    with pytest.raises(NotImplementedError, match="query_credit_detail"):
        desk.trader.query_credit_detail(credit)
    infos = desk.trader.query_account_infos()
    assert {(i.account_id, i.account_type) for i in infos} == {("8880001", 2), ("8880002", 2), ("9990001", 3)}
    assert desk.trader.query_account_info is not None
    assert {s.status for s in desk.trader.query_account_status()} == {c.ACCOUNT_STATUS_OK}


def test_dividends_and_bonus_shares_on_the_ex_date(make_desk) -> None:
    import datetime as dt

    c = consts()
    code = "600009.SH"  # seed 0: ex-date 2026-06-23, 1.045 元 cash and 0.4 bonus shares per share
    desk = make_desk(start_ms=at(dt.date(2026, 6, 22), 10))
    desk.trader.order_stock(
        desk.account, code, c.STOCK_BUY, 1000, c.FIX_PRICE, desk.tick(code)["askPrice"][0]
    )
    desk.drain()
    cash = desk.trader.query_stock_asset(desk.account).cash
    desk.goto(at(dt.date(2026, 6, 23), 9, 31))
    pos = desk.trader.query_stock_position(desk.account, code)
    assert pos.volume == 1400 and pos.can_use_volume == 1400
    assert desk.trader.query_stock_asset(desk.account).cash == pytest.approx(cash + 1045.0)


def test_new_purchase_limit_and_ipo_data_shapes(desk: Desk) -> None:
    c = consts()
    desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 2000, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
    )
    limits = desk.trader.query_new_purchase_limit(desk.account)
    assert set(limits) == {"KCB", "SH", "SZ"} and limits["SZ"] == 0 and limits["SH"] % 1000 == 0
    assert desk.trader.query_ipo_data() == {}


def test_a_second_trader_sees_the_same_account(desk: Desk) -> None:
    c = consts()
    other = open_desk(desk.env)
    try:
        desk.trader.order_stock(
            desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0]
        )
        desk.drain()
        other.drain()
        assert [k for k in other.cb.kinds() if k == "stock_trade"] == ["stock_trade"]
    finally:
        other.trader.stop()


def test_cancel_races_a_fill_in_the_next_snapshot(make_desk) -> None:
    """The cancel is accepted (0) but the next snapshot trades through the order first: the order
    ends filled and the cancel comes back as on_cancel_error."""
    import numpy as np

    from qmtgate.sim.daypath import CLOSE_SLOT, CONT0, SLOT_SECONDS
    from qmtgate.sim.timeutil import ms_of

    c = consts()
    probe = make_desk()
    market = probe.env.market
    d = market.calendar.index_of(DAY)
    path = market.day_path(market.index_of(CODE), d)
    ks = np.flatnonzero(path.volume > 0)
    ks = ks[(ks > CONT0) & (ks < CLOSE_SLOT)]
    a = next(
        int(x)
        for x, y in itertools.pairwise(ks.tolist())
        if y == x + 1 and path.price[y] <= path.price[x] - 2
    )
    desk = make_desk(start_ms=ms_of(DAY, int(SLOT_SECONDS[a])))
    limit = round((int(path.price[a]) - 1) * 0.01, 2)  # below the last price: rests
    oid = desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, limit)
    desk.drain()
    assert desk.trader.query_stock_order(desk.account, oid).order_status == c.ORDER_REPORTED
    assert desk.trader.cancel_order_stock(desk.account, oid) == 0
    desk.step(3)  # the next snapshot trades below the limit before the cancel lands
    order = desk.trader.query_stock_order(desk.account, oid)
    assert (order.order_status, order.traded_volume, order.traded_price) == (c.ORDER_SUCCEEDED, 100, limit)
    assert [e.order_id for e in desk.cb.of("cancel_error")] == [oid]


def test_cancel_by_contract_number(desk: Desk) -> None:
    c = consts()
    oid = desk.trader.order_stock(
        desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["bidPrice"][4]
    )
    sysid = desk.trader.query_stock_order(desk.account, oid).order_sysid
    assert desk.trader.cancel_order_stock_sysid(desk.account, "SZ", sysid) == -1  # wrong exchange
    assert desk.trader.cancel_order_stock_sysid(desk.account, "SH", sysid) == 0
    desk.step(3)
    assert desk.trader.query_stock_order(desk.account, oid).order_status == c.ORDER_CANCELED
    seq = desk.trader.cancel_order_stock_sysid_async(desk.account, c.SH_MARKET, sysid)
    desk.drain()
    (resp,) = desk.cb.of("cancel_order_stock_async_response")
    assert (resp.seq, resp.cancel_result, resp.order_sysid) == (seq, -1, sysid)


def test_history_is_kept_across_days_in_the_account_file(make_desk, tmp_path: Path) -> None:
    from qmtgate.sim.broker import AccountStore

    c = consts()
    db = tmp_path / "paper.sqlite"
    desk = make_desk(db_path=db, create=True)
    desk.trader.order_stock(desk.account, CODE, c.STOCK_BUY, 100, c.FIX_PRICE, desk.tick(CODE)["askPrice"][0])
    desk.goto(at(NEXT_DAY, 9, 31))
    assert desk.trader.query_stock_trades(desk.account) == []
    desk.trader.stop()
    desk.env.close()
    store = AccountStore(db)
    try:
        assert store.history_counts() == (1, 1)
        acct = store.load_accounts()["8880001"]
        assert acct.positions[CODE].yesterday_volume == 100 and acct.orders == {}
    finally:
        store.close()
