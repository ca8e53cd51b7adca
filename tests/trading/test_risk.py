"""Every pre-trade risk rule, table-driven: what it must refuse (with its stable rule token) and what it
must pass (the neighbouring legal case)."""

from __future__ import annotations

import datetime as dt

import pytest

from qmtgate.config import TradingRiskSettings
from qmtgate.source.trading.errors import RiskRefused
from qmtgate.source.trading.risk import AccountInfo, MarketInfo, Order, OrderCounter, RiskChecker, board_of

CST = dt.timezone(dt.timedelta(hours=8))
MARKET = MarketInfo(up_limit=11.0, down_limit=9.0, tick=0.01, last=10.0)
ACCOUNT = AccountInfo(cash=100_000.0, sellable=300)
DEV5 = {"max_price_deviation": 0.05}  # the fat-finger check at 5 % of MARKET's last price (10.0)
#: A new listing's first days: xtquant's detail has no limits (the simulator's sentinel: DBL_MAX / 0)
NO_LIMIT = MarketInfo(up_limit=1.7976931348623157e308, down_limit=0.0, tick=0.01, last=30.0)


def ms(day: dt.date, h: int, m: int, s: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=CST).timestamp() * 1000)


THU = dt.date(2025, 6, 12)
IN_SESSION = ms(THU, 10, 30)


def buy(volume: int = 100, price: float = 10.0, code: str = "600000.SH", **kw: object) -> Order:
    return Order(code, "buy", volume, kw.get("price_type", "limit"), price)  # type: ignore[arg-type]


def sell(volume: int, code: str = "600000.SH", price: float = 10.0) -> Order:
    return Order(code, "sell", volume, "limit", price)


