"""Snapshots: an xtquant tick dict to a normalized row (:func:`tick_row`), the same column-wise for a
whole-market burst (:class:`TickColumns`, :func:`tick_rows`), and rows to Arrow."""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from qmtgate.source.convert.schemas import SNAPSHOT_ARROW_TYPES
from qmtgate.source.convert.values import (
    DBL_MAX,
    clean_float,
    clean_ladder,
    clean_price,
    local_iso_cached,
    lots_as_shares,
)
from qmtgate.vocab import (
    LOT,
)


def tick_row(code: str, tick: Mapping[str, Any]) -> dict[str, Any]:
    """One normalized snapshot row (JSON-ready: ``time`` is the ISO string) from a ``get_full_tick`` dict."""
    ts = tick.get("time")
    ts = int(ts) if isinstance(ts, int | float) and math.isfinite(ts) else None
    bid_p, bid_v = clean_ladder(tick.get("bidPrice"), tick.get("bidVol"))
    ask_p, ask_v = clean_ladder(tick.get("askPrice"), tick.get("askVol"))
    phase = tick.get("openInt")
    trades = tick.get("transactionNum")
    return {
        "code": code,
        "ts": ts,
        "time": local_iso_cached(ts),
        "last_price": clean_price(tick.get("lastPrice")),
        "open": clean_price(tick.get("open")),
        "high": clean_price(tick.get("high")),
        "low": clean_price(tick.get("low")),
        "pre_close": clean_price(tick.get("lastClose")),
        "volume": lots_as_shares(tick.get("volume")),
        "amount": clean_float(tick.get("amount")),
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
        cols["time"] = [local_iso_cached(v) for v in cols["ts"]]
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
        out["time"] = local_iso_cached(out["ts"])
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


def rows_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Snapshot rows -> Arrow table with the documented types (``time`` dropped: the encoder adds it)."""
    names = [c for c in columns if c != "time"]
    return pa.table(
        {name: pa.array([row.get(name) for row in rows], SNAPSHOT_ARROW_TYPES[name]) for name in names}
    )
