"""K-line bars: xtquant columns kept as numpy arrays (:class:`Bars`), today's bar from ticks, and the
normalized Arrow table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from qmtgate.source.convert.schema import KLINE_FIELDS, KLINE_FROM_XT, day_start_ms
from qmtgate.vocab import (
    LOT,
    MS_PER_DAY,
    XT_KLINE_DTYPES,
    labels,
)

if TYPE_CHECKING:  # the frames come from xtquant, which imports pandas itself when it makes one
    import pandas as pd

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
