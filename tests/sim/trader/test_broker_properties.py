"""Property tests of the paper broker over random order streams (hypothesis).

Invariants checked after every action, in exact integer li:
- no fill outside the day's limit-down/limit-up or off the tick grid; a limit order never fills
  worse than its price;
- never a sell beyond the sellable (T+1) volume; a sell order's fills are sells;
- cash + frozen + bought - sold + fees == starting cash + dividends (nothing created or lost);
- volumes agree between orders, trades and positions; frozen cash and shares equal what the live
  orders froze; fees of an order equal the schedule applied to its traded amount.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmtgate.sim.broker import BrokerConfig, PaperBroker
from qmtgate.sim.broker.model import STOCK_BUY, Position
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import ms_of

DAY = dt.date(2026, 11, 20)
CODES = ["600000.SH", "000001.SZ", "688002.SH", "159005.SZ", "430934.BJ", "300001.SZ"]
PRICE_TYPES = [11, 11, 11, 11, 5, 42, 43, 44, 45, 46, 47, 48]
SEEDED = 5_000  # shares of each code held since yesterday (sellable today)
ACCOUNT = "8880001"

action = st.one_of(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(0, len(CODES) - 1),
        st.integers(-6, 6),
        st.integers(1, 40),
        st.sampled_from(PRICE_TYPES),
        st.booleans(),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("step"), st.sampled_from([3, 3, 3, 30, 300, 1800])),
)


def new_broker(start_h: int) -> PaperBroker:
    base = SimMarket(seed=0)
    clock = MarketClock(base.calendar, mode="manual", start_ms=ms_of(DAY, start_h * 3600))
    broker = PaperBroker(SimMarket(seed=0, clock=clock), BrokerConfig(starting_cash=2_000_000.0))
    acct = broker.accounts[ACCOUNT]
    for code in CODES:
        ins = broker.instrument(code)
        cost = SEEDED * broker.last_price_li(ins)
        acct.positions[code] = Position(code, SEEDED, SEEDED, 0, 0, cost, cost, "20261119")
    return broker


def check(broker: PaperBroker, sold_since: dict[str, int]) -> None:
    acct = broker.accounts[ACCOUNT]
    # money: nothing created or lost, to the li
    assert acct.cash_li + acct.frozen_li + acct.bought_li - acct.sold_li + acct.fees_total_li == (
        acct.initial_li + acct.dividends_total_li
    )
    assert acct.cash_li >= 0 and acct.frozen_li >= 0
    live = [o for o in acct.orders.values() if o.live]
    assert acct.frozen_li == sum(o.frozen_li for o in live if o.is_buy)
    by_order: dict[int, int] = {}
    for t in acct.trades:
        o = acct.orders[t.order_id]
        ins = broker.instrument(t.stock_code)
        path = broker.m.day_path(ins.index, o.day)
        assert t.price_li % ins.tick_li == 0, "fill off the tick grid"
        assert path.down * ins.tick_li <= t.price_li <= path.up * ins.tick_li, "fill outside the limits"
        if o.price_li and not o.market_order:
            assert t.price_li <= o.price_li if o.is_buy else t.price_li >= o.price_li
        assert t.order_type == o.order_type  # a sell's fills are sells
        assert t.amount_li == t.price_li * t.volume
        by_order[t.order_id] = by_order.get(t.order_id, 0) + t.volume
    for o in acct.orders.values():
        assert by_order.get(o.order_id, 0) == o.traded_volume <= o.volume
        ins = broker.instrument(o.stock_code)
        assert o.fees_li == broker.fees.total(
            o.traded_amount_li, is_sell=not o.is_buy, market=ins.market, is_fund=ins.is_fund, day=DAY
        )
        if not o.live:
            assert o.frozen_li == 0 and o.frozen_volume == 0
    for code in CODES:
        bought = sum(t.volume for t in acct.trades if t.stock_code == code and t.order_type == STOCK_BUY)
        sold = sum(t.volume for t in acct.trades if t.stock_code == code and t.order_type != STOCK_BUY)
        pos = acct.positions[code]
        assert pos.volume == SEEDED + bought - sold
        assert sold <= SEEDED, "sold beyond the sellable volume"
        assert pos.frozen == sum(o.frozen_volume for o in live if o.stock_code == code and not o.is_buy)
        assert pos.can_use == SEEDED - sold - pos.frozen >= 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start_h=st.sampled_from([10, 13, 14]), actions=st.lists(action, min_size=1, max_size=40))
def test_random_order_streams_keep_the_books_exact(start_h: int, actions: list[tuple]) -> None:
    broker = new_broker(start_h)
    acct = broker.accounts[ACCOUNT]
    placed: list[int] = []
    for a in actions:
        if a[0] in ("buy", "sell"):
            _, ci, offset, lots, ptype, odd = a
            code = CODES[ci]
            ins = broker.instrument(code)
            price = (broker.last_price_li(ins) + offset * ins.tick_li) / 1000
            volume = lots * 100 + (37 if odd else 0)
            oid, _ = broker.place_order(
                ACCOUNT, 2, code, 23 if a[0] == "buy" else 24, volume, ptype, price if ptype == 11 else 0.0
            )
            if oid > 0:
                placed.append(oid)
        elif a[0] == "cancel" and placed:
            broker.cancel_order(ACCOUNT, 2, placed[a[1] % len(placed)])
        elif a[0] == "step":
            broker.m.clock.advance(a[1])
            broker.sync()
            if broker.day != broker.m.calendar.index_of(DAY):
                return  # crossed into the next session: the books were checked up to the close
        check(broker, {})
    assert all(o.day == broker.day for o in acct.orders.values())
