"""Ticks (snapshots): one xtquant tick dict -> a normalized row, a burst -> numpy columns
(:class:`TickColumns`, converted once for every wire form), pushed bars -> rows.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from qmtgate.source.convert import arrays as arrow
from qmtgate.source.convert.schema import DBL_MAX, SNAPSHOT_FIELDS, _price, local_iso_one
from qmtgate.vocab import (
    LOT,
)

# -- snapshots -------------------------------------------------------------------------------------


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
_ROW_NAMES = ("code", "ts", "time", *SNAPSHOT_FIELDS)


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

    @classmethod
    def concat(cls, parts: Sequence[TickColumns]) -> TickColumns:
        """The columns of consecutive slices of one burst as one, equal to building the burst at once
        (every value is converted on its own, so slicing changes nothing): a caller that must not hold
        the event loop for a whole market's conversion builds it slice by slice (the hub's pump)."""
        if len(parts) == 1:
            return parts[0]
        values = {name: np.concatenate([p.values[name] for p in parts]) for name in parts[0].values}
        valid: dict[str, np.ndarray | None] = {}
        for name in parts[0].valid:
            masks = [p.valid[name] for p in parts]
            if all(m is None for m in masks):
                valid[name] = None
            else:  # None: every value of that slice valid
                valid[name] = np.concatenate(
                    [
                        np.ones(p.values[name].shape, bool) if m is None else m
                        for p, m in zip(parts, masks, strict=True)
                    ]
                )
        return cls(list(itertools.chain.from_iterable(p.codes for p in parts)), values, valid)

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
        arrays: dict[str, pa.Array] = {"code": arrow.strings(self.codes)}
        offsets = arrow.numeric(np.arange(0, 5 * n + 1, 5, dtype=np.int32))
        for name, kind in SNAPSHOT_ARROW_TYPES.items():
            if name in ("code", "time"):
                continue
            values, valid = self.values[name], self.valid[name]
            mask = None if valid is None or valid.all() else ~valid
            if pa.types.is_list(kind):
                flat = arrow.numeric(
                    values.reshape(-1), kind.value_type, mask=None if mask is None else mask.reshape(-1)
                )
                arrays[name] = pa.ListArray.from_arrays(offsets, flat, type=kind)
            else:
                arrays[name] = arrow.numeric(values, kind, mask=mask)
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
