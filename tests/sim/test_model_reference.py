"""The simulated market's values, frozen: digests of what seed 0 produced before the cold-start work of
issue 19 item 5 (vectorising the daily history across codes, the day cache's segment files).

Speed work on the model must not change a single value: the daily chains (close, preClose, open,
volume, flags, limits; dividends), the quarterly knots, the 3 s day paths and the whole market's
snapshot at a time inside continuous trading are hashed here for a sample of instruments of every kind
and board, and compared with the digests the code produced when this test was written. A digest that
changes means the model changed: that is a decision (bump the day cache's format and rewrite these
digests in the same commit), never a side effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np

from qmtgate.sim.daily import DailyModel
from qmtgate.sim.market import SimMarket
from qmtgate.sim.xtquant import _env

#: Stocks of every board (main SH/SZ, ChiNext, STAR, BJ, an ST), indices and ETFs
CODES = [
    "600000.SH",
    "600519.SH",
    "000001.SZ",
    "002594.SZ",
    "300750.SZ",
    "688981.SH",
    "000300.SH",
    "399006.SZ",
    "510300.SH",
]
#: Sessions (calendar dates) whose knots and 3 s paths are hashed
DAYS = ["20150512", "20200824", "20240206", "20261119", "20261120"]


def _h(*arrays: object) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, np.ndarray):
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(json.dumps(a, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _extra_codes(m: SimMarket) -> list[str]:
    """A seeded sample of further stocks, and the first ST and BJ stocks of the universe."""
    u = m.universe
    stocks = [i for i in range(len(u)) if u.kind[i] == "stock"]
    rng = np.random.default_rng(5)
    picked = [u.instruments[int(i)].code for i in rng.choice(stocks, 12, replace=False)]
    st = next(u.instruments[i].code for i in stocks if u.is_st[i])
    bj = next(u.instruments[i].code for i in stocks if u.instruments[i].market == "BJ")
    return sorted({*picked, st, bj})


def chain_digests(m: SimMarket) -> dict[str, str]:
    daily: DailyModel = m.daily
    out = {}
    for code in CODES + _extra_codes(m):
        c = daily.chain(m.index_of(code))
        out[code] = _h(
            np.int64(c.start), c.close, c.pre, c.open, c.volume, c.flags, c.limit_pct,
            [vars(e) for e in c.dividends],
        )  # fmt: skip
    return out


def path_digests(m: SimMarket) -> dict[str, str]:
    out = {}
    for code in CODES:
        i = m.index_of(code)
        for day in DAYS:
            d = m.calendar.index_of(dt.datetime.strptime(day, "%Y%m%d").date())
            if not m.listed_by(i, d):
                continue
            k = m.daily.knots(i, int(m.daily.block_id[d]))
            p = m.day_path(i, d)
            out[f"{code} {day}"] = _h(
                np.int64(k.first), k.knots, k.seg_high, k.seg_low, k.seg_volume, k.seg_amount, k.close,
                p.emitted, p.price, p.volume, p.amount, p.trades,
            )  # fmt: skip
    return out


def snapshot_digest(env: _env.SimEnv) -> str:
    from xtquant import xtdata

    ticks = xtdata.get_full_tick(["SH", "SZ", "BJ"])
    return _h(len(ticks), ticks)


CHAINS: dict[str, str] = {
    "600000.SH": "c727d8c8848660c6",
    "600519.SH": "33c8a6bcc1c78c39",
    "000001.SZ": "fa82af54394118a2",
    "002594.SZ": "eb377df467b3e2f6",
    "300750.SZ": "e62153de71f9cc39",
    "688981.SH": "1c98cf54107209d4",
    "000300.SH": "72415b39634b00f3",
    "399006.SZ": "dd88a3c7a5fce16e",
    "510300.SH": "eab54016d21edffd",
    "000016.SZ": "a6886b6fe3899c42",
    "000285.SZ": "7b22aa7d9a041620",
    "000647.SZ": "2b62b3f457e535fd",
    "300050.SZ": "1cb46baf95237ee8",
    "300093.SZ": "21ba025803797346",
    "300646.SZ": "767aa837ace0063b",
    "301260.SZ": "817f7d5dc3ca16af",
    "301889.SZ": "fc4b97c530e98230",
    "430934.BJ": "12c47d14a5541b31",
    "600624.SH": "8a0b911ef8abd58e",
    "600860.SH": "2582c96d793e27a7",
    "603809.SH": "7b29a75404ae5b47",
    "603841.SH": "0ac41dd988082629",
    "920453.BJ": "fcb8cc2bb3df6621",
}
PATHS: dict[str, str] = {
    "600000.SH 20150512": "a2cc19cd0b07f735",
    "600000.SH 20200824": "19cf5e6417921e46",
    "600000.SH 20240206": "a6a92a6e8420164b",
    "600000.SH 20261119": "8d22bf44ccb01ef0",
    "600000.SH 20261120": "f47d2321f8c5b569",
    "600519.SH 20150512": "acdcfb56f5152272",
    "600519.SH 20200824": "c239a21dd2bbe969",
    "600519.SH 20240206": "aa706603c58dcf5f",
    "600519.SH 20261119": "24a00b8566957bb9",
    "600519.SH 20261120": "0ae740b34f20942b",
    "000001.SZ 20150512": "50e2f00878a89c48",
    "000001.SZ 20200824": "25da97438d30c5a2",
    "000001.SZ 20240206": "532280b02d4a5889",
    "000001.SZ 20261119": "b8951f7ea44d102b",
    "000001.SZ 20261120": "061fc0e1d75e4e54",
    "002594.SZ 20150512": "54fe6f5b9ff53a86",
    "002594.SZ 20200824": "3e6e0a5fc317ff6b",
    "002594.SZ 20240206": "c9a6f639185434c4",
    "002594.SZ 20261119": "967cffebd51caa3f",
    "002594.SZ 20261120": "f6da780feb943437",
    "300750.SZ 20200824": "5bce0e3c89ed8d9d",
    "300750.SZ 20240206": "e92483803d6ee282",
    "300750.SZ 20261119": "00ea1d13b0cde848",
    "300750.SZ 20261120": "b4b508359190e990",
    "688981.SH 20200824": "a3de3b99aad84550",
    "688981.SH 20240206": "26aa83b58ec3ff63",
    "688981.SH 20261119": "4662c90258421c8c",
    "688981.SH 20261120": "eb5b539ee3ec95f1",
    "000300.SH 20150512": "bc227c9b9222778c",
    "000300.SH 20200824": "cc717c3e219f2339",
    "000300.SH 20240206": "738e7c729fd100f6",
    "000300.SH 20261119": "63e4ba8d10854388",
    "000300.SH 20261120": "d2f9adc91a1a31bd",
    "399006.SZ 20150512": "699b8e11b53ef109",
    "399006.SZ 20200824": "59c10bfd7eaf0e18",
    "399006.SZ 20240206": "38fc6fd09451b6c4",
    "399006.SZ 20261119": "685b897bfb0eb55d",
    "399006.SZ 20261120": "362c9dd3e9d47724",
    "510300.SH 20150512": "ccf9dd4092aa0e40",
    "510300.SH 20200824": "22cb5954861bac7e",
    "510300.SH 20240206": "58ae56145e95e96a",
    "510300.SH 20261119": "53225ac58fdb5ea9",
    "510300.SH 20261120": "d714bc192b79454e",
}
#: Since the suspended stocks got their flat 09:15 tick: the 17 added rows are the only change (the other
#: rows alone still hash to the previous "1a2c633cbd346897"; see test_suspended_rows_are_the_only_addition)
SNAPSHOT = "e743b007971015a4"
#: The digest of the snapshot before the suspended stocks had ticks (the same rows without them)
SNAPSHOT_WITHOUT_SUSPENDED = "1a2c633cbd346897"


def test_daily_chains_are_unchanged(sim_env: _env.SimEnv) -> None:
    assert chain_digests(sim_env.market) == CHAINS


def test_knots_and_day_paths_are_unchanged(sim_env: _env.SimEnv) -> None:
    assert path_digests(sim_env.market) == PATHS


def test_whole_market_snapshot_is_unchanged(sim_env: _env.SimEnv) -> None:
    """The shared environment's get_full_tick of the whole market (10:00:00, 2026-11-20)."""
    assert snapshot_digest(sim_env) == SNAPSHOT


def test_suspended_rows_are_the_only_addition(sim_env: _env.SimEnv) -> None:
    """The suspended stocks' ticks were added to the whole-market snapshot; every other row is as it was."""
    from xtquant import xtdata

    ticks = xtdata.get_full_tick(["SH", "SZ", "BJ"])
    trading = {code: tick for code, tick in ticks.items() if tick["openInt"] != 1}
    assert 0 < len(ticks) - len(trading) < 100
    assert _h(len(trading), trading) == SNAPSHOT_WITHOUT_SUSPENDED
