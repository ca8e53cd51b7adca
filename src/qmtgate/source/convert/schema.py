"""The normalized schemas (columns and units, shown in the docs), the sentinels xtquant pads with, and
the time helpers every conversion shares.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from qmtgate.vocab import (
    CST,
    CST_OFFSET_MS,
    MS_PER_DAY,
    PHASE_TEXT,
)

DBL_MAX = 1.7976931348623157e308
INT_MAX = 2_147_483_647

# -- normalized schemas ------------------------------------------------------------------------------

#: Normalized K-line columns (``time`` is added by the encoder next to ``ts``), with units for the docs.
KLINE_SCHEMA: dict[str, str] = {
    "code": "security code, e.g. 600000.SH",
    "ts": "bar time, epoch milliseconds UTC; daily and longer bars: 00:00 Asia/Shanghai of the (last) "
    "session day; intraday bars: bar END time (09:31 = the 09:30-09:31 minute)",
    "open": "open price, yuan",
    "high": "high price, yuan",
    "low": "low price, yuan",
    "close": "close price, yuan (last price while the bar is forming)",
    "pre_close": "previous close, yuan",
    "volume": "volume, shares (xtquant's lots x 100)",
    "amount": "turnover, yuan",
    "suspend_flag": "0 normal, 1 suspended (bar carried forward), -1 resumed trading that day",
}
#: Normalized column -> xtquant K-line field.
KLINE_FROM_XT: dict[str, str] = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "pre_close": "preClose",
    "volume": "volume",
    "amount": "amount",
    "suspend_flag": "suspendFlag",
}
KLINE_FIELDS: tuple[str, ...] = tuple(KLINE_FROM_XT)

SNAPSHOT_SCHEMA: dict[str, str] = {
    "code": "security code",
    "ts": "snapshot time, epoch milliseconds UTC",
    "last_price": "last traded price, yuan (null before the first trade of the day)",
    "open": "today's open, yuan (null before the opening match)",
    "high": "today's high so far, yuan",
    "low": "today's low so far, yuan",
    "pre_close": "previous close, yuan",
    "volume": "cumulative volume today, shares",
    "amount": "cumulative turnover today, yuan",
    "trades": "cumulative number of trades today",
    "phase": f"trading phase code (xtquant openInt): {PHASE_TEXT}; 0 unknown",
    "bid_price": "bid prices, best first, 5 levels, yuan (null = no order at that level)",
    "bid_volume": "bid sizes per level, shares",
    "ask_price": "ask prices, best first, 5 levels, yuan",
    "ask_volume": "ask sizes per level, shares",
}
SNAPSHOT_FIELDS: tuple[str, ...] = tuple(k for k in SNAPSHOT_SCHEMA if k not in ("code", "ts"))

DIVIDEND_SCHEMA: dict[str, str] = {
    "code": "security code",
    "ts": "ex-date, epoch milliseconds UTC (00:00 Asia/Shanghai)",
    "ex_date": "ex-date, YYYY-MM-DD",
    "cash": "cash dividend per share before tax, yuan",
    "bonus_shares": "bonus shares per share (送股)",
    "transfer_shares": "shares transferred from reserves per share (转增)",
    "rights_shares": "rights-issue shares per share (配股)",
    "rights_price": "rights-issue price, yuan",
    "factor": "ex-rights adjustment factor (xtquant dr)",
}


# -- time ------------------------------------------------------------------------------------------


def local_iso_one(ts_ms: int | None) -> str | None:
    if ts_ms is None:
        return None
    return dt.datetime.fromtimestamp(ts_ms / 1000, CST).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def day_start_ms(day: dt.date) -> int:
    """Epoch ms of 00:00 Asia/Shanghai on ``day`` (how xtquant stamps daily bars and calendar days)."""
    return (day.toordinal() - 719_163) * MS_PER_DAY - CST_OFFSET_MS


def date_of_ms(ts_ms: int) -> dt.date:
    """The Asia/Shanghai calendar date of an epoch-ms instant."""
    return dt.date.fromordinal((int(ts_ms) + CST_OFFSET_MS) // MS_PER_DAY + 719_163)


def _price(value: Any) -> float | None:
    """A price in yuan, or None for xtquant's 0 / NaN / DBL_MAX "no price" markers."""
    if value.__class__ is float:  # the hot path: every tick has ~25 of these
        return value if 0.0 < value < DBL_MAX else None  # NaN and inf fail the comparison
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0 or value >= DBL_MAX:
        return None
    return float(value)
