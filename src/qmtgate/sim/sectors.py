"""Sectors (板块) of the simulated market, named as a broker miniQMT names them.

Exchange-structure sectors exist from the start; index-constituent and SW level-1 industry sectors
appear only after ``download_sector_data()``, as on real QMT. Sectors of instrument classes the
simulator does not model (bonds, options, futures, B shares, Hong Kong) are not listed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from .market import SimMarket
from .rules import Board
from .universe import INDICES, SW1_INDUSTRIES, Instrument

#: Index code -> the constituent sector's name on QMT.
INDEX_SECTORS = {
    "000001.SH": "上证指数",
    "000016.SH": "上证50",
    "000300.SH": "沪深300",
    "000905.SH": "中证500",
    "000852.SH": "中证1000",
    "000688.SH": "科创50",
    "399001.SZ": "深证成指",
    "399006.SZ": "创业板指",
    "899050.BJ": "北证50",
}

_STRUCTURE = {
    "上证A股": lambda i: i.kind == "stock" and i.market == "SH",
    "深证A股": lambda i: i.kind == "stock" and i.market == "SZ",
    "京市A股": lambda i: i.kind == "stock" and i.market == "BJ",
    "沪深A股": lambda i: i.kind == "stock" and i.market in ("SH", "SZ"),
    "创业板": lambda i: i.board == Board.CHINEXT,
    "科创板": lambda i: i.board == Board.STAR,
    "沪市ETF": lambda i: i.kind == "etf" and i.market == "SH",
    "深市ETF": lambda i: i.kind == "etf" and i.market == "SZ",
    "沪深ETF": lambda i: i.kind == "etf",
    "沪市基金": lambda i: i.kind == "etf" and i.market == "SH",
    "深市基金": lambda i: i.kind == "etf" and i.market == "SZ",
    "沪深基金": lambda i: i.kind == "etf",
    "沪市指数": lambda i: i.kind == "index" and i.market == "SH",
    "深市指数": lambda i: i.kind == "index" and i.market == "SZ",
    "沪深指数": lambda i: i.kind == "index" and i.market in ("SH", "SZ"),
}
assert set(INDEX_SECTORS) == set(INDICES)


def sector_names(market: SimMarket, downloaded: bool) -> list[str]:
    names = list(_STRUCTURE)
    if downloaded:
        names += list(INDEX_SECTORS.values()) + [f"SW1{name}" for name in SW1_INDUSTRIES]
    return names


def members(market: SimMarket, name: str, downloaded: bool, at: dt.date | None = None) -> list[str]:
    """Codes in a sector (listed by ``at`` when given); [] for an unknown sector, as the SDK does."""
    insts: list[Instrument] = market.universe.instruments
    if name in _STRUCTURE:
        picked = [inst for inst in insts if _STRUCTURE[name](inst)]
    elif downloaded and name in INDEX_SECTORS.values():
        code = next(c for c, n in INDEX_SECTORS.items() if n == name)
        if at is None:
            picked = [insts[int(j)] for j in market.universe.index_members[code]]
        else:
            return [insts[int(j)].code for j in _constituents(market, code, at)]
    elif downloaded and name.startswith("SW1") and name[3:] in SW1_INDUSTRIES:
        picked = [inst for inst in insts if inst.kind == "stock" and inst.industry == name[3:]]
    else:
        return []
    if at is not None:
        picked = [inst for inst in picked if inst.list_date <= at]
    return [inst.code for inst in picked]


#: Index member rule (universe.INDICES) -> (candidate filter, first rank, last rank) by free-float cap.
_RULES: dict[str, tuple[Callable[[Instrument], bool], int, int | None]] = {
    "sh_all": (lambda i: i.market == "SH", 0, None),
    "sh_top50": (lambda i: i.market == "SH", 0, 50),
    "cap_1_300": (lambda i: i.market in ("SH", "SZ"), 0, 300),
    "cap_301_800": (lambda i: i.market in ("SH", "SZ"), 300, 800),
    "cap_801_1800": (lambda i: i.market in ("SH", "SZ"), 800, 1800),
    "star_top50": (lambda i: i.board == Board.STAR, 0, 50),
    "sz_top500": (lambda i: i.market == "SZ", 0, 500),
    "chinext_top100": (lambda i: i.board == Board.CHINEXT, 0, 100),
    "bj_top50": (lambda i: i.market == "BJ", 0, 50),
}


def _constituents(market: SimMarket, index_code: str, at: dt.date) -> np.ndarray:
    """An index's constituents on ``at``: its rule applied to the stocks listed by then, so that 沪深300
    has 300 members on any date, as the real constituent sector does (stocks listed later are replaced by
    the next in rank). Positions in the universe, ascending (code order)."""
    u = market.universe
    keep, first, last = _RULES[INDICES[index_code][1]]
    stocks = u.stock_idx
    insts = u.instruments
    listed = np.array([insts[int(j)].list_date <= at and keep(insts[int(j)]) for j in stocks], dtype=bool)
    candidates = stocks[listed]
    cap = u.float_shares[candidates] * u.anchor[candidates]
    ranked = candidates[np.argsort(-cap, kind="stable")]
    return np.sort(ranked[first:last])
