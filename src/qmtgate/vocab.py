"""xtquant's vocabulary shared by the gateway and its clients: time zone, markets, periods, K-line fields.

A leaf module: it imports nothing from qmtgate (numpy only), so ``qmtgate.client`` and ``qmtgate.remote``
can use it without loading the server side (FastAPI, uvicorn, DuckDB, the simulator). That is what lets a
client-only install (``pip install "qmtgate[client]"``, README) work on a Mac. The server modules
(``source.convert``, ``source.base``) re-export these names, so either import path gives the same object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: China Standard Time as a fixed offset (no DST since 1991; no tz database needed, also on Windows).
CST = dt.timezone(dt.timedelta(hours=8), "CST")
CST_OFFSET_MS = 8 * 3_600_000
MS_PER_DAY = 86_400_000

#: Market suffixes a code list may name instead of codes (a whole market's stream, ``subscribe_whole_quote``).
MARKETS: tuple[str, ...] = ("SH", "SZ", "BJ")

#: K-line periods xtdata accepts (exact lower-case strings; ``60m`` and ``1h`` are the same).
KLINE_PERIODS: tuple[str, ...] = (
    "1m",
    "5m",
    "15m",
    "30m",
    "60m",
    "1h",
    "1d",
    "1w",
    "1mon",
    "1q",
    "1hy",
    "1y",
)
#: Level-1 snapshot history.
TICK_PERIODS: tuple[str, ...] = ("tick",)

#: ``get_market_data_ex`` K-line fields, in xtquant's order, and their dtypes.
XT_KLINE_FIELDS: tuple[str, ...] = (
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "settelementPrice",
    "openInterest",
    "preClose",
    "suspendFlag",
)
XT_KLINE_DTYPES: dict[str, Any] = {
    "time": np.int64,
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "volume": np.int64,
    "amount": np.float64,
    "settelementPrice": np.float64,
    "openInterest": np.int32,
    "preClose": np.float64,
    "suspendFlag": np.int32,
}
#: Periods whose bars are labelled by day (``'YYYYMMDD'``) rather than by minute.
DAILY_PERIODS = frozenset({"1d", "1w", "1mon", "1q", "1hy", "1y"})


# -- time labels (moved here from source.convert, bodies unchanged) ----------------------------------


def local_iso(ts_ms: np.ndarray | Sequence[int]) -> np.ndarray:
    """Epoch ms -> ``'YYYY-MM-DDTHH:MM:SS+08:00'`` (Asia/Shanghai), vectorised; NaN/None -> None."""
    values = np.asarray(ts_ms, dtype="float64")
    out = np.full(values.shape, None, dtype=object)
    ok = np.isfinite(values)
    if ok.any():
        local = (values[ok].astype(np.int64) + CST_OFFSET_MS).astype("datetime64[ms]")
        text = np.datetime_as_string(local, unit="s")
        out[ok] = np.char.add(text.astype(str), "+08:00")
    return out


def labels(ts_ms: np.ndarray, daily: bool) -> list[str]:
    """xtquant index labels: ``'YYYYMMDD'`` for daily-type periods, else ``'YYYYMMDDHHMMSS'`` (CST).

    An empty range (a weekend, a holiday, a future range) gives ``[]``: numpy's ``char.replace`` cannot
    size its output for an empty array (``zero-size array to reduction operation``)."""
    if len(ts_ms) == 0:
        return []
    local = (np.asarray(ts_ms, dtype=np.int64) + CST_OFFSET_MS).astype("datetime64[ms]")
    text = np.datetime_as_string(local, unit="s")
    cleaned = np.char.replace(np.char.replace(np.char.replace(text.astype(str), "-", ""), ":", ""), "T", "")
    return [s[:8] for s in cleaned.tolist()] if daily else cleaned.tolist()


#: Shares per lot (手): xtquant's volumes are in lots, the normalized schema's in shares.
LOT = 100


# -- trading phases (stock status) ------------------------------------------------------------------------

#: xtquant's stock trading-phase / status codes: a stock's tick ``openInt`` (its K-line ``openInterest``),
#: the normalized snapshot's ``phase``. The table of xtquant-api.md §3.4 (the SDK's 证券状态 list, and
#: ``1`` suspended from the data dictionary); the names are what the gateway and its clients show.
PHASE_NAMES: dict[int, str] = {
    0: "unknown",
    1: "suspended",
    10: "unknown",
    11: "pre-open",
    12: "call auction",
    13: "continuous trading",
    14: "midday break",
    15: "closed",
    16: "volatility interruption",
    17: "temporary halt",
    18: "closing call auction",
    19: "intraday call auction",
    20: "halted until close",
    21: "status unavailable",
    22: "after-hours fixed price",
    23: "after-hours fixed price finished",
}
#: The table in one line, for schema descriptions ("1 suspended, 11 pre-open, ...").
PHASE_TEXT = ", ".join(f"{code} {name}" for code, name in PHASE_NAMES.items() if code not in (0, 10, 21))
#: Suspended (停牌) for the whole session: the tick stands at the previous close, no book, no volume.
PHASE_SUSPENDED = 1
#: Temporarily halted (临时停牌, P).
PHASE_TEMPORARY_HALT = 17
#: Halted until the close (暂停交易至闭市, N).
PHASE_HALTED_UNTIL_CLOSE = 20
#: Phases in which a stock does not trade though the market does: its ``lastPrice`` is not a price anyone
#: can trade at (a suspended stock's is yesterday's close), and its quote never changes.
HALTED_PHASES: frozenset[int] = frozenset({PHASE_SUSPENDED, PHASE_TEMPORARY_HALT, PHASE_HALTED_UNTIL_CLOSE})
#: Phases in which orders can match (the auctions and continuous trading).
OPEN_PHASES: frozenset[int] = frozenset({12, 13, 18, 19})


# -- market order types ------------------------------------------------------------------------------------

#: The stock market-order types of xttrader (xtconstant ``MARKET_*`` values, xtquant-api.md §7) by the name
#: the gateway's API uses, per exchange that accepts them (SSE and BSE share the SSE set).
MARKET_ORDER_TYPES: dict[str, dict[str, int]] = {
    "best5_cancel": {"SH": 42, "BJ": 42, "SZ": 47},  # best 5 levels, the rest cancelled (the default)
    "best5_limit": {"SH": 43, "BJ": 43},  # best 5 levels, the rest a limit order at the last fill
    "peer_best": {"SH": 44, "BJ": 44, "SZ": 44},  # at the opposite side's best price, the rest rests there
    "own_best": {"SH": 45, "BJ": 45, "SZ": 45},  # at the own side's best price (rests: passive)
    "ioc": {"SZ": 46},  # immediately at any level, the rest cancelled
    "fok": {"SZ": 48},  # all at once within 5 levels, or nothing
}
DEFAULT_MARKET_ORDER_TYPE = "best5_cancel"


# -- order statuses ---------------------------------------------------------------------------------------

#: xttrader's ``order_status`` codes (xtconstant ``ORDER_*``, xtquant-api.md §7), named for messages.
ORDER_STATUS_NAMES: dict[int, str] = {
    48: "unreported",
    49: "waiting to report",
    50: "reported",
    51: "reported, cancel pending",
    52: "part filled, cancel pending",
    53: "part filled, rest cancelled",
    54: "cancelled",
    55: "part filled",
    56: "filled",
    57: "junk (rejected)",
    255: "unknown",
}
#: Statuses after which an order fills no more and cannot be cancelled.
ORDER_FINAL_STATUSES: frozenset[int] = frozenset({53, 54, 56, 57})


def phase_name(phase: Any) -> str | None:
    """The name of a phase code (``"unknown"`` for a code outside the table; None for no code)."""
    if phase is None:
        return None
    try:
        return PHASE_NAMES.get(int(phase), "unknown")
    except (TypeError, ValueError, OverflowError):
        return "unknown"


def is_halted(phase: Any) -> bool:
    """Whether a phase code (an int, or None / anything else: False) is one of :data:`HALTED_PHASES`."""
    return isinstance(phase, int | np.integer) and not isinstance(phase, bool) and int(phase) in HALTED_PHASES


def xt_num(value: Any, default: float = 0.0) -> float:
    """xtquant sends 0 where the normalized row has null (no price yet, no order at a level)."""
    return default if value is None else value


def xt_lots(shares: Any) -> int:
    return 0 if shares is None else int(shares) // LOT


def xt_tick(row: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A normalized tick row (docs/streaming.md names, shares) -> the xtquant tick dict that
    ``get_full_tick`` answers and ``subscribe_quote(code, 'tick')`` pushes (lots). ``base`` (an xtquant tick
    of the code) supplies the keys the normalized row does not carry; the row's values win."""
    out: dict[str, Any] = dict(base) if base else {}
    volume = row.get("volume")
    out.update(
        {
            "time": row.get("ts"),
            "lastPrice": xt_num(row.get("last_price")),
            "open": xt_num(row.get("open")),
            "high": xt_num(row.get("high")),
            "low": xt_num(row.get("low")),
            "lastClose": xt_num(row.get("pre_close")),
            "amount": xt_num(row.get("amount")),
            "volume": xt_lots(volume),
            "pvolume": 0 if volume is None else int(volume),
            "openInt": row.get("phase") if row.get("phase") is not None else 0,
            "transactionNum": row.get("trades") if row.get("trades") is not None else 0,
            "askPrice": [xt_num(p) for p in row.get("ask_price") or ()],
            "bidPrice": [xt_num(p) for p in row.get("bid_price") or ()],
            "askVol": [xt_lots(v) for v in row.get("ask_volume") or ()],
            "bidVol": [xt_lots(v) for v in row.get("bid_volume") or ()],
        }
    )
    # the legacy status: the table's own 1 for a suspended stock (as QMT shows it), else unknown
    out.setdefault("stockStatus", PHASE_SUSPENDED if row.get("phase") == PHASE_SUSPENDED else 0)
    out.setdefault("settlementPrice", 0.0)
    out.setdefault("lastSettlementPrice", 0.0)
    return out
