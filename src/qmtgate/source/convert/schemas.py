"""The normalized columns the REST API serves, with their units (the OpenAPI descriptions and the docs
are built from these), and the Arrow types of snapshot rows."""

from __future__ import annotations

import pyarrow as pa

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
    "phase": "trading phase code (xtquant openInt): 11 pre-open, 12 call auction, 13 continuous, 14 break, "
    "15 closed, 18 closing auction, 1 suspended, 22/23 after-hours fixed price",
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


SNAPSHOT_ARROW_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "ts": pa.int64(),
    "time": pa.string(),
    "last_price": pa.float64(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "pre_close": pa.float64(),
    "volume": pa.int64(),
    "amount": pa.float64(),
    "trades": pa.int64(),
    "phase": pa.int32(),
    "bid_price": pa.list_(pa.float64()),
    "bid_volume": pa.list_(pa.int64()),
    "ask_price": pa.list_(pa.float64()),
    "ask_volume": pa.list_(pa.int64()),
}
