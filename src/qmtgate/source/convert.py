"""Pure conversions from xtquant's shapes and units to qmtgate's normalized schema.

xtquant speaks camelCase, stamps everything in epoch milliseconds, reports volume in 手 (lots of 100 shares)
and pads missing values with 0 or with DBL_MAX/INT_MAX sentinels. The normalized schema that the REST API
serves is snake_case, keeps ``ts`` in epoch ms (UTC) next to exchange-local time (Asia/Shanghai), reports
volume in **shares** and amounts in **yuan**, and uses null for anything missing (a 0 price would be a
real-looking lie). Everything here is a pure function of its arguments: no I/O, no clocks, no xtdata.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from qmtgate.codes import classify

# The client-side vocabulary lives in the leaf module qmtgate.vocab (so qmtgate.client loads no server code);
# re-exported here, where the server modules have always imported it from.
from qmtgate.vocab import (  # noqa: F401
    CST,
    CST_OFFSET_MS,
    DAILY_PERIODS,
    LOT,
    MS_PER_DAY,
    XT_KLINE_DTYPES,
    XT_KLINE_FIELDS,
    labels,
    local_iso,
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


# -- bars ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bars:
    """K-line bars of one code as xtquant columns (field name -> 1-D array), sorted by ``time``.

    Instances are shared between requests and caches: never mutate the arrays.
    """

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["time"])

    @property
    def time(self) -> np.ndarray:
        return self.columns["time"]

    @classmethod
    def empty(cls) -> Bars:
        return _EMPTY

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | None) -> Bars:
        """From one ``get_market_data_ex`` DataFrame (all fields); missing columns become NaN/0."""
        if frame is None or len(frame) == 0 or "time" not in frame.columns:
            return cls.empty()
        columns: dict[str, np.ndarray] = {}
        for name, dtype in XT_KLINE_DTYPES.items():
            if name in frame.columns:
                values = frame[name].to_numpy()
                if values.dtype != dtype and not (
                    np.issubdtype(dtype, np.integer) and values.dtype.kind == "f"
                ):
                    values = values.astype(dtype)
            else:
                values = np.full(len(frame), np.nan if np.dtype(dtype).kind == "f" else 0, dtype)
            columns[name] = values
        return cls(columns)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Bars:
        rows = list(records)
        if not rows:
            return cls.empty()
        return cls(
            {
                name: np.asarray([row.get(name, np.nan) for row in rows], dtype=dtype)
                for name, dtype in XT_KLINE_DTYPES.items()
            }
        )

    def take(self, selection: np.ndarray | slice) -> Bars:
        return Bars({name: values[selection] for name, values in self.columns.items()})

    def between(self, lo_ms: int | None, hi_ms: int | None) -> Bars:
        """Bars with ``lo_ms <= time <= hi_ms`` (None = open end)."""
        t = self.time
        lo = 0 if lo_ms is None else int(np.searchsorted(t, lo_ms, side="left"))
        hi = len(t) if hi_ms is None else int(np.searchsorted(t, hi_ms, side="right"))
        return self if (lo, hi) == (0, len(t)) else self.take(slice(lo, hi))

    def tail(self, count: int | None) -> Bars:
        if count is None or count < 0 or len(self) <= count:
            return self
        return self.take(slice(len(self) - count, None))

    @staticmethod
    def concat(parts: Sequence[Bars]) -> Bars:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Bars.empty()
        if len(parts) == 1:
            return parts[0]
        return Bars({name: np.concatenate([p.columns[name] for p in parts]) for name in XT_KLINE_DTYPES})

    def records(self, fields: Sequence[str], daily: bool, label: str = "date") -> list[dict[str, Any]]:
        """xtquant-style records (field names and units as xtquant) with the index label under ``label``."""
        names = [f for f in fields if f in self.columns]
        cols = [_plain(self.columns[f]) for f in names]
        keys = [label, *names]
        return [
            dict(zip(keys, row, strict=True)) for row in zip(labels(self.time, daily), *cols, strict=True)
        ]


_EMPTY = Bars({name: np.zeros(0, dtype) for name, dtype in XT_KLINE_DTYPES.items()})


def tail_parts(parts: Sequence[Bars], count: int | None) -> list[Bars]:
    """The last ``count`` bars of consecutive parts, still as parts (no copy of whole series)."""
    parts = [p for p in parts if len(p)]
    if count is None or count < 0:
        return parts
    out: list[Bars] = []
    need = count
    for part in reversed(parts):
        if need <= 0:
            break
        out.append(part.tail(need))
        need -= len(part)
    return out[::-1]


def bars_from_ticks(ticks: Mapping[str, Mapping[str, Any] | None], day: dt.date) -> dict[str, Bars]:
    """Today's daily bar per code, built from live L1 snapshots (what QMT's forming 1d bar holds).

    A code gets an empty Bars when its snapshot is from another day or nothing has traded yet (no bar
    exists then). Built column-wise for all codes at once; each code's Bars are views into shared arrays.
    """
    start = day_start_ms(day)
    codes: list[str] = []
    rows: list[Mapping[str, Any]] = []
    for code, tick in ticks.items():
        if tick is None:
            continue
        ts = tick.get("time")
        traded = (tick.get("volume") or 0) > 0
        if isinstance(ts, int | float) and start <= ts < start + MS_PER_DAY and traded:
            codes.append(code)
            rows.append(tick)
    out = {code: Bars.empty() for code in ticks}
    if not rows:
        return out
    n = len(rows)

    def col(key: str, dtype: Any, default: Any = np.nan) -> np.ndarray:
        return np.asarray([row.get(key, default) for row in rows], dtype=dtype)

    columns = {
        "time": np.full(n, start, np.int64),
        "open": col("open", np.float64),
        "high": col("high", np.float64),
        "low": col("low", np.float64),
        "close": col("lastPrice", np.float64),
        "volume": col("volume", np.int64, 0),
        "amount": col("amount", np.float64),
        "settelementPrice": np.zeros(n, np.float64),
        "openInterest": col("openInt", np.int32, 0),
        "preClose": col("lastClose", np.float64),
        "suspendFlag": np.zeros(n, np.int32),
    }
    for i, code in enumerate(codes):
        out[code] = Bars({name: values[i : i + 1] for name, values in columns.items()})
    return out


def bars_table(bars: Mapping[str, Bars | Sequence[Bars]], fields: Sequence[str] = KLINE_FIELDS) -> pa.Table:
    """One long table over all codes: ``code, ts`` then ``fields`` in normalized names and units.

    A code's bars may be given as consecutive parts (complete sessions, then today's): they are
    concatenated once, column by column, for all codes together.
    """
    codes = list(bars)
    parts = {c: [bars[c]] if isinstance(bars[c], Bars) else list(bars[c]) for c in codes}  # type: ignore[list-item]
    lengths = np.array([sum(len(p) for p in parts[c]) for c in codes], dtype=np.int64)
    total = int(lengths.sum())
    flat = [p for c in codes for p in parts[c] if len(p)]

    def column(xt_name: str, dtype: Any) -> np.ndarray:
        if not total:
            return np.zeros(0, dtype)
        return np.concatenate([np.asarray(p.columns[xt_name]) for p in flat])

    arrays: dict[str, pa.Array] = {
        "code": pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(len(codes), dtype=np.int32), lengths)), pa.array(codes, pa.string())
        ),
        "ts": pa.array(column("time", np.int64), pa.int64()),
    }
    for name in fields:
        xt_name = KLINE_FROM_XT[name]
        values = column(xt_name, XT_KLINE_DTYPES[xt_name])
        if name == "volume":
            arrays[name] = pa.array(_lots_to_shares(values), pa.int64(), from_pandas=True)
        elif name == "suspend_flag":
            arrays[name] = pa.array(values.astype(np.int8, copy=False), pa.int8())
        else:
            arrays[name] = pa.array(values.astype(np.float64, copy=False), pa.float64(), from_pandas=True)
    return pa.table(arrays)


def _lots_to_shares(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        out = values * LOT
        return np.where(np.isfinite(out), out, np.nan)
    return values.astype(np.int64, copy=False) * LOT


def _plain(values: np.ndarray) -> list[Any]:
    """numpy -> Python list with NaN as None (JSON null)."""
    if values.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in values.tolist()]
    return values.tolist()


# -- snapshots -------------------------------------------------------------------------------------


def _price(value: Any) -> float | None:
    """A price in yuan, or None for xtquant's 0 / NaN / DBL_MAX "no price" markers."""
    if value.__class__ is float:  # the hot path: every tick has ~25 of these
        return value if 0.0 < value < DBL_MAX else None  # NaN and inf fail the comparison
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0 or value >= DBL_MAX:
        return None
    return float(value)


