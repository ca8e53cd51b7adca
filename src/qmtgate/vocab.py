"""xtquant's vocabulary shared by the gateway and its clients: time zone, markets, periods, K-line fields.

A leaf module: it imports nothing from qmtgate (numpy only), so ``qmtgate.client`` and ``qmtgate.remote``
can use it without loading the server side (FastAPI, uvicorn, DuckDB, the simulator). That is what lets a
client-only install (``pip install "qmtgate[client]"``, README) work on a Mac. The server modules
(``source.convert``, ``source.base``) re-export these names, so either import path gives the same object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
