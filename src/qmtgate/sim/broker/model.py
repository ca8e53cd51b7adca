"""The paper broker's books: accounts, positions, orders and trades as plain dataclasses.

Money is integer li (0.001 元, see :mod:`.fees`), volumes are shares, prices are li per share. The
dataclasses are what is persisted (as JSON) and what the xttrader facade turns into xtquant objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# order status (xtconstant values)
ORDER_UNREPORTED = 48
ORDER_WAIT_REPORTING = 49
ORDER_REPORTED = 50
ORDER_REPORTED_CANCEL = 51
ORDER_PARTSUCC_CANCEL = 52
ORDER_PART_CANCEL = 53
ORDER_CANCELED = 54
ORDER_PART_SUCC = 55
ORDER_SUCCEEDED = 56
ORDER_JUNK = 57
FINAL_STATUSES = frozenset({ORDER_PART_CANCEL, ORDER_CANCELED, ORDER_SUCCEEDED, ORDER_JUNK})

STOCK_BUY = 23
STOCK_SELL = 24


@dataclass
class Order:
    order_id: int
    account_id: str
    stock_code: str
    order_type: int  # 23 buy / 24 sell
    volume: int
    price_type: int  # as submitted
    price_li: int  # limit price (after a market type's conversion; 0 for pure market orders)
    submitted_price: float
    order_time: int  # Unix seconds
    day: int  # calendar index of the session
    entry_slot: int  # matching considers slots after this one
    strategy_name: str = ""
    order_remark: str = ""
    status: int = ORDER_UNREPORTED
    status_msg: str = ""
    sysid: str = ""
    traded_volume: int = 0
    traded_amount_li: int = 0
    fees_li: int = 0
    frozen_li: int = 0  # cash still frozen for this buy
    frozen_volume: int = 0  # shares still frozen for this sell
    market_order: bool = False
    cancel_slot: int | None = None  # a pending cancel takes effect at this slot (after its fills)

    @property
    def is_buy(self) -> bool:
        return self.order_type == STOCK_BUY

    @property
    def remaining(self) -> int:
        return self.volume - self.traded_volume

    @property
    def live(self) -> bool:
        return self.status not in FINAL_STATUSES


@dataclass
class Trade:
    traded_id: str
    order_id: int
    account_id: str
    stock_code: str
    order_type: int
    traded_time: int  # Unix seconds
    price_li: int
    volume: int
    amount_li: int
    fees_li: int  # all fees of this fill (commission + transfer fee + stamp duty)
    sysid: str
    strategy_name: str
    order_remark: str


@dataclass
class Position:
    stock_code: str
    volume: int = 0
    yesterday_volume: int = 0  # held at the start of the session (the T+1 sellable base)
    sold_today: int = 0  # of the sellable base, sold today
    frozen: int = 0  # frozen by live sell orders
    cost_li: int = 0  # what the holding cost, fees included (reduced pro rata by sells)
    open_amount_li: int = 0  # the same without fees (for open_price)
    open_date: str = ""

    @property
    def can_use(self) -> int:
        return max(self.yesterday_volume - self.sold_today - self.frozen, 0)


@dataclass
class Account:
    account_id: str
    account_type: int  # 2 STOCK, 3 CREDIT
    cash_li: int  # available
    frozen_li: int = 0
    sold_today_li: int = 0  # net sell proceeds of today (usable, not withdrawable until tomorrow)
    initial_li: int = 0
    fees_total_li: int = 0
    dividends_total_li: int = 0
    bought_li: int = 0  # every buy fill's amount, all sessions
    sold_li: int = 0  # every sell fill's amount, all sessions
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # today's
    trades: list[Trade] = field(default_factory=list)  # today's
