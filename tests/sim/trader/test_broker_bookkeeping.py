"""The paper broker's bookkeeping for a busy day: what a slot walks and what a save writes.

A strategy's day can hold tens of thousands of orders and fills; matching must walk only the orders that
can still trade, and a save must write only what changed, in the order it happened, whatever the day
already holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qmtgate.sim.broker import BrokerConfig, PaperBroker
from qmtgate.sim.broker.broker import _newest
from qmtgate.sim.broker.model import Trade
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import hms, ms_of

ACCOUNT = "8880001"
DAY = dt.date(2026, 11, 20)
CODES = ("600000.SH", "000001.SZ", "600519.SH")


def broker_at(seconds: int, db: Path | None = None) -> PaperBroker:
    clock = MarketClock(SimMarket(seed=0).calendar, mode="manual", start_ms=ms_of(DAY, seconds))
    config = BrokerConfig(starting_cash=1e9, db_path=db, create=db is not None)
    return PaperBroker(SimMarket(seed=0, clock=clock), config)


def marketable_buy(b: PaperBroker, code: str) -> int:
    ins = b.instrument(code)
    ask = b.book(ins, b.day, b.slot).asks[0]
    order_id, _ = b.place_order(ACCOUNT, 2, code, 23, 100, 11, ask / 1000)
    return order_id


def resting_buy(b: PaperBroker, code: str) -> int:
    """A buy at the day's lower limit: it rests all day (the simulated day never trades there)."""
    ins = b.instrument(code)
    down = int(b._path(ins, b.day).down) * ins.tick_li
    order_id, _ = b.place_order(ACCOUNT, 2, code, 23, 100, 11, down / 1000)
    assert b.accounts[ACCOUNT].orders[order_id].live
    return order_id


def step(b: PaperBroker, seconds: int = 3) -> None:
    b.m.clock.advance(seconds)
    b.sync()


def test_matching_walks_only_the_orders_that_can_still_trade() -> None:
    b = broker_at(hms(10, 0))
    filled = [marketable_buy(b, CODES[i % 3]) for i in range(30)]
    resting = [resting_buy(b, CODES[i % 3]) for i in range(6)]
    orders = b.accounts[ACCOUNT].orders
    assert all(not orders[o].live for o in filled) and all(orders[o].live for o in resting)
    step(b)
    assert set(b._working) == set(resting)  # the filled ones left on the first walk
    canceled = resting[:2]
    for oid in canceled:
        assert b.cancel_order(ACCOUNT, 2, oid)[0] == 0
    for _ in range(3):
        step(b)
    assert all(not orders[o].live for o in canceled)
    assert set(b._working) == set(resting[2:])
    # a resting order still matches once the price comes to it: the index is the only list matching uses
    assert all(orders[o].live for o in resting[2:])


def test_working_orders_survive_a_restart_and_still_expire_at_the_close(tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite"
    b = broker_at(hms(10, 0), db)
    for i in range(10):
        marketable_buy(b, CODES[i % 3])
    resting = {resting_buy(b, code) for code in CODES}
    b.sync()
    b.close()
    again = broker_at(hms(10, 0), db)
    assert set(again._working) == resting
    again.m.clock.advance(hms(15, 1) - hms(10, 0))
    again.sync()
    orders = again.accounts[ACCOUNT].orders
    assert all(orders[o].status == 54 for o in resting)  # expired unfilled at the close
    again.m.clock.advance(3 * 24 * 3600)  # Friday to Monday
    again.sync()
    assert not again._working  # a new session starts with no working orders
    again.close()


def test_saves_keep_every_fill_in_the_order_it_was_made(tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite"
    b = broker_at(hms(10, 0), db)
    for i in range(40):
        marketable_buy(b, CODES[i % 3])
        if i % 7 == 0:
            step(b)
    made = [(t.traded_id, t.order_id, t.volume, t.price_li) for t in b.accounts[ACCOUNT].trades]
    assert len(made) >= 40
    b.close()
    again = broker_at(hms(10, 0), db)
    assert [(t.traded_id, t.order_id, t.volume, t.price_li) for t in again.accounts[ACCOUNT].trades] == made
    again.close()


def _trade(i: int) -> Trade:
    return Trade(f"T{i}", i, ACCOUNT, "600000.SH", 23, 0, 10_000, 100, 1_000_000, 5_000, "", "", "")


def test_newest_finds_the_named_trades_in_order_and_stops_early() -> None:
    day = [_trade(i) for i in range(1_000)]
    assert [t.traded_id for t in _newest(day, {"T999", "T997", "T998"})] == ["T997", "T998", "T999"]
    assert _newest(day, set()) == []
    assert [t.traded_id for t in _newest(day, {"T3", "T999"})] == ["T3", "T999"]
    assert _newest(day, {"nope"}) == []
