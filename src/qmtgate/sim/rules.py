"""A-share market rules the simulator enforces: boards, tick sizes, daily price limits.

Limits are integer arithmetic on prices expressed in ticks, rounded half up as the exchanges do, so
that every generated price is exactly on the grid and exactly within the limits.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

import numpy as np


class Board(IntEnum):
    SH_MAIN = 0
    STAR = 1
    SZ_MAIN = 2
    CHINEXT = 3
    BJ = 4
    ETF = 5
    INDEX = 6


#: Main-board ST/*ST limit goes from 5% to 10% on this date (SSE/SZSE rule change).
ST_LIMIT_CHANGE = dt.date(2026, 7, 6)
#: ChiNext moved from 10% to 20% limits with the registration-system reform.
CHINEXT_REFORM = dt.date(2020, 8, 24)
#: Registration-system IPOs have no limit during their first trading days (BJ: the first day only).
NO_LIMIT_DAYS = {
    Board.SH_MAIN: 5,
    Board.SZ_MAIN: 5,
    Board.STAR: 5,
    Board.CHINEXT: 5,
    Board.BJ: 1,
    Board.ETF: 0,
}

TICK_STOCK = 0.01
TICK_FUND = 0.001


def tick_size(board: Board) -> float:
    return TICK_FUND if board == Board.ETF else TICK_STOCK


def limit_percent(board: Board, is_st: bool, day: dt.date, session_index: int) -> int | None:
    """Daily limit in whole percent for a security on ``day``; None means no limit.

    ``session_index`` is the number of sessions since listing (0 on the listing day).
    """
    if board == Board.INDEX:
        return None
    if session_index < NO_LIMIT_DAYS.get(board, 0):
        return None
    if board == Board.BJ:
        return 30
    if board == Board.STAR:
        return 20
    if board == Board.CHINEXT:
        if day >= CHINEXT_REFORM:
            return 20
        return 5 if is_st else 10
    if board == Board.ETF:
        return 10
    if is_st:
        return 10 if day >= ST_LIMIT_CHANGE else 5
    return 10


def limit_ticks(pre_close_ticks: np.ndarray | int, percent: np.ndarray | int) -> tuple:
    """(down, up) limit prices in ticks: preClose x (1 -/+ p%), rounded half up to the tick."""
    # float64 is exact here: pre x (100 +/- p) is an integer below 2**53 and its quotient by 100 is
    # correctly rounded, so a true x.5 stays x.5 and nothing else comes within an ulp of .5
    pre = np.asarray(pre_close_ticks, dtype=np.float64)
    pct = np.asarray(percent, dtype=np.float64)
    up = np.floor(pre * (100.0 + pct) / 100.0 + 0.5).astype(np.int64)
    down = np.floor(pre * (100.0 - pct) / 100.0 + 0.5).astype(np.int64)
    return np.maximum(down, 1), up


def to_price(ticks: np.ndarray | int, tick: float) -> np.ndarray:
    """Ticks -> float price, rounded to the tick's decimals so equal prices compare equal."""
    decimals = 3 if tick < 0.01 else 2
    return np.round(np.asarray(ticks, dtype=np.float64) * tick, decimals)
