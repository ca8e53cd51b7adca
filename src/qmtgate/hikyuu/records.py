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
row dicts); updates without columns (a tick that took the scalar path, a cache entry detached from its
burst) go through their rows. Codes are looked up in a table that keeps each code's encoded market and
six digits, so a burst costs no string work per record.
"""

from __future__ import annotations

import operator
import threading
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
MAX_CODE = 7  # bytes of a code the record layout holds (A-share codes have 6)

_burst_of = operator.attrgetter("burst")
_index_of = operator.attrgetter("index")


class CodeTable:
    """Every code seen, numbered: its market (``S4``), digits (``S8``), their length, and whether Hikyuu
    can place it (SH/SZ/BJ, at most :data:`MAX_CODE` digits). Grows, never shrinks (~6,000 codes)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._rows: list[tuple[bytes, bytes, bool]] = []
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def ids(self, codes: Sequence[str]) -> np.ndarray:
        get = self._ids.get
        found = list(map(get, codes))  # C speed: a burst's codes are known after the first one
        if None in found:
            with self._lock:
                for i, code in enumerate(codes):
                    if found[i] is None:
                        found[i] = self._add(code)
        return np.fromiter(found, dtype=np.int64, count=len(found))

    def _add(self, code: str) -> int:
        known = self._ids.get(code)
        if known is not None:
            return known
        digits, _, market = code.rpartition(".")
        raw = digits.encode("ascii", "replace")
        ok = market in HIKYUU_MARKETS and 0 < len(raw) <= MAX_CODE
        self._rows.append((market.encode("ascii", "replace")[:4], raw[:MAX_CODE], ok))
        self._arrays = None
        self._ids[code] = len(self._rows) - 1
        return len(self._rows) - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(market ``S4``, code ``S8``, code length, placeable) indexed by id."""
        arrays = self._arrays
        if arrays is None:
            with self._lock:
                rows = list(self._rows)
            arrays = (
                np.array([r[0] for r in rows], dtype="S4"),
                np.array([r[1] for r in rows], dtype="S8"),
                np.array([len(r[1]) for r in rows], dtype=np.int64),
                np.array([r[2] for r in rows], dtype=bool),
            )
            if len(rows) == len(self._rows):
                self._arrays = arrays
        return arrays


CODES = CodeTable()


@dataclass
class SpotColumns:
    """``n`` Spot records in Hikyuu's units, one numpy column per field (ladders ``(n, 5)``)."""

    market: np.ndarray  # S4
    code: np.ndarray  # S8, six digits without the market suffix
    code_len: np.ndarray
    datetime: np.ndarray  # S20: 'YYYY-MM-DD HH:MM:SS'
    #: (n, 7): yesterday_close, open, high, low, close, amount, volume (the schema's double slots 4..10)
    numbers: np.ndarray
    bid: np.ndarray
    bid_amount: np.ndarray
    ask: np.ndarray
    ask_amount: np.ndarray

    def __len__(self) -> int:
        return len(self.code)

    def slice(self, lo: int, hi: int) -> SpotColumns:
        return SpotColumns(*(getattr(self, f)[lo:hi] for f in self.__dataclass_fields__))

    def record(self, i: int) -> dict[str, Any]:
        """Record ``i`` as a dict of the schema's field names (self-check, logs)."""
        n = self.numbers[i].tolist()
        return {
            "market": self.market[i].decode(),
            "code": self.code[i].decode(),
            "name": "",
            "datetime": self.datetime[i].decode(),
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

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]]) -> SpotColumns:
        """Columns of explicit records (the self-check's probe)."""
        codes = [f"{r['code']}.{r['market']}" for r in records]
        ids = CODES.ids(codes)
        market, code, code_len, _ = CODES.arrays()
        names = ("yesterday_close", "open", "high", "low", "close", "amount", "volume")
        return cls(
            market[ids],
            code[ids],
            code_len[ids],
            np.array([r["datetime"] for r in records], dtype="S20"),
            np.array([[r[k] for k in names] for r in records], dtype=np.float64).reshape(-1, 7),
            *(
                np.array([r[k] for r in records], dtype=np.float64).reshape(-1, LEVELS)
                for k in ("bid", "bid_amount", "ask", "ask_amount")
            ),
        )


def hikyuu_datetime(ts_ms: np.ndarray) -> np.ndarray:
    """Epoch ms -> ``b'YYYY-MM-DD HH:MM:SS'`` in China time (what ``str(hikyuu.Datetime)`` of a QMT tick
    gives, and a form ``Datetime(str)`` parses), converting each distinct stamp once."""
    if len(ts_ms) == 0:
        return np.zeros(0, dtype="S20")
    uniq, inverse = np.unique(np.asarray(ts_ms, dtype=np.int64), return_inverse=True)
    local = (uniq + CST_OFFSET_MS).astype("datetime64[ms]")
    text = np.char.replace(np.datetime_as_string(local, unit="s").astype("S19"), b"T", b" ")
    return text.astype("S20")[inverse.reshape(-1)]


