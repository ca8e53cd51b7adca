"""Hub updates -> Hikyuu's Spot fields, column-wise and in Hikyuu's units.

Hikyuu's QMT collector (``hikyuu/fetcher/stock/zh_stock_a_qmt.py::parse_one_result_qmt``) fills a Spot
from a raw xtquant tick; the hub holds normalized ticks (docs/streaming.md: volume in shares, amount in
yuan, null for "no value"). The mapping back, field by field:

===============  ======================  =================================================================
Spot field       normalized tick         Hikyuu's unit
===============  ======================  =================================================================
market, code     ``code`` "600000.SH"    "SH", "600000"
name             --                      "" (the QMT path sends none)
datetime         ``ts`` (epoch ms)       "YYYY-MM-DD HH:MM:SS", China time
yesterday_close  ``pre_close``           yuan; null -> 0.0 (xtquant's "no value")
open/high/low    ``open/high/low``       yuan; null -> 0.0
close            ``last_price``          yuan; null -> 0.0
amount           ``amount`` (yuan)       yuan / 10,000 (what both of Hikyuu's producers send)
volume           ``volume`` (shares)     lots (手) = shares / 100, i.e. xtquant's ``volume``, not ``pvolume``
bid / ask        ``bid/ask_price``       yuan, 5 levels; null -> 0.0
bid/ask_amount   ``bid/ask_volume``      lots = shares / 100
===============  ======================  =================================================================

A burst's columns come straight from the hub's :class:`~qmtgate.source.convert.TickColumns` (numpy, no
row dicts); updates without columns (a tick that took the scalar path) go through their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qmtgate.vocab import CST_OFFSET_MS, LOT

#: Hikyuu's markets: the StockManager key is ``market + code``.
HIKYUU_MARKETS = frozenset({"SH", "SZ", "BJ"})
AMOUNT_UNIT = 10_000.0  # yuan per Hikyuu amount unit (万元)
PRICE_FIELDS = ("pre_close", "open", "high", "low", "last_price")
LEVELS = 5


@dataclass
class SpotColumns:
    """``n`` Spot records in Hikyuu's units, one numpy column per field (ladders ``(n, 5)``)."""

    markets: list[str]
    codes: list[str]  # six digits, without the market suffix
    datetimes: list[str]
    #: (n, 7): yesterday_close, open, high, low, close, amount, volume (the schema's double slots 4..10)
    numbers: np.ndarray
    bid: np.ndarray
    bid_amount: np.ndarray
    ask: np.ndarray
    ask_amount: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def slice(self, lo: int, hi: int) -> SpotColumns:
        return SpotColumns(
            self.markets[lo:hi],
            self.codes[lo:hi],
            self.datetimes[lo:hi],
            self.numbers[lo:hi],
            self.bid[lo:hi],
            self.bid_amount[lo:hi],
            self.ask[lo:hi],
            self.ask_amount[lo:hi],
        )

    def record(self, i: int) -> dict[str, Any]:
        """Record ``i`` as a dict of the schema's field names (tests, logs)."""
        n = self.numbers[i].tolist()
        return {
            "market": self.markets[i],
            "code": self.codes[i],
            "name": "",
            "datetime": self.datetimes[i],
            "yesterday_close": n[0],
            "open": n[1],
            "high": n[2],
            "low": n[3],
            "close": n[4],
            "amount": n[5],
            "volume": n[6],
            "bid": self.bid[i].tolist(),
            "bid_amount": self.bid_amount[i].tolist(),
            "ask": self.ask[i].tolist(),
            "ask_amount": self.ask_amount[i].tolist(),
        }


def hikyuu_datetime(ts_ms: np.ndarray) -> list[str]:
    """Epoch ms -> ``'YYYY-MM-DD HH:MM:SS'`` in China time (what ``str(hikyuu.Datetime)`` of a QMT tick
    gives, and a form ``Datetime(str)`` parses), converting each distinct stamp once."""
    if len(ts_ms) == 0:
        return []
    uniq, inverse = np.unique(np.asarray(ts_ms, dtype=np.int64), return_inverse=True)
    local = (uniq + CST_OFFSET_MS).astype("datetime64[ms]")
    text = np.char.replace(np.datetime_as_string(local, unit="s").astype(str), "T", " ")
    return text[inverse.reshape(-1)].tolist()


def spot_columns(updates: Sequence[Any]) -> tuple[SpotColumns, int]:
    """The Spot records of tick ``updates`` (hub ``Update`` objects) and how many were left out (a code
    outside SH/SZ/BJ, a tick without a time: Hikyuu could not place it)."""
    groups: dict[int, tuple[Any, list[int]]] = {}
    loose: list[dict[str, Any]] = []
    for u in updates:
        burst = u.burst
        if burst is None:
            loose.append(u.row)
            continue
        entry = groups.get(id(burst))
        if entry is None:
            entry = groups[id(burst)] = (burst, [])
        entry[1].append(u.index)
    parts = [_from_burst(burst.columns, np.asarray(idx, dtype=np.int64)) for burst, idx in groups.values()]
    if loose:
        parts.append(_from_rows(loose))
    return _finish(parts)


