"""Rebuild xtquant's return shapes from the gateway's xtquant-shaped answers (pure functions).

These mirror what ``xtdata`` builds, so that a frame from the drop-in and one from xtquant (or the
simulator) compare equal: the same index labels (``YYYYMMDD`` / ``YYYYMMDDHHMMSS`` strings), the same
column order and dtypes, an empty ``DataFrame(columns=fields)`` for unknown codes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from qmtgate.vocab import CST, DAILY_PERIODS, XT_KLINE_DTYPES, XT_KLINE_FIELDS, labels

DIVID_FIELDS = ["time", "interest", "stockBonus", "stockGift", "allotNum", "allotPrice", "gugai", "dr"]


def xt_time(value: Any) -> str:
    """An xtquant time argument ('', 'YYYYMMDD[HHMMSS]', epoch ms, datetime) as the text the gateway takes.

    ``datetime`` values are read as Asia/Shanghai wall time, as on a QMT PC (whose zone is China time).
    """
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(CST).replace(tzinfo=None)
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, CST).strftime("%Y%m%d%H%M%S")
    return str(value).strip()


def split_by_code(table: pa.Table) -> dict[str, dict[str, np.ndarray]]:
    """A long ``code`` + fields table (rows grouped by code) -> {code: {field: array}}."""
    if table.num_rows == 0:
        return {}
    code_col = table.column("code").combine_chunks()
    if pa.types.is_dictionary(code_col.type):
        names = code_col.dictionary.to_pylist()
        idx = code_col.indices.to_numpy(zero_copy_only=False)
    else:
        names, idx = np.unique(np.asarray(code_col.to_pylist()), return_inverse=True)
        names = list(names)
    columns = {name: table.column(name).to_numpy() for name in table.column_names if name != "code"}
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    ends = np.r_[starts[1:], len(idx)]
    out: dict[str, dict[str, np.ndarray]] = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        out[str(names[int(idx[lo])])] = {name: values[lo:hi] for name, values in columns.items()}
    return out


def kline_frames(
    table: pa.Table,
    known: Sequence[str],
    stock_list: Sequence[str],
    field_list: Sequence[str],
    period: str,
) -> dict[str, pd.DataFrame]:
    """``get_market_data_ex``'s {code: DataFrame(times x fields)}; ``known`` = canonical codes the source
    knows (any other entry of ``stock_list`` gets xtquant's empty ``DataFrame(columns=fields)``)."""
    fields = list(field_list) if field_list else list(XT_KLINE_FIELDS)
    per_code = split_by_code(table)
    daily = period in DAILY_PERIODS
    known_set = set(known)
    out: dict[str, pd.DataFrame] = {}
    for code in stock_list:
        cols = per_code.get(code)
        if cols is None:
            if code not in known_set:
                out[code] = pd.DataFrame(columns=fields)
                continue
            cols = {name: np.zeros(0, dtype) for name, dtype in XT_KLINE_DTYPES.items()}
        frame = pd.DataFrame({f: cols[f] for f in fields if f in cols}, index=labels(cols["time"], daily))
        for f in fields:
            if f not in frame.columns:
                frame[f] = np.nan
        out[code] = frame[fields]
    return out


def field_major(
    frames: Mapping[str, pd.DataFrame], field_list: Sequence[str], stock_list: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """{code: DataFrame(times x fields)} -> ``get_market_data``'s {field: DataFrame(codes x times)}."""
    fields = list(field_list) if field_list else list(XT_KLINE_FIELDS)
    index_labels = sorted(set().union(*[set(f.index) for f in frames.values()])) if frames else []
    out = {}
    for f in fields:
        table = (
            pd.DataFrame({code: frame[f] for code, frame in frames.items()}).T if frames else pd.DataFrame()
        )
        out[f] = table.reindex(index=list(stock_list), columns=index_labels)
    return out


def divid_frame(table: pa.Table) -> pd.DataFrame:
    """``get_divid_factors``: index ``YYYYMMDD``, xtquant's columns (empty frame when none)."""
    if table.num_rows == 0:
        return pd.DataFrame(columns=DIVID_FIELDS)
    index = table.column("date").to_pylist()
    return pd.DataFrame({name: table.column(name).to_numpy() for name in DIVID_FIELDS}, index=index)[
        DIVID_FIELDS
    ]


def last_bar(frame: pd.DataFrame) -> dict[str, Any] | None:
    """The pushed payload item of a K-line subscription: the latest bar as plain Python values."""
    if frame is None or frame.empty:
        return None
    return {k: frame[k].iloc[-1].item() for k in frame.columns}
