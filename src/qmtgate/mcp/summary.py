"""Small tables an assistant can read: K-line range summaries and quote rows with the derived fields people
ask for (change, change %, best bid/ask, the trading phase in words)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from qmtgate.mcp.gateway import plain
from qmtgate.vocab import PHASE_NAMES, is_halted, phase_name

#: xtquant ``openInt`` trading phases (docs/rest.md, snapshot ``phase``) in words, and the phases in which
#: orders can match: the shared table of :mod:`qmtgate.vocab`, so the assistant names them as the gateway does.
PHASES: dict[int, str] = PHASE_NAMES


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _first(levels: Any) -> Any:
    if levels is None:
        return None
    try:
        return levels[0] if len(levels) else None
    except TypeError:
        return None


def quote_row(row: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """One snapshot row (normalized fields) as the quote an assistant shows."""
    last, pre = _num(row.get("last_price")), _num(row.get("pre_close"))
    change = round(last - pre, 4) if last is not None and pre else None
    phase = row.get("phase")
    phase_int = int(phase) if _num(phase) is not None else None
    out = {
        "code": row.get("code"),
        "name": name,
        "time": plain(row.get("time")),
        "last_price": last,
        "change": change,
        "change_pct": round(change / pre * 100, 3) if change is not None and pre else None,
        "open": _num(row.get("open")),
        "high": _num(row.get("high")),
        "low": _num(row.get("low")),
        "pre_close": pre,
        "volume": plain(row.get("volume")),
        "amount": _num(row.get("amount")),
        "bid1": _num(_first(row.get("bid_price"))),
        "bid1_volume": plain(_first(row.get("bid_volume"))),
        "ask1": _num(_first(row.get("ask_price"))),
        "ask1_volume": plain(_first(row.get("ask_volume"))),
        "phase": phase_int,
        "phase_name": phase_name(phase_int),
    }
    if name is None:
        del out["name"]
    return out


def breadth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Advancers, decliners and turnover over quote rows (a sector's summary)."""
    changes = [r["change_pct"] for r in rows if r["change_pct"] is not None]
    return {
        "count": len(rows),
        "up": sum(1 for c in changes if c > 0),
        "down": sum(1 for c in changes if c < 0),
        "flat": sum(1 for c in changes if c == 0),
        "no_price": len(rows) - len(changes),
        # suspended or halted (their last price is the previous close, counted flat above)
        "halted": sum(1 for r in rows if is_halted(r.get("phase"))),
        "mean_change_pct": round(sum(changes) / len(changes), 3) if changes else None,
        "total_amount": round(sum(r["amount"] or 0.0 for r in rows), 2),
    }


def kline_summary(df: pd.DataFrame) -> dict[str, Any]:
    """first/last/high/low/return/volume over the bars of one code (oldest first).

    ``return_pct`` is the last close against the close before the first bar (its ``pre_close``), so a
    one-bar range gives that bar's own change; without ``pre_close`` it is against the first open.
    """
    if df.empty:
        return {"bars": 0}
    first, last = df.iloc[0], df.iloc[-1]
    hi, lo = df["high"].idxmax(), df["low"].idxmin()
    base = _num(first.get("pre_close")) or _num(first.get("open"))
    close = _num(last.get("close"))
    out: dict[str, Any] = {
        "bars": len(df),
        "first_time": plain(first["time"]),
        "last_time": plain(last["time"]),
        "first_open": _num(first.get("open")),
        "last_close": close,
        "high": _num(df.at[hi, "high"]),
        "high_time": plain(df.at[hi, "time"]),
        "low": _num(df.at[lo, "low"]),
        "low_time": plain(df.at[lo, "time"]),
        "return_pct": round((close / base - 1) * 100, 3) if close is not None and base else None,
        "total_volume": plain(df["volume"].sum()) if "volume" in df else None,
        "total_amount": _num(df["amount"].sum()) if "amount" in df else None,
    }
    return out
