"""The broker's books as the objects xttrader hands to callers and callbacks.

On a real terminal pushed and queried objects are native objects with the attributes of xttype's
classes plus a few more (``XtPosition.float_profit``, ``XtOrderError.seq``...); here they are
instances of the xttype classes (so ``isinstance`` works) with the same extra attributes set.
Money is converted from li to 元 and times are Unix seconds, as the real SDK reports them.
"""

from __future__ import annotations

from ..xtquant import xttype
from .fees import li_to_yuan
from .model import Account, Order, Position, Trade
from .rules import BROKER_LIMIT, BROKER_MARKET

DIRECTION_LONG = 48
OFFSET_OPEN = 48
OFFSET_CLOSE = 49


class XtAccountInfo:
    """What ``query_account_infos`` returns per account (a native object on a real terminal)."""

    def __init__(self, account_id: str, account_type: int) -> None:
        self.account_type = account_type
        self.account_id = account_id
        self.broker_type = account_type
        self.platform_id = 0
        self.account_classification = 0
        self.login_status = 0  # ACCOUNT_STATUS_OK


def secu_account(account_id: str, market: str) -> str:
    """A stable shareholder code per account and exchange (SH 'A' + 9 digits, SZ '0' + 9, BJ '0' + 9)."""
    digits = "".join(ch for ch in account_id if ch.isdigit())[-9:].rjust(9, "0")
    return ("A" if market == "SH" else "0") + digits


def order_object(acct: Account, o: Order, name: str) -> xttype.XtOrder:
    avg = round(li_to_yuan(o.traded_amount_li) / o.traded_volume, 3) if o.traded_volume else 0.0
    price = li_to_yuan(o.price_li) if o.price_li else float(o.submitted_price)
    x = xttype.XtOrder(
        acct.account_id,
        o.stock_code,
        o.order_id,
        o.sysid,
        o.order_time,
        o.order_type,
        o.volume,
        BROKER_MARKET if o.market_order else BROKER_LIMIT,
        price,
        o.traded_volume,
        avg,
        o.status,
        o.status_msg,
        o.strategy_name,
        o.order_remark,
        DIRECTION_LONG,
        OFFSET_OPEN if o.is_buy else OFFSET_CLOSE,
        secu_account(acct.account_id, o.stock_code.rsplit(".", 1)[-1]),
        name,
    )
    x.account_type = acct.account_type
    return x


def trade_object(acct: Account, t: Trade, name: str) -> xttype.XtTrade:
    x = xttype.XtTrade(
        acct.account_id,
        t.stock_code,
        t.order_type,
        t.traded_id,
        t.traded_time,
        li_to_yuan(t.price_li),
        t.volume,
        li_to_yuan(t.amount_li),
        t.order_id,
        t.sysid,
        t.strategy_name,
        t.order_remark,
        DIRECTION_LONG,
        OFFSET_OPEN if t.order_type == 23 else OFFSET_CLOSE,
        li_to_yuan(t.fees_li),
        secu_account(acct.account_id, t.stock_code.rsplit(".", 1)[-1]),
        name,
    )
    x.account_type = acct.account_type
    return x


def position_object(acct: Account, p: Position, last_li: int, name: str) -> xttype.XtPosition:
    market_value = p.volume * last_li
    avg = li_to_yuan(p.cost_li) / p.volume if p.volume else 0.0
    open_price = li_to_yuan(p.open_amount_li) / p.volume if p.volume else 0.0
    float_profit = li_to_yuan(market_value - p.cost_li) if p.volume else 0.0
    x = xttype.XtPosition(
        acct.account_id,
        p.stock_code,
        p.volume,
        p.can_use,
        round(open_price, 4),
        li_to_yuan(market_value),
        p.frozen,
        0,
        p.yesterday_volume,
        round(avg, 4),
        DIRECTION_LONG,
        li_to_yuan(last_li),
        round(float_profit / li_to_yuan(p.cost_li), 6) if p.cost_li > 0 and p.volume else 0.0,
        secu_account(acct.account_id, p.stock_code.rsplit(".", 1)[-1]),
        name,
    )
    x.account_type = acct.account_type
    x.float_profit = float_profit
    x.position_profit = 0.0  # futures only
    x.open_date = p.open_date
    return x


def asset_object(acct: Account, market_value_li: int) -> xttype.XtAsset:
    fetch = max(acct.cash_li - acct.sold_today_li, 0)
    x = xttype.XtAsset(
        acct.account_id,
        li_to_yuan(acct.cash_li),
        li_to_yuan(acct.frozen_li),
        li_to_yuan(market_value_li),
        li_to_yuan(acct.cash_li + acct.frozen_li + market_value_li),
        li_to_yuan(fetch),
    )
    x.account_type = acct.account_type
    return x


def order_error_object(
    acct_id: str, acct_type: int, order_id: int, error_id: int, msg: str, strategy: str, remark: str, seq: int
) -> xttype.XtOrderError:
    x = xttype.XtOrderError(acct_id, order_id, error_id, msg, strategy, remark)
    x.account_type = acct_type
    x.seq = seq
    return x


def cancel_error_object(
    acct_id: str, acct_type: int, order_id: int, market: int, sysid: str, error_id: int, msg: str
) -> xttype.XtCancelError:
    x = xttype.XtCancelError(acct_id, order_id, market, sysid, error_id, msg)
    x.account_type = acct_type
    return x
