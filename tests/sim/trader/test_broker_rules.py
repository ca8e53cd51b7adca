"""Paper-broker rules checked on the broker itself: fees by date and market, odd lots, sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from qmtgate.sim.broker import BrokerConfig, FeeSchedule, PaperBroker
from qmtgate.sim.broker.model import Position
from qmtgate.sim.broker.rules import Phase, accepts_cancels, phase_at
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import hms, ms_of

ACCOUNT = "8880001"


def broker_at(day: dt.date, seconds: int, **config) -> PaperBroker:
    base = SimMarket(seed=0)
    clock = MarketClock(base.calendar, mode="manual", start_ms=ms_of(day, seconds))
    return PaperBroker(SimMarket(seed=0, clock=clock), BrokerConfig(**config))


def hold(broker: PaperBroker, code: str, volume: int) -> None:
    broker.accounts[ACCOUNT].positions[code] = Position(code, volume, volume, 0, 0, 0, 0, "20200101")


@pytest.mark.parametrize(
    ("day", "rate"),
    [(dt.date(2023, 8, 25), "0.001"), (dt.date(2023, 8, 28), "0.0005"), (dt.date(2026, 11, 20), "0.0005")],
)
def test_stamp_duty_on_sells_by_date(day: dt.date, rate: str) -> None:
    from decimal import Decimal

    b = broker_at(day, hms(10, 0))
    code = "600000.SH"
    hold(b, code, 10_000)
    bid = b.book(b.instrument(code), b.day, b.slot).bids[0]
    oid, _ = b.place_order(ACCOUNT, 2, code, 24, 1000, 11, bid / 1000)
    (trade,) = b.accounts[ACCOUNT].trades
    amount = trade.amount_li
    assert trade.order_id == oid and trade.price_li == bid
    stamp = int((Decimal(amount) * Decimal(rate) / 10).quantize(Decimal(1), "ROUND_HALF_UP")) * 10
    commission = max(
        int((Decimal(amount) * Decimal("0.00025") / 10).quantize(Decimal(1), "ROUND_HALF_UP")) * 10, 5000
    )
    transfer = int((Decimal(amount) * Decimal("0.00001") / 10).quantize(Decimal(1), "ROUND_HALF_UP")) * 10
    assert trade.fees_li == stamp + commission + transfer
    assert b.accounts[ACCOUNT].cash_li == b.accounts[ACCOUNT].initial_li + amount - trade.fees_li


def test_fee_schedule_by_market_and_kind() -> None:
    f = FeeSchedule()
    day = dt.date(2026, 1, 5)
    amount = 1_000_000_000  # 1,000,000 元 in li
    assert f.total(amount, is_sell=False, market="SH", is_fund=False, day=day) == 250_000 + 10_000
    assert f.total(amount, is_sell=True, market="SZ", is_fund=False, day=day) == 250_000 + 10_000 + 500_000
    assert f.total(amount, is_sell=True, market="BJ", is_fund=False, day=day) == 250_000 + 500_000
    assert f.total(amount, is_sell=True, market="SH", is_fund=True, day=day) == 250_000
    assert f.commission(1_000_000) == 5_000  # 1,000 元 trade pays the 5 元 minimum
    custom = FeeSchedule(
        commission_rate=FeeSchedule().commission_rate / 5, commission_min=FeeSchedule().commission_min * 0
    )
    assert custom.commission(1_000_000) == 50


def seller(code: str, held: int) -> tuple[Any, Callable[[int], Any]]:
    """A broker at 10:00 holding ``held`` sellable shares of ``code``; ``sell(volume)`` places a sell at
    the bid and returns the order."""
    b = broker_at(dt.date(2026, 11, 20), hms(10, 0))
    hold(b, code, held)
    bid = b.book(b.instrument(code), b.day, b.slot).bids[0] / 1000

    def sell(volume: int) -> Any:
        order_id, _ = b.place_order(ACCOUNT, 2, code, 24, volume, 11, bid)
        return b.accounts[ACCOUNT].orders[order_id]

    return b, sell


def test_an_odd_lot_sells_whole_alone_or_with_lots_never_split() -> None:
    code = "600000.SH"
    b, sell = seller(code, 350)
    assert sell(30).status_msg == "卖出零股须一次性卖出"  # part of the odd 50
    assert sell(130).status_msg == "卖出零股须一次性卖出"  # a lot and part of the odd 50
    assert sell(150).status == 56  # a lot and the whole odd 50
    assert b.accounts[ACCOUNT].positions[code].volume == 200
    assert sell(200).status == 56
    assert b.accounts[ACCOUNT].positions[code].volume == 0


def test_the_odd_remainder_sells_alone() -> None:
    b, sell = seller("600000.SH", 150)
    assert sell(50).status == 56
    assert b.accounts[ACCOUNT].positions["600000.SH"].volume == 100


def test_star_sells_below_200_only_to_close_out() -> None:
    _, sell = seller("688002.SH", 350)
    assert sell(150).status == 57
    assert sell(201).status != 57


@pytest.mark.parametrize(
    ("hhmmss", "phase", "cancel"),
    [
        ((9, 10, 0), Phase.CLOSED, False),
        ((9, 15, 0), Phase.OPEN_AUCTION, True),
        ((9, 19, 59), Phase.OPEN_AUCTION, True),
        ((9, 20, 0), Phase.OPEN_AUCTION, False),
        ((9, 25, 0), Phase.PRE_OPEN, True),
        ((9, 30, 0), Phase.CONTINUOUS, True),
        ((11, 30, 0), Phase.LUNCH, True),
        ((13, 0, 0), Phase.CONTINUOUS, True),
        ((14, 57, 0), Phase.CLOSE_AUCTION, False),
        ((15, 0, 0), Phase.CLOSED, False),
    ],
)
def test_phases_and_cancel_windows(hhmmss: tuple[int, int, int], phase: Phase, cancel: bool) -> None:
    s = hms(*hhmmss)
    assert phase_at(s) == phase
    assert accepts_cancels(phase_at(s), s) is cancel


def test_weekend_orders_are_rejected() -> None:
    b = broker_at(dt.date(2026, 11, 21), hms(10, 0))  # a Saturday
    oid, _ = b.place_order(ACCOUNT, 2, "600000.SH", 23, 100, 11, 10.0)
    assert b.accounts[ACCOUNT].orders[oid].status_msg == "当前时间不允许委托"


def test_gateway_sim_settings_configure_the_paper_broker(tmp_path) -> None:
    from qmtgate.config import SimSettings
    from qmtgate.sim import _broker_config

    settings = SimSettings(
        paper_accounts=("123", "456"),
        paper_starting_cash=50_000.0,
        paper_db=str(tmp_path / "p.sqlite"),
        paper_create=True,
    )
    cfg = _broker_config(settings)
    assert cfg.accounts == (("123", "STOCK"), ("456", "STOCK")) and cfg.starting_cash == 50_000.0
    assert cfg.create and str(cfg.db_path).endswith("p.sqlite")
    b = PaperBroker(SimMarket(seed=0), cfg)
    try:
        assert b.accounts["456"].cash_li == 50_000_000 and (tmp_path / "p.sqlite").exists()
    finally:
        b.close()


def test_one_book_per_slot_shared_by_its_orders_and_never_changed_by_them() -> None:
    b = broker_at(dt.date(2025, 6, 12), hms(10, 30))
    ins = b.instrument("600036.SH")
    book = b.book(ins, b.day, b.slot)
    assert book is not None and b.book(ins, b.day, b.slot) is book  # computed once for the slot
    assert book == b._compute_book(ins, b.day, b.slot)  # what the numpy model gives
    asks, sizes = list(book.asks), list(book.ask_shares)
    b.accounts[ACCOUNT].cash_li = 10**13  # enough for the whole level
    oid, _ = b.place_order(ACCOUNT, 2, "600036.SH", 23, sizes[0], 11, asks[0] / 1000)  # takes the best ask
    assert oid > 0 and b.accounts[ACCOUNT].trades[-1].volume == sizes[0]
    assert (book.asks, book.ask_shares) == (asks, sizes)  # what it took is kept beside the book
    again, _ = b.place_order(ACCOUNT, 2, "600036.SH", 23, 100, 11, asks[0] / 1000)  # the level is used up
    assert [t for t in b.accounts[ACCOUNT].trades if t.order_id == again] == []