def spot_columns(updates: Sequence[Any]) -> tuple[SpotColumns, int]:
    """The Spot records of tick ``updates`` (hub ``Update`` objects), in their order, and how many were
    left out (a code outside SH/SZ/BJ, a tick without a time: Hikyuu could not place it)."""
    n = len(updates)
    if n == 0:
        return _finish([]), 0
    first = updates[0].burst
    if first is not None and updates is first.updates:  # a whole burst (a whole-market live frame)
        return _finish([_from_burst(first.columns, None)])
    bursts = list(map(_burst_of, updates))
    if first is not None and bursts.count(first) == n:  # part of one burst (one market, a code list)
        idx = np.fromiter(map(_index_of, updates), dtype=np.int64, count=n)
        return _finish([_from_burst(first.columns, idx)])
    # many bursts (a whole-market snapshot of the cache) and rows: group, then back into input order
    groups: dict[int, tuple[Any, list[int], list[int]]] = {}
    loose: list[dict[str, Any]] = []
    loose_at: list[int] = []
    for at, (u, burst) in enumerate(zip(updates, bursts, strict=True)):
        if burst is None:
            loose.append(u.row)
            loose_at.append(at)
            continue
        entry = groups.get(id(burst))
        if entry is None:
            entry = groups[id(burst)] = (burst, [], [])
        entry[1].append(u.index)
        entry[2].append(at)
    parts = [_from_burst(b.columns, np.asarray(idx, dtype=np.int64)) for b, idx, _ in groups.values()]
    positions = [at for _, _, at in groups.values()]
    if loose:
        parts.append(_from_rows(loose))
        positions.append(loose_at)
    order = np.argsort(np.concatenate([np.asarray(p, dtype=np.int64) for p in positions]), kind="stable")
    merged = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}
    return _finish([merged])


def _from_burst(cols: Any, idx: np.ndarray | None) -> dict[str, np.ndarray]:
    def take(a: np.ndarray) -> np.ndarray:
        return a if idx is None else a[idx]

    values, valid = cols.values, cols.valid
    ids = CODES.ids(cols.codes if idx is None else [cols.codes[i] for i in idx.tolist()])
    n = len(ids)
    numbers = np.empty((n, 7), dtype=np.float64)
    for j, name in enumerate(PRICE_FIELDS):
        np.copyto(numbers[:, j], np.where(take(valid[name]), take(values[name]), 0.0))
    numbers[:, 5] = np.where(take(valid["amount"]), take(values["amount"]), 0.0) / AMOUNT_UNIT
    numbers[:, 6] = np.where(take(valid["volume"]), take(values["volume"]), 0) / LOT
    out = {"id": ids, "ts": take(values["ts"]), "ts_ok": take(valid["ts"]), "numbers": numbers}
    for side in ("bid", "ask"):
        out[side] = np.where(take(valid[f"{side}_price"]), take(values[f"{side}_price"]), 0.0)
        out[f"{side}_amount"] = take(values[f"{side}_volume"]) / LOT  # 0 where the level is empty
    return out


def _col(rows: list[dict[str, Any]], key: str, width: int = 0) -> np.ndarray:
    """``[row[key] ...]`` as float64 with None -> 0 (ladders ``(n, width)``, short ones padded)."""
    values: list[Any] = [r.get(key) for r in rows]
    if width:
        values = [
            (list(v[:width]) + [None] * (width - len(v[:width]))) if v is not None else [None] * width
            for v in values
        ]
    arr = np.array(values, dtype=np.float64)  # None -> nan
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


def _from_rows(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
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
        "id": CODES.ids([r["code"] for r in rows]),
        "ts": np.array([t if t is not None else 0 for t in ts], dtype=np.int64),
        "ts_ok": np.array([t is not None for t in ts], dtype=bool),
        "numbers": numbers,
        "bid": _col(rows, "bid_price", LEVELS),
        "bid_amount": _col(rows, "bid_volume", LEVELS) / LOT,
        "ask": _col(rows, "ask_price", LEVELS),
        "ask_amount": _col(rows, "ask_volume", LEVELS) / LOT,
    }


def _finish(parts: list[dict[str, np.ndarray]]) -> tuple[SpotColumns, int]:
    if not parts:
        empty = np.zeros((0, LEVELS))
        none = np.zeros(0, dtype=np.int64)
        return SpotColumns(
            np.zeros(0, "S4"),
            np.zeros(0, "S8"),
            none,
            np.zeros(0, "S20"),
            np.zeros((0, 7)),
            empty,
            empty,
            empty,
            empty,
        ), 0
    full = parts[0]
    market, code, code_len, placeable = CODES.arrays()
    ids = full["id"]
    keep = placeable[ids] & full["ts_ok"]
    left_out = int(len(keep) - np.count_nonzero(keep))
    if left_out:
        full = {k: v[keep] for k, v in full.items()}
        ids = full["id"]
    return (
        SpotColumns(
            market=market[ids],
            code=code[ids],
            code_len=code_len[ids],
            datetime=hikyuu_datetime(full["ts"]),
            numbers=full["numbers"],
            bid=full["bid"],
            bid_amount=full["bid_amount"],
            ask=full["ask"],
            ask_amount=full["ask_amount"],
        ),
        left_out,
    )
