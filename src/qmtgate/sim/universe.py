"""The simulated instrument universe: ~5,400 A-shares with realistic codes per board, the major
indices (computed from member prices) and several hundred ETFs tracking them.

Generated deterministically from the seed. Static per-instrument model parameters (volatility,
liquidity, the price the path is anchored to) are drawn here too, so that the daily model is pure
array arithmetic over the universe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .rules import Board, tick_size

#: (prefix, board, how many, first listing, last listing) per code block, oldest codes listed earliest.
STOCK_BLOCKS: list[tuple[str, str, Board, int, dt.date, dt.date]] = [
    ("600", "SH", Board.SH_MAIN, 900, dt.date(1990, 12, 19), dt.date(2004, 12, 31)),
    ("601", "SH", Board.SH_MAIN, 210, dt.date(2006, 6, 1), dt.date(2015, 6, 30)),
    ("603", "SH", Board.SH_MAIN, 480, dt.date(2011, 1, 1), dt.date(2021, 6, 30)),
    ("605", "SH", Board.SH_MAIN, 110, dt.date(2020, 6, 1), dt.date(2025, 12, 31)),
    ("688", "SH", Board.STAR, 590, dt.date(2019, 7, 22), dt.date(2026, 10, 30)),
    ("000", "SZ", Board.SZ_MAIN, 460, dt.date(1991, 4, 3), dt.date(2000, 12, 31)),
    ("001", "SZ", Board.SZ_MAIN, 100, dt.date(2021, 1, 1), dt.date(2026, 10, 30)),
    ("002", "SZ", Board.SZ_MAIN, 850, dt.date(2004, 6, 25), dt.date(2021, 12, 31)),
    ("003", "SZ", Board.SZ_MAIN, 45, dt.date(2020, 9, 1), dt.date(2021, 12, 31)),
    ("300", "SZ", Board.CHINEXT, 960, dt.date(2009, 10, 30), dt.date(2020, 8, 20)),
    ("301", "SZ", Board.CHINEXT, 420, dt.date(2020, 8, 24), dt.date(2026, 10, 30)),
    ("920", "BJ", Board.BJ, 200, dt.date(2021, 11, 15), dt.date(2026, 10, 30)),
    ("83", "BJ", Board.BJ, 45, dt.date(2021, 11, 15), dt.date(2023, 12, 31)),
    ("87", "BJ", Board.BJ, 25, dt.date(2021, 11, 15), dt.date(2023, 12, 31)),
    ("43", "BJ", Board.BJ, 10, dt.date(2021, 11, 15), dt.date(2023, 12, 31)),
]

#: Stocks every user looks up first: real codes with their real names and a plausible price level.
KNOWN_STOCKS: dict[str, tuple[str, float, float]] = {
    # code: (name, anchor price, total shares in 100M)
    "600000.SH": ("浦发银行", 10.5, 293.5),
    "600036.SH": ("招商银行", 42.0, 252.2),
    "600519.SH": ("贵州茅台", 1480.0, 12.56),
    "601318.SH": ("中国平安", 55.0, 182.1),
    "601398.SH": ("工商银行", 7.2, 3564.1),
    "600030.SH": ("中信证券", 28.0, 148.2),
    "600276.SH": ("恒瑞医药", 58.0, 63.8),
    "600900.SH": ("长江电力", 28.5, 244.7),
    "601012.SH": ("隆基绿能", 18.0, 75.8),
    "600887.SH": ("伊利股份", 28.0, 63.7),
    "688981.SH": ("中芯国际", 95.0, 79.8),
    "688111.SH": ("金山办公", 300.0, 4.62),
    "000001.SZ": ("平安银行", 11.4, 194.1),
    "000002.SZ": ("万科A", 6.8, 119.3),
    "000333.SZ": ("美的集团", 75.0, 76.6),
    "000651.SZ": ("格力电器", 42.0, 56.0),
    "000858.SZ": ("五粮液", 125.0, 38.8),
    "002594.SZ": ("比亚迪", 330.0, 30.4),
    "002415.SZ": ("海康威视", 30.0, 92.3),
    "300750.SZ": ("宁德时代", 260.0, 45.4),
    "300059.SZ": ("东方财富", 24.0, 158.7),
    "300760.SZ": ("迈瑞医疗", 240.0, 12.1),
}

#: Index code -> (name, member rule, level at the end of the calendar).
INDICES: dict[str, tuple[str, str, float]] = {
    "000001.SH": ("上证指数", "sh_all", 3950.0),
    "000016.SH": ("上证50", "sh_top50", 2980.0),
    "000300.SH": ("沪深300", "cap_1_300", 4620.0),
    "000905.SH": ("中证500", "cap_301_800", 7050.0),
    "000852.SH": ("中证1000", "cap_801_1800", 7380.0),
    "000688.SH": ("科创50", "star_top50", 1320.0),
    "399001.SZ": ("深证成指", "sz_top500", 13200.0),
    "399006.SZ": ("创业板指", "chinext_top100", 3050.0),
    "899050.BJ": ("北证50", "bj_top50", 1480.0),
}

#: Well-known ETFs: code -> (name, tracked index).
KNOWN_ETFS: dict[str, tuple[str, str]] = {
    "510050.SH": ("上证50ETF", "000016.SH"),
    "510300.SH": ("沪深300ETF", "000300.SH"),
    "510500.SH": ("中证500ETF", "000905.SH"),
    "512100.SH": ("中证1000ETF", "000852.SH"),
    "588000.SH": ("科创50ETF", "000688.SH"),
    "510210.SH": ("上证指数ETF", "000001.SH"),
    "159915.SZ": ("创业板ETF", "399006.SZ"),
    "159919.SZ": ("沪深300ETF", "000300.SH"),
    "159901.SZ": ("深证100ETF", "399001.SZ"),
    "159922.SZ": ("中证500ETF", "000905.SH"),
}
ETF_BLOCKS: list[tuple[str, str, int]] = [
    ("510", "SH", 60),
    ("512", "SH", 80),
    ("513", "SH", 50),
    ("515", "SH", 60),
    ("588", "SH", 40),
    ("159", "SZ", 190),
]

SW1_INDUSTRIES = [
    "农林牧渔", "基础化工", "钢铁", "有色金属", "电子", "家用电器", "食品饮料", "纺织服饰", "轻工制造",
    "医药生物", "公用事业", "交通运输", "房地产", "商贸零售", "社会服务", "银行", "非银金融", "综合",
    "建筑材料", "建筑装饰", "电力设备", "机械设备", "国防军工", "汽车", "计算机", "传媒", "通信",
    "煤炭", "石油石化", "环保", "美容护理",
]  # fmt: skip

_NAME_HEAD = list("华中国东南西北新金恒泰宏瑞安信长天海盛通达永鑫光明远振兴联合科创汇丰荣顺康德")
_NAME_MID = list("源能电材智控锦润晶芯盈祥峰邦力宇鼎航博成利凯诚亚卓诺铭")
_NAME_TAIL = ["股份", "科技", "电子", "医药", "能源", "材料", "智能", "集团", "控股", "实业", "环境", "精密", "新材", "生物", "传媒", "电气"]  # fmt: skip


@dataclass
class Instrument:
    """Static facts about one security; prices in 元, shares in 股."""

    code: str
    name: str
    market: str
    board: Board
    kind: str  # "stock" | "index" | "etf"
    list_date: dt.date
    is_st: bool = False
    total_shares: float = 0.0
    float_shares: float = 0.0
    industry: str = ""
    tracks: str = ""  # ETFs: the index they track

    @property
    def symbol(self) -> str:
        return self.code.split(".")[0]

    @property
    def tick(self) -> float:
        return tick_size(self.board)


@dataclass
class Universe:
    """All instruments in a fixed order (stocks, then indices, then ETFs) plus per-instrument
    model parameters as arrays aligned with that order."""

    instruments: list[Instrument]
    index_members: dict[str, np.ndarray]  # index code -> member positions in `instruments`
    # model parameters (aligned arrays)
    sigma: np.ndarray = field(repr=False)  # daily idiosyncratic volatility (log return)
    beta: np.ndarray = field(repr=False)
    turnover: np.ndarray = field(repr=False)  # typical daily turnover as a fraction of float shares
    p_trade: np.ndarray = field(repr=False)  # probability of at least one trade in a 3 s interval
    anchor: np.ndarray = field(repr=False)  # price level the path is anchored to at the calendar's end
    dividend_yield: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        self.by_code: dict[str, int] = {inst.code: i for i, inst in enumerate(self.instruments)}
        self.kind = np.array([inst.kind for inst in self.instruments])
        self.board = np.array([int(inst.board) for inst in self.instruments], dtype=np.int8)
        self.tick = np.array([inst.tick for inst in self.instruments])
        self.is_st = np.array([inst.is_st for inst in self.instruments])
        self.list_ordinal = np.array(
            [inst.list_date.toordinal() for inst in self.instruments], dtype=np.int64
        )
        self.float_shares = np.array([inst.float_shares for inst in self.instruments])
        self.stock_idx = np.flatnonzero(self.kind == "stock")
        self.index_idx = np.flatnonzero(self.kind == "index")
        self.etf_idx = np.flatnonzero(self.kind == "etf")

    def __len__(self) -> int:
        return len(self.instruments)

    def snap_listing_dates(self, first_session_on_or_after: Callable[[dt.date], dt.date]) -> None:
        """Move every listing date to the first session on or after it (a listing is a session)."""
        for inst in self.instruments:
            inst.list_date = first_session_on_or_after(inst.list_date)
        self.list_ordinal = np.array(
            [inst.list_date.toordinal() for inst in self.instruments], dtype=np.int64
        )

    def _with_trade_probability(self) -> Universe:
        """Liquid names trade in nearly every 3 s interval, illiquid ones in a few."""
        lots_per_day = self.float_shares * self.turnover / 100.0
        p = np.clip(lots_per_day / (4740 * 6.0), 0.18, 0.97)
        p[self.index_idx] = 1.0  # an index is recomputed every snapshot
        self.p_trade = p
        return self

    def get(self, code: str) -> Instrument | None:
        i = self.by_code.get(code)
        return None if i is None else self.instruments[i]


def _name(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        name = (
            _NAME_HEAD[rng.integers(len(_NAME_HEAD))]
            + _NAME_MID[rng.integers(len(_NAME_MID))]
            + _NAME_TAIL[rng.integers(len(_NAME_TAIL))]
        )
        if name not in used:
            used.add(name)
            return name


def _random_date(rng: np.random.Generator, lo: dt.date, hi: dt.date) -> dt.date:
    return dt.date.fromordinal(int(rng.integers(lo.toordinal(), hi.toordinal() + 1)))


def build_universe(seed: int) -> Universe:
    """Build the universe for ``seed``; the same seed always gives the same instruments."""
    rng = np.random.default_rng([seed, 1])
    used_names: set[str] = set()
    stocks: list[Instrument] = []
    for prefix, market, board, count, first, last in STOCK_BLOCKS:
        width = 6 - len(prefix)
        pool = np.arange(1, 10**width)
        picks = np.sort(rng.choice(pool, size=count, replace=False))
        # listing dates increase with the code number within a block, as exchanges assign them
        dates = sorted(_random_date(rng, first, last) for _ in range(count))
        for number, listed in zip(picks, dates, strict=True):
            code = f"{prefix}{int(number):0{width}d}.{market}"
            stocks.append(Instrument(code, "", market, board, "stock", listed))
    have = {s.code for s in stocks}
    for code in KNOWN_STOCKS:
        if code not in have:
            market = code[-2:]
            board = next(b for p, m, b, *_ in STOCK_BLOCKS if code.startswith(p) and m == market)
            listed = next(f for p, m, _b, _c, f, _l in STOCK_BLOCKS if code.startswith(p) and m == market)
            stocks.append(Instrument(code, "", market, board, "stock", listed))
    # a handful of very recent listings (first days have no price limit)
    recent = [
        s for s in stocks if s.board in (Board.STAR, Board.CHINEXT, Board.BJ) and s.code not in KNOWN_STOCKS
    ]
    for k, inst in enumerate(rng.choice(len(recent), size=12, replace=False)):
        recent[int(inst)].list_date = dt.date(2026, 11, 2) + dt.timedelta(days=int(k * 1.5))
    stocks.sort(key=lambda s: s.code)

    n = len(stocks)
    log_total = rng.normal(np.log(8e8), 1.0, n)
    for i, inst in enumerate(stocks):
        known = KNOWN_STOCKS.get(inst.code)
        inst.name = known[0] if known else _name(rng, used_names)
        total = known[2] * 1e8 if known else float(np.clip(np.exp(log_total[i]), 4e7, 3e11))
        inst.total_shares = float(round(total, -2))
        inst.float_shares = float(round(total * rng.uniform(0.55, 1.0), -2))
        inst.industry = SW1_INDUSTRIES[int(rng.integers(len(SW1_INDUSTRIES)))]
        st_rate = 0.045 if inst.board in (Board.SH_MAIN, Board.SZ_MAIN) else 0.01
        if not known and inst.list_date.year < 2024 and rng.random() < st_rate:
            inst.is_st = True
            inst.name = ("*ST" if rng.random() < 0.5 else "ST") + inst.name[:2]

    anchor = np.exp(rng.normal(np.log(13.0), 0.75, n)).clip(2.0, 400.0)
    for i, inst in enumerate(stocks):
        if inst.code in KNOWN_STOCKS:
            anchor[i] = KNOWN_STOCKS[inst.code][1]
        if inst.is_st:
            anchor[i] = min(anchor[i], rng.uniform(1.5, 6.0))
    board = np.array([int(s.board) for s in stocks])
    growth = np.isin(board, [Board.STAR, Board.CHINEXT, Board.BJ])
    cap = np.array([s.total_shares for s in stocks]) * anchor
    big = cap > 1e11
    sigma = np.where(growth, rng.uniform(0.022, 0.036, n), rng.uniform(0.014, 0.026, n))
    sigma = np.where(big, sigma * 0.7, sigma)
    beta = rng.uniform(0.6, 1.4, n)
    turnover = np.exp(rng.normal(np.log(0.015), 0.6, n)).clip(0.002, 0.12)
    turnover = np.where(big, turnover * 0.35, turnover)
    dividend_yield = np.where(rng.random(n) < 0.65, rng.uniform(0.004, 0.045, n), 0.0)

    # indices: members by rule over the present-day market cap ranking
    float_cap = np.array([s.float_shares for s in stocks]) * anchor
    order = np.argsort(-float_cap, kind="stable")
    sh_sz = np.array([s.market in ("SH", "SZ") for s in stocks])
    ranked = order[sh_sz[order]]

    def top(mask: np.ndarray, k: int) -> np.ndarray:
        return np.sort(order[mask[order]][:k])

    rules = {
        "sh_all": np.flatnonzero(np.array([s.market == "SH" for s in stocks])),
        "sh_top50": top(np.array([s.market == "SH" for s in stocks]), 50),
        "cap_1_300": np.sort(ranked[:300]),
        "cap_301_800": np.sort(ranked[300:800]),
        "cap_801_1800": np.sort(ranked[800:1800]),
        "star_top50": top(board == Board.STAR, 50),
        "sz_top500": top(np.array([s.market == "SZ" for s in stocks]), 500),
        "chinext_top100": top(board == Board.CHINEXT, 100),
        "bj_top50": top(board == Board.BJ, 50),
    }
    indices: list[Instrument] = []
    index_members: dict[str, np.ndarray] = {}
    for code, (name, rule, _level) in INDICES.items():
        board_i = Board.INDEX
        indices.append(Instrument(code, name, code[-2:], board_i, "index", dt.date(2005, 1, 4)))
        index_members[code] = rules[rule]

    etfs: list[Instrument] = []
    index_codes = list(INDICES)
    for code, (name, tracks) in KNOWN_ETFS.items():
        etfs.append(Instrument(code, name, code[-2:], Board.ETF, "etf", dt.date(2013, 1, 4), tracks=tracks))
    have = set(KNOWN_ETFS)
    themes = ["红利", "医药", "芯片", "证券", "军工", "新能源", "消费", "银行", "科技", "光伏", "半导体", "黄金", "传媒", "游戏", "煤炭"]  # fmt: skip
    for prefix, market, count in ETF_BLOCKS:
        pool = np.arange(0, 1000)
        for number in np.sort(rng.choice(pool, size=count, replace=False)):
            code = f"{prefix}{int(number):03d}.{market}"
            if code in have:
                continue
            have.add(code)
            tracks = index_codes[int(rng.integers(len(index_codes)))]
            theme = themes[int(rng.integers(len(themes)))]
            listed = _random_date(rng, dt.date(2012, 5, 28), dt.date(2025, 12, 31))
            etfs.append(
                Instrument(
                    code,
                    f"{theme}ETF{int(number) % 100:02d}",
                    market,
                    Board.ETF,
                    "etf",
                    listed,
                    tracks=tracks,
                )
            )
    etfs.sort(key=lambda e: e.code)
    for e in etfs:
        e.total_shares = e.float_shares = float(round(np.exp(rng.normal(np.log(2e9), 1.0)), -2))

    instruments = stocks + indices + etfs
    m = len(indices) + len(etfs)
    index_level = np.array([INDICES[i.code][2] for i in indices])
    etf_anchor = rng.uniform(0.6, 5.0, len(etfs))
    return Universe(
        instruments=instruments,
        index_members=index_members,
        sigma=np.concatenate([sigma, np.zeros(len(indices)), rng.uniform(0.0005, 0.0015, len(etfs))]),
        beta=np.concatenate([beta, np.ones(m)]),
        turnover=np.concatenate([turnover, np.zeros(len(indices)), rng.uniform(0.005, 0.05, len(etfs))]),
        p_trade=np.zeros(len(instruments)),  # filled below
        anchor=np.concatenate([anchor, index_level, etf_anchor]),
        dividend_yield=np.concatenate([dividend_yield, np.zeros(m)]),
    )._with_trade_probability()