def _from_burst(cols: Any, idx: np.ndarray) -> dict[str, Any]:
    values, valid = cols.values, cols.valid
    n = len(idx)
    numbers = np.zeros((n, 7), dtype=np.float64)
    for j, name in enumerate(PRICE_FIELDS):
        v = values[name][idx]
        numbers[:, j] = np.where(valid[name][idx], v, 0.0)
    amount = values["amount"][idx]
    numbers[:, 5] = np.where(valid["amount"][idx], amount, 0.0) / AMOUNT_UNIT
    numbers[:, 6] = np.where(valid["volume"][idx], values["volume"][idx], 0) / LOT
    out: dict[str, Any] = {
        "code": [cols.codes[i] for i in idx.tolist()],
        "ts": values["ts"][idx],
        "ts_ok": valid["ts"][idx],
        "numbers": numbers,
    }
    for side in ("bid", "ask"):
        prices = values[f"{side}_price"][idx]
        ok = valid[f"{side}_price"][idx]
        out[side] = np.where(ok, prices, 0.0)
        out[f"{side}_amount"] = values[f"{side}_volume"][idx] / LOT  # 0 where the level is empty
    return out


def _col(rows: list[dict[str, Any]], key: str, width: int = 0) -> np.ndarray:
    """``[row[key] ...]`` as float64 with None -> 0 (ladders: ``(n, width)``, short ones padded)."""
    values = [r.get(key) for r in rows]
    if width:
        values = [
            (list(v[:width]) + [None] * (width - len(v)))
            if v is not None and len(v) != width
            else (v or [None] * width)
            for v in values
        ]
    arr = np.array(values, dtype=np.float64)  # None -> nan
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


def _from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows the hub keeps on their own (a tick that took the scalar path, a cache entry detached from its
    burst once the replay ring dropped it: every code that has not traded for a while)."""
    n = len(rows)
    numbers = np.zeros((n, 7), dtype=np.float64)
    for j, name in enumerate(PRICE_FIELDS):
        numbers[:, j] = _col(rows, name)
    numbers[:, 5] = _col(rows, "amount") / AMOUNT_UNIT
    numbers[:, 6] = _col(rows, "volume") / LOT
    ts = [r.get("ts") for r in rows]
    return {
        "code": [r["code"] for r in rows],
        "ts": np.array([t if t is not None else 0 for t in ts], dtype=np.int64),
        "ts_ok": np.array([t is not None for t in ts], dtype=bool),
        "numbers": numbers,
        "bid": _col(rows, "bid_price", LEVELS),
        "bid_amount": _col(rows, "bid_volume", LEVELS) / LOT,
        "ask": _col(rows, "ask_price", LEVELS),
        "ask_amount": _col(rows, "ask_volume", LEVELS) / LOT,
    }


def _finish(parts: list[dict[str, Any]]) -> tuple[SpotColumns, int]:
    if not parts:
        empty = np.zeros((0, LEVELS))
        return SpotColumns([], [], [], np.zeros((0, 7)), empty, empty, empty, empty), 0
    full = parts[0] if len(parts) == 1 else {k: _concat([p[k] for p in parts]) for k in parts[0]}
    split = [c.rpartition(".") for c in full["code"]]
    markets = [m for _, _, m in split]
    keep = np.asarray(full["ts_ok"], dtype=bool) & np.fromiter(
        (m in HIKYUU_MARKETS for m in markets), dtype=bool, count=len(markets)
    )
    left_out = int(len(keep) - keep.sum())
    if left_out:
        where = np.flatnonzero(keep)
        pick = where.tolist()
        markets = [markets[i] for i in pick]
        split = [split[i] for i in pick]
        full = {k: (v[where] if isinstance(v, np.ndarray) else v) for k, v in full.items()}
    return (
        SpotColumns(
            markets=markets,
            codes=[c for c, _, _ in split],
            datetimes=hikyuu_datetime(full["ts"]),
            numbers=full["numbers"],
            bid=full["bid"],
            bid_amount=full["bid_amount"],
            ask=full["ask"],
            ask_amount=full["ask_amount"],
        ),
        left_out,
    )


def _concat(values: list[Any]) -> Any:
    if isinstance(values[0], np.ndarray):
        return np.concatenate(values)
    out: list[Any] = []
    for v in values:
        out.extend(v)
    return out
