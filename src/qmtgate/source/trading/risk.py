"""Pre-trade risk: pure checks run before the SDK sees an order (docs/trading.md, "Risk settings").

Each refusal is a :class:`RiskRefused` with a stable ``rule`` token, so clients can branch on it. The
checks take plain values (the order, a :class:`MarketInfo`, an :class:`AccountInfo`, the market's now)
so they are table-tested without a trader.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qmtgate.config import TradingRiskSettings
from qmtgate.source.trading.errors import RiskRefused
from qmtgate.vocab import DEFAULT_MARKET_ORDER_TYPE, MARKET_ORDER_TYPES

CST = dt.timezone(dt.timedelta(hours=8))
#: Sessions that accept orders (seconds of day, CST): the opening call auction and continuous trading.
ORDER_WINDOWS = ((9 * 3600 + 15 * 60, 11 * 3600 + 30 * 60), (13 * 3600, 15 * 3600))
#: The call auctions (opening 09:15-09:25, closing 14:57-15:00 CST): the exchanges take no market orders.
AUCTION_WINDOWS = ((9 * 3600 + 15 * 60, 9 * 3600 + 25 * 60), (14 * 3600 + 57 * 60, 15 * 3600))


@dataclass(frozen=True)
class Order:
    code: str
    side: str  # "buy" | "sell"
    volume: int
    price_type: str  # "limit" | "market" | "latest" (a limit at the last price)
    price: float
    market_type: str | None = None  # a market order's type (vocab.MARKET_ORDER_TYPES); None: the default

    @classmethod
    def of(cls, req: Mapping[str, Any]) -> Order:
        """The order of a place / check request (``PlaceOrder.request()``)."""
        return cls(
            req["code"], req["side"], req["volume"], req["price_type"], req["price"], req.get("market_type")
        )

    @property
    def xt_market_type(self) -> int:
        """The xtconstant ``MARKET_*`` value a market order goes out with (after :meth:`RiskChecker.check_static`
        accepted its type for the code's exchange)."""
        name = self.market_type or DEFAULT_MARKET_ORDER_TYPE
        return MARKET_ORDER_TYPES[name][self.code.rpartition(".")[2]]


@dataclass(frozen=True)
class MarketInfo:
    up_limit: float
    down_limit: float
    tick: float
    last: float

    @property
    def limited(self) -> bool:
        """Whether the day has price limits: a new listing's first days have none, which xtquant's
        detail gives as an up limit of 0 or of a "no value" sentinel (DBL_MAX)."""
        return 0.0 < self.up_limit < 1e300


@dataclass(frozen=True)
class AccountInfo:
    cash: float  # available cash (not frozen)
    sellable: int  # can_use_volume of this code
    position_value: float = 0.0  # market value of this code's position
    total_asset: float = 0.0


#: Order sizes per board, as (minimum, step) of a buy: 100-share lots on the main boards and ChiNext (and
#: funds), STAR at least 200 then any number, BSE at least 100 then any number, bonds and repo in lots of
#: 10 张 (xtquant-api.md §8.3, a-share-market.md).
BOARD_LOTS: dict[str, tuple[int, int]] = {
    "main": (100, 100),
    "chinext": (100, 100),
    "star": (200, 1),
    "bj": (100, 1),
    "bond": (10, 10),
}


def board_of(code: str) -> str:
    """main | star | chinext | bj | bond: the order-size rules differ by board. Bonds and repo by code
    range: SH 1xxxxx and 01/02xxxx, SZ 10-13xxxx (SZ 15/16/18xxxx are funds: 100-share lots)."""
    digits, _, market = code.partition(".")
    if market == "BJ":
        return "bj"
    if market == "SH":
        if digits.startswith(("688", "689")):
            return "star"
        if digits.startswith(("1", "01", "02")):
            return "bond"
    if market == "SZ":
        if digits.startswith(("300", "301")):
            return "chinext"
        if digits.startswith(("10", "11", "12", "13")):
            return "bond"
    return "main"


def lot_refusal(board: str, side: str, volume: int, sellable: int) -> str | None:
    """Why ``volume`` is not a valid order size on ``board`` (None when it is); :data:`BOARD_LOTS`. A sell
    may also be the whole sellable position, or, on a board that trades in lots, carry the position's odd
    remainder (below one lot) whole: alone or with whole lots, never split (余额不足1手部分一次性卖出)."""
    if volume <= 0:
        return "volume must be positive"
    minimum, step = BOARD_LOTS[board]
    unit = "张" if board == "bond" else "shares"
    if side == "sell" and (volume == sellable or (step > 1 and volume % step == sellable % step)):
        return None
    if volume < minimum:
        return f"orders are at least {minimum} {unit}" + (
            " (a smaller sell must sell the whole position)" if side == "sell" else ""
        )
    if volume % step:
        return f"orders are in lots of {step} {unit}" + (
            f" (a sell may carry the position's whole odd remainder, {sellable % step}, never part of it)"
            if side == "sell"
            else ""
        )
    return None


class OrderCounter:
    """Orders accepted per second (sliding window) and per market day."""

    def __init__(self) -> None:
        self._recent: collections.deque[float] = collections.deque()
        self._day: dt.date | None = None
        self._today = 0

    def check(self, now_ms: int, limits: TradingRiskSettings) -> None:
        now = now_ms / 1000
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        day = dt.datetime.fromtimestamp(now, CST).date()
        if day != self._day:
            self._day, self._today = day, 0
        if len(self._recent) >= limits.max_orders_per_second:
            raise RiskRefused(
                "orders_per_second", f"more than {limits.max_orders_per_second} orders in one second"
            )
        if self._today >= limits.max_orders_per_day:
            raise RiskRefused(
                "orders_per_day", f"the day's limit of {limits.max_orders_per_day} orders is used"
            )

    def count(self, now_ms: int) -> None:
        self._recent.append(now_ms / 1000)
        self._today += 1

    def seed(self, now_ms: int, sent_today: int) -> None:
        """Start the market day's count at ``sent_today`` (at least): a gateway restarted in the session
        carries on from the orders it had already sent, so a restart never refills the daily limit."""
        day = dt.datetime.fromtimestamp(now_ms / 1000, CST).date()
        if day != self._day:
            self._day, self._today = day, 0
        self._today = max(self._today, sent_today)

    @property
    def today(self) -> int:
        """Orders counted in the current market day."""
        return self._today


@dataclass
class RiskChecker:
    limits: TradingRiskSettings
    counter: OrderCounter = field(default_factory=OrderCounter)

    def check_static(self, order: Order, now_ms: int) -> None:
        """Checks that need no market or account data: lists, market order type, hours, rates."""
        lim = self.limits
        if order.price_type == "market":
            name = order.market_type or DEFAULT_MARKET_ORDER_TYPE
            exchange = order.code.rpartition(".")[2]
            accepted = MARKET_ORDER_TYPES.get(name, {})
            if exchange not in accepted:
                takes = [n for n, by_exchange in MARKET_ORDER_TYPES.items() if exchange in by_exchange]
                raise RiskRefused(
                    "market_type",
                    f"{exchange} takes no {name} market orders (it takes {', '.join(takes)})",
                    market_type=name,
                    accepted=takes,
                )
        if lim.allow_codes and order.code not in lim.allow_codes:
            raise RiskRefused("code_not_allowed", f"{order.code} is not in the allow list", code=order.code)
        if order.code in lim.deny_codes:
            raise RiskRefused("code_denied", f"{order.code} is in the deny list", code=order.code)
        if lim.check_trading_hours:
            t = dt.datetime.fromtimestamp(now_ms / 1000, CST)
            sod = t.hour * 3600 + t.minute * 60 + t.second
            if t.weekday() >= 5 or not any(a <= sod < b for a, b in ORDER_WINDOWS):
                raise RiskRefused(
                    "trading_hours",
                    f"orders are accepted 09:15-11:30 and 13:00-15:00 CST, not {t:%a %H:%M:%S}",
                )
            if order.price_type == "market" and any(a <= sod < b for a, b in AUCTION_WINDOWS):
                raise RiskRefused(
                    "market_order_in_auction",
                    f"a call auction takes limit orders only (09:15-09:25, 14:57-15:00 CST), not a market "
                    f"order at {t:%H:%M:%S}",
                )
        self.counter.check(now_ms, lim)

    def check_market(
        self, order: Order, market: MarketInfo, account: AccountInfo, *, protective: bool = False
    ) -> float:
        """Checks against the day's prices and the account: size, price, value, cash, position. Returns
        the order's value as the checks count it (a market buy at the up limit, a market sell at last).
        ``protective``: a protective sell, which crosses the market by its own band (no deviation check)."""
        reason = lot_refusal(board_of(order.code), order.side, order.volume, account.sellable)
        if reason:
            raise RiskRefused("lot_size", reason, volume=order.volume)
        if order.price_type == "limit":
            price = order.price
            if market.limited and not (market.down_limit - 1e-9 <= price <= market.up_limit + 1e-9):
                raise RiskRefused(
                    "price_limit",
                    f"price {price} is outside today's limits [{market.down_limit}, {market.up_limit}]",
                    up_limit=market.up_limit,
                    down_limit=market.down_limit,
                )
            steps = price / market.tick
            if not math.isclose(steps, round(steps), abs_tol=1e-6):
                raise RiskRefused("price_tick", f"price {price} is not on the {market.tick} tick grid")
            deviation = self.limits.max_price_deviation
            if deviation is not None and not protective and market.last > 0:
                self._check_deviation(order, price, market.last, deviation)
        elif order.price_type == "latest":  # QMT prices it at the last trade: value it there
            if market.last <= 0:
                raise RiskRefused(
                    "no_last_price",
                    f"no last price for {order.code} now: a latest-price order cannot be valued",
                )
            price = market.last
        elif order.side == "buy" and not market.limited:
            raise RiskRefused(
                "market_order_no_limit",
                "no price limit today (a new listing): a market buy could fill at any price; use a limit order",
            )
        else:  # a market order may fill up to the limit price: value it there
            price = market.up_limit if order.side == "buy" else market.last
        value = price * order.volume
        if value > self.limits.max_order_value:
            raise RiskRefused(
                "max_order_value",
                f"order value {value:.2f} exceeds {self.limits.max_order_value:.2f}",
                value=round(value, 2),
            )
        if value < self.limits.min_order_value:
            raise RiskRefused(
                "min_order_value",
                f"order value {value:.2f} is below the minimum {self.limits.min_order_value:.2f}",
                value=round(value, 2),
            )
        if order.side == "buy":
            after = account.position_value + value
            cap = self.limits.max_position_value
            if cap is not None and after > cap:
                raise RiskRefused(
                    "max_position_value",
                    f"the position would be worth {after:.2f} > {cap:.2f}",
                    value=round(after, 2),
                )
            ratio = self.limits.max_position_ratio
            if ratio is not None and account.total_asset > 0 and after / account.total_asset > ratio:
                raise RiskRefused(
                    "max_position_ratio",
                    f"the position would be {after / account.total_asset:.1%} of total asset (limit {ratio:.1%})",
                )
        if order.side == "buy" and value > account.cash:
            raise RiskRefused(
                "insufficient_cash", f"order value {value:.2f} > available cash {account.cash:.2f}"
            )
        if order.side == "sell" and order.volume > account.sellable:
            raise RiskRefused(
                "insufficient_position",
                f"selling {order.volume} but only {account.sellable} are sellable today (T+1)",
            )
        return value

    @staticmethod
    def _check_deviation(order: Order, price: float, last: float, deviation: float) -> None:
        """A limit price that crosses the last price by more than ``deviation`` (a fat finger)."""
        if order.side == "buy":
            bound = last * (1 + deviation)
            crossed = price > bound + 1e-9
        else:
            bound = last * (1 - deviation)
            crossed = price < bound - 1e-9
        if crossed:
            side = "above" if order.side == "buy" else "below"
            raise RiskRefused(
                "price_deviation",
                f"a {order.side} at {price} is more than {deviation:.1%} {side} the last price {last}",
                last=last,
                bound=round(bound, 4),
            )
