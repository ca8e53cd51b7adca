"""Scalar cleaning shared by every conversion: xtquant's "no value" markers (0, NaN, DBL_MAX, INT_MAX)
to None, lots to shares, epoch ms to Asia/Shanghai dates and ISO text."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

from qmtgate.vocab import (
    CST,
    CST_OFFSET_MS,
    LOT,
    MS_PER_DAY,
)

DBL_MAX = 1.7976931348623157e308


INT_MAX = 2_147_483_647


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


def lots_array_as_shares(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        out = values * LOT
        return np.where(np.isfinite(out), out, np.nan)
    return values.astype(np.int64, copy=False) * LOT


def as_json_list(values: np.ndarray) -> list[Any]:
    """numpy -> Python list with NaN as None (JSON null)."""
    if values.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in values.tolist()]
    return values.tolist()


def clean_price(value: Any) -> float | None:
    """A price in yuan, or None for xtquant's 0 / NaN / DBL_MAX "no price" markers."""
    if value.__class__ is float:  # the hot path: every tick has ~25 of these
        return value if 0.0 < value < DBL_MAX else None  # NaN and inf fail the comparison
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0 or value >= DBL_MAX:
        return None
    return float(value)


def clean_float(value: Any) -> float | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def lots_as_shares(value: Any) -> int | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) * LOT


def clean_ladder(prices: Any, volumes: Any) -> tuple[list[float | None], list[int]]:
    prices = list(prices or [])[:5]
    volumes = list(volumes or [])[:5]
    if len(prices) < 5:
        prices += [0.0] * (5 - len(prices))
    if len(volumes) < 5:
        volumes += [0] * (5 - len(volumes))
    out_p = [clean_price(p) for p in prices]
    out_v = [
        int(v) * LOT if p is not None and isinstance(v, int | float) and math.isfinite(v) else 0
        for p, v in zip(out_p, volumes, strict=True)
    ]
    return out_p, out_v


_ISO_MEMO: dict[int, str | None] = {}


def local_iso_cached(ts_ms: int | None) -> str | None:
    """``local_iso_one`` for the few distinct stamps of one burst (thousands of ticks share them)."""
    if ts_ms is None:
        return None
    out = _ISO_MEMO.get(ts_ms)
    if out is None:
        if len(_ISO_MEMO) > 4096:
            _ISO_MEMO.clear()
        out = _ISO_MEMO[ts_ms] = local_iso_one(ts_ms)
    return out


def iso_date(value: Any) -> str | None:
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


def clean_number(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value) or value >= DBL_MAX or value == INT_MAX:
        return None
    return value