def _finite(value: Any) -> float | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _shares(value: Any) -> int | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) * LOT


def _ladder(prices: Any, volumes: Any) -> tuple[list[float | None], list[int]]:
    prices = list(prices or [])[:5]
    volumes = list(volumes or [])[:5]
    if len(prices) < 5:
        prices += [0.0] * (5 - len(prices))
    if len(volumes) < 5:
        volumes += [0] * (5 - len(volumes))
    out_p = [_price(p) for p in prices]
    out_v = [
        int(v) * LOT if p is not None and isinstance(v, int | float) and math.isfinite(v) else 0
        for p, v in zip(out_p, volumes, strict=True)
    ]
    return out_p, out_v


_ISO_MEMO: dict[int, str | None] = {}


def _local_iso_memo(ts_ms: int | None) -> str | None:
    """``local_iso_one`` for the few distinct stamps of one burst (thousands of ticks share them)."""
    if ts_ms is None:
        return None
    out = _ISO_MEMO.get(ts_ms)
    if out is None:
        if len(_ISO_MEMO) > 4096:
            _ISO_MEMO.clear()
        out = _ISO_MEMO[ts_ms] = local_iso_one(ts_ms)
    return out


def tick_row(code: str, tick: Mapping[str, Any]) -> dict[str, Any]:
    """One normalized snapshot row (JSON-ready: ``time`` is the ISO string) from a ``get_full_tick`` dict."""
    ts = tick.get("time")
    ts = int(ts) if isinstance(ts, int | float) and math.isfinite(ts) else None
    bid_p, bid_v = _ladder(tick.get("bidPrice"), tick.get("bidVol"))
    ask_p, ask_v = _ladder(tick.get("askPrice"), tick.get("askVol"))
    phase = tick.get("openInt")
    trades = tick.get("transactionNum")
    return {
        "code": code,
        "ts": ts,
        "time": _local_iso_memo(ts),
        "last_price": _price(tick.get("lastPrice")),
        "open": _price(tick.get("open")),
        "high": _price(tick.get("high")),
        "low": _price(tick.get("low")),
        "pre_close": _price(tick.get("lastClose")),
        "volume": _shares(tick.get("volume")),
        "amount": _finite(tick.get("amount")),
        "trades": int(trades) if isinstance(trades, int | float) and math.isfinite(trades) else None,
        "phase": int(phase) if isinstance(phase, int | float) and math.isfinite(phase) else None,
        "bid_price": bid_p,
        "bid_volume": bid_v,
        "ask_price": ask_p,
        "ask_volume": ask_v,
    }


