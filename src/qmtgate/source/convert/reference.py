"""Reference data: instrument details, dividends and calendars in the normalized schema."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from qmtgate.codes import classify
from qmtgate.source.convert.schema import DBL_MAX, DIVIDEND_SCHEMA, INT_MAX, _price, date_of_ms, day_start_ms

if TYPE_CHECKING:  # the frames come from xtquant, which imports pandas itself when it makes one
    import pandas as pd

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
    import pandas as pd

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
