"""Order-entry rules of the paper broker: trading phases, lots, accepted price types, and the texts of
the rejections (what QMT shows in ``status_msg`` / ``error_msg``).

Phases follow SSE/SZSE/BSE equity rules (a-share-market.md): opening call auction 09:15-09:25 (no
cancels 09:20-09:25), orders held 09:25-09:30, continuous 09:30-11:30 and 13:00-14:57, closing call
auction 14:57-15:00 (no cancels). Call auctions take limit orders only.
"""

from __future__ import annotations

from enum import Enum

from ..rules import Board
from ..timeutil import (
    AM_CLOSE,
    AM_OPEN,
    CLOSE,
    CONTINUOUS_CLOSE,
    OPEN_AUCTION_MATCH,
    OPEN_AUCTION_START,
    PM_OPEN,
    hms,
)

NO_CANCEL_FROM = hms(9, 20)

# price types (xtconstant values)
LATEST_PRICE = 5
FIX_PRICE = 11
MARKET_SH_CONVERT_5_CANCEL = 42
MARKET_SH_CONVERT_5_LIMIT = 43
MARKET_PEER_PRICE_FIRST = 44
MARKET_MINE_PRICE_FIRST = 45
MARKET_SZ_INSTBUSI_RESTCANCEL = 46
MARKET_SZ_CONVERT_5_CANCEL = 47
MARKET_SZ_FULL_OR_CANCEL = 48

#: Market price types each exchange accepts for stocks (SSE and BSE share the SSE set).
MARKET_TYPES = {
    "SH": frozenset({42, 43, 44, 45}),
    "BJ": frozenset({42, 43, 44, 45}),
    "SZ": frozenset({44, 45, 46, 47, 48}),
}
LIMIT_TYPES = frozenset({LATEST_PRICE, FIX_PRICE})

#: The broker price type stamped on returned orders (EBrokerPriceType: 49 市价, 50 限价), as QMT shows.
BROKER_LIMIT = 50
BROKER_MARKET = 49


class Phase(Enum):
    CLOSED = "closed"
    OPEN_AUCTION = "open_auction"  # 09:15-09:25
    PRE_OPEN = "pre_open"  # 09:25-09:30: orders accepted, held until continuous trading
    CONTINUOUS = "continuous"
    LUNCH = "lunch"
    CLOSE_AUCTION = "close_auction"  # 14:57-15:00


def phase_at(seconds_of_day: float) -> Phase:
    s = seconds_of_day
    if OPEN_AUCTION_START <= s < OPEN_AUCTION_MATCH:
        return Phase.OPEN_AUCTION
    if OPEN_AUCTION_MATCH <= s < AM_OPEN:
        return Phase.PRE_OPEN
    if AM_OPEN <= s < AM_CLOSE or PM_OPEN <= s < CONTINUOUS_CLOSE:
        return Phase.CONTINUOUS
    if AM_CLOSE <= s < PM_OPEN:
        return Phase.LUNCH
    if CONTINUOUS_CLOSE <= s < CLOSE:
        return Phase.CLOSE_AUCTION
    return Phase.CLOSED


def accepts_orders(phase: Phase) -> bool:
    return phase not in (Phase.CLOSED, Phase.LUNCH)


def accepts_cancels(phase: Phase, seconds_of_day: float) -> bool:
    if phase == Phase.OPEN_AUCTION:
        return seconds_of_day < NO_CANCEL_FROM
    return phase in (Phase.PRE_OPEN, Phase.CONTINUOUS, Phase.LUNCH)


def lot_error(board: Board, is_buy: bool, volume: int, sellable: int) -> str | None:
    """Why ``volume`` is not a valid order size (None when it is).

    Buys: main boards and ChiNext (and funds) in multiples of 100; STAR at least 200 then any number;
    BSE at least 100 then any number. Sells: the same, except that an odd lot is allowed when it sells
    out the whole sellable position, or carries the position's odd remainder whole, alone or with whole
    lots (余额不足1手部分一次性卖出, never split).
    """
    if volume <= 0:
        return "委托数量必须大于0"
    if not is_buy and volume == sellable:
        return None
    if not is_buy and board not in (Board.STAR, Board.BJ) and volume % 100 == sellable % 100:
        return None
    if board == Board.STAR:
        if volume < 200:
            return "科创板委托数量不得低于200股"
        return None
    if board == Board.BJ:
        if volume < 100:
            return "北交所委托数量不得低于100股"
        return None
    if volume % 100:
        return "委托数量必须为100股的整数倍" if is_buy else "卖出零股须一次性卖出"
    return None


def fill_lot(board: Board) -> int:
    """Granularity of partial fills: whole lots on boards that trade in lots, single shares else."""
    return 1 if board in (Board.STAR, Board.BJ) else 100


# rejection texts (status_msg of a 57 order / error_msg of on_order_error)
MSG_NOT_TRADING_TIME = "当前时间不允许委托"
MSG_NO_CANCEL_TIME = "当前时间不允许撤单"
MSG_PRICE_OUT_OF_LIMIT = "委托价格超出涨跌停价格范围"
MSG_PRICE_OFF_TICK = "委托价格不符合最小变动价位"
MSG_NO_CASH = "可用资金不足"
MSG_NO_SHARES = "可用股份不足"
MSG_SUSPENDED = "证券停牌，不允许交易"
MSG_MARKET_IN_AUCTION = "集合竞价阶段不接受市价委托"
MSG_PRICE_TYPE = "报价类型不合法"
MSG_NO_QUOTE = "无对手方行情，市价委托撤销"
MSG_CODE = "证券代码不存在"
MSG_ORDER_TYPE = "委托类型不合法"
MSG_ACCOUNT = "资金账号不存在或未登录"
MSG_EXPIRED = "收盘后未成交部分自动撤销"
MSG_CANCEL_FINAL = "委托已处于最终状态，不能撤单"
MSG_CANCEL_UNKNOWN = "委托不存在"
MSG_CANCEL_FILLED = "委托已全部成交，撤单失败"
MSG_NOT_SIMULATED_CREDIT = "信用账号的融资融券业务未模拟"

#: error_id of on_order_error / on_cancel_error for counter rejections (QMT reports order errors as
#: negative ids; the simulator uses one per kind so tests can tell them apart).
ERROR_ORDER = -61
ERROR_CANCEL = -62