_PRICE_FIELDS = (
    ("last_price", "lastPrice"),
    ("open", "open"),
    ("high", "high"),
    ("low", "low"),
    ("pre_close", "lastClose"),
)
_ROW_NAMES = (
    "code",
    "ts",
    "time",
    "last_price",
    "open",
    "high",
    "low",
    "pre_close",
    "volume",
    "amount",
    "trades",
    "phase",
    "bid_price",
    "bid_volume",
    "ask_price",
    "ask_volume",
)


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


def tick_rows(codes: Sequence[str], ticks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[tick_row(c, t) for c, t in zip(codes, ticks)]``, column-wise: ~2x faster on a whole-market burst.

    Ticks whose values are not plain numbers (or whose ladders are not 5 deep) send the batch through the
    scalar path, so the result is always exactly what :func:`tick_row` gives (property-tested).
    """
    if not ticks:
        return []
    try:
        return TickColumns.build(codes, ticks).rows()
    except (TypeError, ValueError):
        return [tick_row(c, t) for c, t in zip(codes, ticks, strict=True)]


def _values(ticks: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """``[t.get(key) for t in ticks]``, at C speed when every tick has the key (xtquant's always do)."""
    try:
        return list(map(operator.itemgetter(key), ticks))
    except KeyError:
        return [t.get(key) for t in ticks]


def _column(ticks: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    values = _values(ticks, key)
    arr = np.array(values)
    if arr.dtype.kind in "fiub":  # all numbers (bools count as 0/1, as in the scalar path)
        return arr.astype(np.float64)
    if arr.dtype.kind == "O" and all(v is None or isinstance(v, int | float) for v in values):
        return np.array(values, dtype=np.float64)  # None -> NaN -> None
    raise TypeError(key)  # strings and other objects: the scalar path decides


def _as_int64(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Valid values as int64 (truncated like ``int()``); out-of-range ones send the batch to the scalar path."""
    kept = np.where(valid, values, 0.0)
    if (np.abs(kept) >= 2.0**63).any():  # e.g. DBL_MAX "no value" markers: int() gives a huge Python int
        raise ValueError("beyond int64")
    return kept.astype(np.int64)


def _nullable(values: np.ndarray, valid: np.ndarray | None) -> list[Any]:
    if valid is None or valid.all():
        return values.tolist()
    out = values.astype(object)
    out[~valid] = None
    return out.tolist()


def _ladder_matrix(ticks: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    n = len(ticks)
    lists = _values(ticks, key)
    if set(map(len, lists)) != {5}:  # map(len) at C speed; a None ladder raises TypeError here
        raise ValueError("ladder depth")  # short or long ladders: the scalar path (None: TypeError)
    return np.fromiter(itertools.chain.from_iterable(lists), np.float64, 5 * n).reshape(n, 5)


@dataclass
class TickColumns:
    """A burst of raw xtquant ticks as normalized numpy columns (+ validity masks; invalid = null).

    One pass over the dicts serves both wire forms: :meth:`rows` (dicts for JSON and the caches) and
    :meth:`table` (Arrow, without creating a Python object per value). Units as :func:`tick_row`.
    """

    codes: list[str]
    values: dict[str, np.ndarray]
    valid: dict[str, np.ndarray | None]
    _table: pa.Table | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, codes: Sequence[str], ticks: Sequence[Mapping[str, Any]]) -> TickColumns:
        """Raises TypeError/ValueError when a value is not a plain number or a ladder not 5 deep."""
        values: dict[str, np.ndarray] = {}
        valid: dict[str, np.ndarray | None] = {}
        ts = _column(ticks, "time")
        valid["ts"] = np.isfinite(ts)
        values["ts"] = _as_int64(ts, valid["ts"])
        for name, key in _PRICE_FIELDS:
            v = _column(ticks, key)
            values[name], valid[name] = v, (v > 0) & (v < DBL_MAX)
        volume = _column(ticks, "volume")
        valid["volume"] = np.isfinite(volume)
        values["volume"] = _as_int64(volume, valid["volume"]) * LOT
        amount = _column(ticks, "amount")
        values["amount"], valid["amount"] = amount, np.isfinite(amount)
        for name, key in (("trades", "transactionNum"), ("phase", "openInt")):
            v = _column(ticks, key)
            valid[name] = np.isfinite(v)
            values[name] = _as_int64(v, valid[name])
        for side in ("bid", "ask"):
            prices = _ladder_matrix(ticks, f"{side}Price")
            volumes = _ladder_matrix(ticks, f"{side}Vol")
            ok = (prices > 0) & (prices < DBL_MAX)
            values[f"{side}_price"], valid[f"{side}_price"] = prices, ok
            values[f"{side}_volume"] = _as_int64(volumes, ok & np.isfinite(volumes)) * LOT
            valid[f"{side}_volume"] = None
        return cls(list(codes), values, valid)

    def rows(self) -> list[dict[str, Any]]:
        cols: dict[str, list[Any]] = {"code": self.codes}
        for name, values in self.values.items():
            cols[name] = _nullable(values, self.valid[name])
        cols["time"] = [_local_iso_memo(v) for v in cols["ts"]]
        columns = [cols[name] for name in _ROW_NAMES]
        return [dict(zip(_ROW_NAMES, values, strict=True)) for values in zip(*columns, strict=True)]

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` alone, equal to ``rows()[i]``: for a client that wants a few codes of a burst."""
        out: dict[str, Any] = {"code": self.codes[i]}
        for name, values in self.values.items():
            valid = self.valid[name]
            if values.ndim == 1:
                out[name] = values.item(i) if valid is None or valid[i] else None
                continue
            value = values[i].tolist()  # a ladder: validity per level
            if valid is not None:
                oks = valid[i].tolist()
                if not all(oks):
                    value = [v if ok else None for v, ok in zip(value, oks, strict=True)]
            out[name] = value
        out["time"] = _local_iso_memo(out["ts"])
        return {name: out[name] for name in _ROW_NAMES}

    def table(self) -> pa.Table:
        """The columns of :data:`SNAPSHOT_ARROW_TYPES` (without ``time``), nulls where invalid.

        Built once: Arrow stream frames and the recorder both take a burst's table."""
        if self._table is None:
            self._table = self._build_table()
        return self._table

    def _build_table(self) -> pa.Table:
        n = len(self.codes)
        arrays: dict[str, pa.Array] = {"code": pa.array(self.codes, pa.string())}
        offsets = pa.array(np.arange(0, 5 * n + 1, 5, dtype=np.int32))
        for name, kind in SNAPSHOT_ARROW_TYPES.items():
            if name in ("code", "time"):
                continue
            values, valid = self.values[name], self.valid[name]
            mask = None if valid is None or valid.all() else ~valid
            if pa.types.is_list(kind):
                flat = pa.array(
                    values.reshape(-1), kind.value_type, mask=None if mask is None else mask.reshape(-1)
                )
                arrays[name] = pa.ListArray.from_arrays(offsets, flat, type=kind)
            else:
                arrays[name] = pa.array(values, kind, mask=mask)
        return pa.table(arrays)


def bar_row(code: str, period: str, bar: Mapping[str, Any], forming: bool) -> dict[str, Any]:
    """One normalized K-line row from a pushed xtquant bar dict (subscribe_quote): volume in shares,
    amount in yuan, ``ts`` = bar end (epoch ms UTC; daily bars: 00:00 Asia/Shanghai of the session),
    ``forming`` while the bar is still open."""
    ts = bar.get("time")
    ts = int(ts) if isinstance(ts, int | float) and math.isfinite(ts) else None
    return {
        "code": code,
        "period": period,
        "ts": ts,
        "time": local_iso_one(ts),
        "open": _price(bar.get("open")),
        "high": _price(bar.get("high")),
        "low": _price(bar.get("low")),
        "close": _price(bar.get("close")),
        "volume": _shares(bar.get("volume")),
        "amount": _finite(bar.get("amount")),
        "pre_close": _price(bar.get("preClose")),
        "forming": forming,
    }


def rows_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Snapshot rows -> Arrow table with the documented types (``time`` dropped: the encoder adds it)."""
    names = [c for c in columns if c != "time"]
    return pa.table(
        {name: pa.array([row.get(name) for row in rows], SNAPSHOT_ARROW_TYPES[name]) for name in names}
    )


# -- reference data --------------------------------------------------------------------------------


def _yyyymmdd(value: Any) -> str | None:
    """'YYYYMMDD' (str or int) -> 'YYYY-MM-DD'; 0, 99999999 and xtquant's 1970010x specials -> None."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) != 8 or not text.isdigit() or text.startswith(("1970", "0", "9999")):
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value) or value >= DBL_MAX or value == INT_MAX:
        return None
    return value


def detail_row(code: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """Normalized instrument detail from ``get_instrument_detail`` (sentinels and specials -> null)."""
    status = detail.get("InstrumentStatus")
    float_volume = detail.get("FloatVolume", detail.get("FloatVolumn"))
    total_volume = detail.get("TotalVolume", detail.get("TotalVolumn"))
    multiple = _number(detail.get("VolumeMultiple"))
    return {
        "code": code,
        "name": detail.get("InstrumentName") or None,
        "exchange": detail.get("ExchangeID") or code.partition(".")[2],
        "kind": classify(code),
        "list_date": _yyyymmdd(detail.get("OpenDate")),
        "delist_date": _yyyymmdd(detail.get("ExpireDate")),
        "trading_day": _yyyymmdd(detail.get("TradingDay")),
        "pre_close": _price(detail.get("PreClose")),
        "limit_up": _price(detail.get("UpStopPrice")),
        "limit_down": _price(detail.get("DownStopPrice")),
        "price_tick": _price(detail.get("PriceTick")),
        "float_shares": _number(float_volume),
        "total_shares": _number(total_volume),
        "volume_multiple": int(multiple) if multiple is not None else None,
        "suspended_days": int(status) if isinstance(status, int) and status > 0 else 0,
        "resumed_today": status == -1,
    }


DETAIL_SCHEMA: dict[str, str] = {
    "code": "security code",
    "name": "short name",
    "exchange": "SH, SZ or BJ",
    "kind": "stock, etf, fund, index, bond or other (by the exchange's numbering plan)",
    "list_date": "listing date YYYY-MM-DD (null if unknown)",
    "delist_date": "delisting date YYYY-MM-DD (null while listed)",
    "trading_day": "the trading day these values belong to, YYYY-MM-DD",
    "pre_close": "previous close, yuan",
    "limit_up": "today's limit-up price, yuan (null: no limit)",
    "limit_down": "today's limit-down price, yuan (null: no limit)",
    "price_tick": "minimum price step, yuan",
    "float_shares": "free-float shares",
    "total_shares": "total shares",
    "volume_multiple": "contract multiplier (1 for stocks)",
    "suspended_days": "0 trading; n > 0 suspended for n days",
    "resumed_today": "true on the day trading resumes after a suspension",
}


def dividend_table(code: str, frame: pd.DataFrame | None) -> pa.Table:
    """Normalized ex-rights events of one code from ``get_divid_factors``."""
    names = list(DIVIDEND_SCHEMA)
    if frame is None or len(frame) == 0 or "time" not in frame.columns:
        return pa.table({name: pa.array([], _DIVIDEND_TYPES[name]) for name in names})
    ts = pd.to_numeric(frame["time"], errors="coerce").to_numpy(dtype="float64")
    ts_int = np.where(np.isfinite(ts), ts, 0).astype(np.int64)

    def num(name: str) -> pa.Array:
        values = (
            pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
            if name in frame.columns
            else np.full(len(frame), np.nan)
        )
        return pa.array(values, pa.float64(), from_pandas=True)

    order = np.argsort(ts_int, kind="stable")
    table = pa.table(
        {
            "code": pa.array([code] * len(frame), pa.string()),
            "ts": pa.array(ts_int, pa.int64()),
            "ex_date": pa.array([date_of_ms(t).isoformat() for t in ts_int.tolist()], pa.string()),
            "cash": num("interest"),
            "bonus_shares": num("stockBonus"),
            "transfer_shares": num("stockGift"),
            "rights_shares": num("allotNum"),
            "rights_price": num("allotPrice"),
            "factor": num("dr"),
        }
    )
    return table.take(pa.array(order))


_DIVIDEND_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "ts": pa.int64(),
    "ex_date": pa.string(),
    **{name: pa.float64() for name in ("cash", "bonus_shares", "transfer_shares", "rights_shares")},
    "rights_price": pa.float64(),
    "factor": pa.float64(),
}


def dates_table(days: Sequence[dt.date]) -> pa.Table:
    """Calendar days as ``date`` (YYYY-MM-DD) and ``ts`` (00:00 Asia/Shanghai, epoch ms)."""
    return pa.table(
        {
            "date": pa.array([d.isoformat() for d in days], pa.string()),
            "ts": pa.array([day_start_ms(d) for d in days], pa.int64()),
        }
    )