MARKET_CASES = [
    # (case, order, account, market, limits, refused rule or None)
    ("main board lot", buy(100), ACCOUNT, MARKET, {}, None),
    ("main board odd lot", buy(150), ACCOUNT, MARKET, {}, "lot_size"),
    ("zero volume", buy(0), ACCOUNT, MARKET, {}, "lot_size"),
    ("chinext odd lot", buy(50, code="300750.SZ"), ACCOUNT, MARKET, {}, "lot_size"),
    ("STAR 199", buy(199, code="688981.SH"), ACCOUNT, MARKET, {}, "lot_size"),
    ("STAR 201", buy(201, code="688981.SH"), ACCOUNT, MARKET, {}, None),
    ("BSE 99", buy(99, code="830799.BJ"), ACCOUNT, MARKET, {}, "lot_size"),
    ("BSE 101", buy(101, code="830799.BJ"), ACCOUNT, MARKET, {}, None),
    ("odd-lot sell of the whole position", sell(37), AccountInfo(1e5, 37), MARKET, {}, None),
    ("the odd remainder sold alone", sell(37), AccountInfo(1e5, 137), MARKET, {}, None),
    ("part of the odd remainder", sell(17), AccountInfo(1e5, 137), MARKET, {}, "lot_size"),
    ("lots plus the whole odd remainder", sell(137), AccountInfo(1e5, 237), MARKET, {}, None),
    ("lots plus part of the odd remainder", sell(117), AccountInfo(1e5, 237), MARKET, {}, "lot_size"),
    ("STAR sell below 200 of a larger position", sell(150, "688981.SH"), AccountInfo(1e5, 250), MARKET, {},
     "lot_size"),
    ("STAR sell of a position below 200", sell(150, "688981.SH"), AccountInfo(1e5, 150), MARKET, {}, None),
    ("convertible bond: one lot of 10", buy(10, code="113050.SH"), ACCOUNT, MARKET, {}, None),
    ("convertible bond: 15", buy(15, code="127045.SZ"), ACCOUNT, MARKET, {}, "lot_size"),
    ("convertible bond: the odd 5 alone", sell(5, "123107.SZ"), AccountInfo(1e5, 25), MARKET, {}, None),
    ("SZ ETF trades in 100s", buy(10, code="159915.SZ"), ACCOUNT, MARKET, {}, "lot_size"),
    ("no limit today: any limit price", buy(100, 60.0), AccountInfo(1e5, 0), NO_LIMIT, {}, None),
    ("no limit today: market buy", buy(100, 0.0, price_type="market"), ACCOUNT, NO_LIMIT, {},
     "market_order_no_limit"),
    ("no limit (0 in the detail): market buy", buy(100, 0.0, price_type="market"), ACCOUNT,
     MarketInfo(0.0, 0.0, 0.01, 30.0), {}, "market_order_no_limit"),
    ("no limit today: market sell valued at last", Order("600000.SH", "sell", 100, "market", 0.0),
     ACCOUNT, NO_LIMIT, {}, None),
    ("at the up limit", buy(100, 11.0), ACCOUNT, MARKET, {}, None),
    ("above the up limit", buy(100, 11.01), ACCOUNT, MARKET, {}, "price_limit"),
    ("below the down limit", buy(100, 8.99), ACCOUNT, MARKET, {}, "price_limit"),
    ("off the tick grid", buy(100, 10.005), ACCOUNT, MARKET, {}, "price_tick"),
    ("fund tick grid", buy(100, 10.005), ACCOUNT, MarketInfo(11.0, 9.0, 0.001, 10.0), {}, None),
    ("max order value exceeded", buy(1000), ACCOUNT, MARKET, {"max_order_value": 9_999.0}, "max_order_value"),
    ("max order value met", buy(1000), ACCOUNT, MARKET, {"max_order_value": 10_000.0}, None),
    ("market buy valued at the up limit", buy(1000, 0.0, price_type="market"), ACCOUNT, MARKET,
     {"max_order_value": 10_500.0}, "max_order_value"),
    ("not enough cash", buy(1000), AccountInfo(9_999.0, 0), MARKET, {}, "insufficient_cash"),
    ("just enough cash", buy(1000), AccountInfo(10_000.0, 0), MARKET, {}, None),
    ("sell more than sellable (T+1)", sell(400), ACCOUNT, MARKET, {}, "insufficient_position"),
    ("sell what is sellable", sell(300), ACCOUNT, MARKET, {}, None),
    ("below the minimum trade amount", buy(100), ACCOUNT, MARKET, {"min_order_value": 1000.01}, "min_order_value"),
    ("at the minimum trade amount", buy(100), ACCOUNT, MARKET, {"min_order_value": 1000.0}, None),
    ("position value cap exceeded", buy(100), AccountInfo(1e5, 0, 9_500.0, 1e6), MARKET,
     {"max_position_value": 10_000.0}, "max_position_value"),
    ("position value cap met", buy(100), AccountInfo(1e5, 0, 9_000.0, 1e6), MARKET,
     {"max_position_value": 10_000.0}, None),
    ("sells ignore the position caps", sell(300), AccountInfo(1e5, 300, 9e5, 1e6), MARKET,
     {"max_position_value": 1.0, "max_position_ratio": 0.01}, None),
    ("position ratio exceeded", buy(100), AccountInfo(1e5, 0, 99_500.0, 1e6), MARKET,
     {"max_position_ratio": 0.1}, "max_position_ratio"),
    ("position ratio met", buy(100), AccountInfo(1e5, 0, 99_000.0, 1e6), MARKET, {"max_position_ratio": 0.1}, None),
    ("buy within the deviation", buy(100, 10.5), ACCOUNT, MARKET, DEV5, None),
    ("buy beyond the deviation", buy(100, 10.51), ACCOUNT, MARKET, DEV5, "price_deviation"),
    ("passive buy far below last", buy(100, 9.0), ACCOUNT, MARKET, DEV5, None),
    ("sell within the deviation", sell(100, price=9.5), ACCOUNT, MARKET, DEV5, None),
    ("sell beyond the deviation", sell(100, price=9.49), ACCOUNT, MARKET, DEV5, "price_deviation"),
    ("passive sell far above last", sell(100, price=11.0), ACCOUNT, MARKET, DEV5, None),
    ("deviation check off by default", buy(100, 11.0), ACCOUNT, MARKET, {}, None),
    ("latest-price buy valued at last", Order("600000.SH", "buy", 1000, "latest", 0.0), ACCOUNT, MARKET,
     {"max_order_value": 9_999.0}, "max_order_value"),
    ("latest-price buy within the value cap", Order("600000.SH", "buy", 1000, "latest", 0.0), ACCOUNT, MARKET,
     {"max_order_value": 10_000.0}, None),
    ("latest-price order without a last price", Order("600000.SH", "buy", 100, "latest", 0.0), ACCOUNT,
     MarketInfo(11.0, 9.0, 0.01, 0.0), {}, "no_last_price"),
    ("no last price: no deviation check", buy(100, 11.0), ACCOUNT, MarketInfo(11.0, 9.0, 0.01, 0.0), DEV5, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("order", "account", "market", "limits", "rule"),
    [case[1:] for case in MARKET_CASES],
    ids=[case[0] for case in MARKET_CASES],
)
def test_market_rules(order, account, market, limits, rule) -> None:
    checker = RiskChecker(TradingRiskSettings(**limits))
    if rule is None:
        checker.check_market(order, market, account)
    else:
        with pytest.raises(RiskRefused) as info:
            checker.check_market(order, market, account)
        assert info.value.rule == rule and info.value.status_code == 422


MKT = buy(100, 0.0, price_type="market")
STATIC_CASES = [
    ("allowed code", buy(), IN_SESSION, {"allow_codes": ("600000.SH",)}, None),
    ("code not in allow list", buy(code="600036.SH"), IN_SESSION, {"allow_codes": ("600000.SH",)}, "code_not_allowed"),
    ("denied code", buy(), IN_SESSION, {"deny_codes": ("600000.SH",)}, "code_denied"),
    ("opening auction 09:15", buy(), ms(THU, 9, 15), {}, None),
    ("before the auction 09:14:59", buy(), ms(THU, 9, 14, 59), {}, "trading_hours"),
    ("lunch 12:00", buy(), ms(THU, 12, 0), {}, "trading_hours"),
    ("afternoon 14:59:59", buy(), ms(THU, 14, 59, 59), {}, None),
    ("after the close 15:00", buy(), ms(THU, 15, 0), {}, "trading_hours"),
    ("saturday", buy(), ms(dt.date(2025, 6, 14), 10, 30), {}, "trading_hours"),
    ("hours check off", buy(), ms(THU, 20, 0), {"check_trading_hours": False}, None),
    ("market order in the opening auction", MKT, ms(THU, 9, 24, 59), {}, "market_order_in_auction"),
    ("market order after the opening auction", MKT, ms(THU, 9, 25), {}, None),
    ("market order in continuous trading", MKT, ms(THU, 14, 56, 59), {}, None),
    ("market order in the closing auction", MKT, ms(THU, 14, 57), {}, "market_order_in_auction"),
    ("limit order in the closing auction", buy(), ms(THU, 14, 57), {}, None),
    ("market order, hours check off", MKT, ms(THU, 14, 58), {"check_trading_hours": False}, None),
    ("own_best on SH", Order("600000.SH", "buy", 100, "market", 0.0, "own_best"), IN_SESSION, {}, None),
    ("best5_limit on BJ", Order("830799.BJ", "buy", 100, "market", 0.0, "best5_limit"), IN_SESSION, {}, None),
    ("fok on SZ", Order("000001.SZ", "buy", 100, "market", 0.0, "fok"), IN_SESSION, {}, None),
    ("best5_limit on SZ", Order("000001.SZ", "buy", 100, "market", 0.0, "best5_limit"), IN_SESSION, {},
     "market_type"),
    ("ioc on SH", Order("600000.SH", "sell", 100, "market", 0.0, "ioc"), IN_SESSION, {}, "market_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("order", "now", "limits", "rule"), [c[1:] for c in STATIC_CASES], ids=[c[0] for c in STATIC_CASES]
)
def test_static_rules(order, now, limits, rule) -> None:
    checker = RiskChecker(TradingRiskSettings(**limits))
    if rule is None:
        checker.check_static(order, now)
    else:
        with pytest.raises(RiskRefused) as info:
            checker.check_static(order, now)
        assert info.value.rule == rule


def test_orders_per_second_window_slides() -> None:
    limits = TradingRiskSettings(max_orders_per_second=2)
    counter = OrderCounter()
    for offset in (0, 100):
        counter.check(IN_SESSION + offset, limits)
        counter.count(IN_SESSION + offset)
    with pytest.raises(RiskRefused) as info:
        counter.check(IN_SESSION + 999, limits)
    assert info.value.rule == "orders_per_second"
    counter.check(IN_SESSION + 1000, limits)  # the first left the window


def test_orders_per_day_resets_on_the_next_day() -> None:
    limits = TradingRiskSettings(max_orders_per_day=2, max_orders_per_second=100)
    counter = OrderCounter()
    for i in range(2):
        counter.check(IN_SESSION + i * 5000, limits)
        counter.count(IN_SESSION + i * 5000)
    with pytest.raises(RiskRefused) as info:
        counter.check(IN_SESSION + 60_000, limits)
    assert info.value.rule == "orders_per_day"
    counter.check(ms(dt.date(2025, 6, 13), 9, 30), limits)


@pytest.mark.parametrize(
    ("code", "board"),
    [("600000.SH", "main"), ("000001.SZ", "main"), ("300750.SZ", "chinext"), ("688981.SH", "star"),
     ("689009.SH", "star"), ("830799.BJ", "bj"), ("920002.BJ", "bj"), ("113050.SH", "bond"),
     ("110059.SH", "bond"), ("019547.SH", "bond"), ("204001.SH", "main"), ("127045.SZ", "bond"),
     ("131810.SZ", "bond"), ("159915.SZ", "main"), ("510300.SH", "main"), ("588000.SH", "main")],
)  # fmt: skip
def test_board_of(code: str, board: str) -> None:
    assert board_of(code) == board


def test_a_protective_sell_is_exempt_from_the_deviation_check() -> None:
    """Its band (up to 20 %) sets how far it crosses the market; the fat-finger check is for people."""
    checker = RiskChecker(TradingRiskSettings(max_price_deviation=0.01))
    deep = sell(100, price=9.5)
    with pytest.raises(RiskRefused):
        checker.check_market(deep, MARKET, ACCOUNT)
    checker.check_market(deep, MARKET, ACCOUNT, protective=True)


@pytest.mark.parametrize(
    ("code", "market_type", "xt"),
    [("600000.SH", None, 42), ("000001.SZ", None, 47), ("830799.BJ", None, 42), ("600000.SH", "best5_limit", 43),
     ("000001.SZ", "peer_best", 44), ("688981.SH", "own_best", 45), ("300750.SZ", "ioc", 46),
     ("000001.SZ", "fok", 48)],
)  # fmt: skip
def test_a_market_order_goes_out_with_the_xttrader_type_of_its_exchange(
    code: str, market_type: str | None, xt: int
) -> None:
    assert Order(code, "buy", 100, "market", 0.0, market_type).xt_market_type == xt
