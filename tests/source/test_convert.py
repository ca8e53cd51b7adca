"""xtquant shapes -> the normalized schema: units, time, sentinels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from qmtgate.source.convert import (
    Bars,
    bars_table,
    date_of_ms,
    day_start_ms,
    detail_row,
    dividend_table,
    labels,
    local_iso,
    tick_row,
)

DBL_MAX = 1.7976931348623157e308


def test_time_helpers() -> None:
    ms = day_start_ms(dt.date(2023, 10, 20))
    assert ms == 1697731200000 and ms % 86_400_000 == 57_600_000  # xtquant-api.md §3.2
    assert date_of_ms(ms) == dt.date(2023, 10, 20) and date_of_ms(ms - 1) == dt.date(2023, 10, 19)
    assert local_iso([ms, 1776063600000]).tolist() == [
        "2023-10-20T00:00:00+08:00",
        "2026-04-13T15:00:00+08:00",
    ]
    assert local_iso([np.nan]).tolist() == [None]
    assert labels(np.array([1776063600000]), daily=False) == ["20260413150000"]
    assert labels(np.array([ms]), daily=True) == ["20231020"]


def test_tick_row_units_and_nulls() -> None:
    row = tick_row(
        "000001.SZ",
        {
            "time": 1733118954000,
            "lastPrice": 11.39,
            "open": 11.39,
            "high": 11.4,
            "low": 11.31,
            "lastClose": 11.38,
            "amount": 862127800.0,
            "volume": 758613,
            "pvolume": 75861284,
            "openInt": 13,
            "transactionNum": 37062,
            "askPrice": [11.4, 11.41, 0, 0, 0],
            "bidPrice": [11.39, 11.38],
            "askVol": [10929, 12401, 0, 0, 0],
            "bidVol": [2429, 7127],
        },
    )
    assert row["volume"] == 75861300 and row["amount"] == 862127800.0  # shares, not lots; pvolume ignored
    assert row["ask_price"] == [11.4, 11.41, None, None, None] and row["ask_volume"] == [
        1092900,
        1240100,
        0,
        0,
        0,
    ]
    assert row["bid_price"] == [11.39, 11.38, None, None, None] and row["bid_volume"][:2] == [242900, 712700]
    assert row["time"] == "2024-12-02T13:55:54+08:00" and row["phase"] == 13 and row["trades"] == 37062
    empty = tick_row("600000.SH", {"time": 1733118954000, "lastPrice": 0, "open": 0, "volume": 0})
    assert empty["last_price"] is None and empty["open"] is None and empty["volume"] == 0


def test_bars_table_is_long_and_in_shares() -> None:
    frame = pd.DataFrame(
        {
            "time": [1735747200000, 1735833600000],
            "open": [7.97, np.nan],
            "high": [8.14, 7.89],
            "low": [7.72, 7.61],
            "close": [7.82, 7.63],
            "volume": [1146436, 1169715],
            "amount": [9.103592e08, 9.055436e08],
            "settelementPrice": [0.0, 0.0],
            "openInterest": [15, 15],
            "preClose": [8.0, 7.82],
            "suspendFlag": [0, 0],
        },
        index=["20250102", "20250103"],
    )
    table = bars_table({"002600.SZ": Bars.from_frame(frame), "600000.SH": Bars.empty()})
    assert table.column_names == [
        "code", "ts", "open", "high", "low", "close", "pre_close", "volume", "amount", "suspend_flag",
    ]  # fmt: skip
    assert table.column("volume").to_pylist() == [114643600, 116971500]
    assert table.column("open").to_pylist() == [7.97, None]  # NaN -> null
    assert table.column("code").to_pylist() == ["002600.SZ", "002600.SZ"]
    assert pa.types.is_dictionary(table.schema.field("code").type)
    records = Bars.from_frame(frame).records(["open", "volume"], daily=True)
    assert records == [
        {"date": "20250102", "open": 7.97, "volume": 1146436},
        {"date": "20250103", "open": None, "volume": 1169715},
    ]


def test_detail_row_drops_sentinels() -> None:
    row = detail_row(
        "000001.SZ",
        {
            "InstrumentName": "平安银行",
            "ExchangeID": "SZ",
            "OpenDate": "19910403",
            "ExpireDate": 99999999,
            "TradingDay": "20250612",
            "PreClose": 11.02,
            "UpStopPrice": 12.12,
            "DownStopPrice": 9.92,
            "FloatVolume": 19405546950.0,
            "PriceTick": 0.01,
            "LongMarginRatio": DBL_MAX,
            "VolumeMultiple": 1,
            "InstrumentStatus": 0,
        },
    )
    assert row["list_date"] == "1991-04-03" and row["delist_date"] is None and row["kind"] == "stock"
    assert row["limit_up"] == 12.12 and row["total_shares"] is None and row["suspended_days"] == 0
    assert detail_row("600000.SH", {"OpenDate": "19700101", "InstrumentStatus": 3})["list_date"] is None
    assert detail_row("600000.SH", {"InstrumentStatus": 3})["suspended_days"] == 3


def test_dividend_table() -> None:
    frame = pd.DataFrame(
        {"20240719": {"time": 1721318400000.0, "interest": 0.321, "stockBonus": 0.0, "stockGift": 0.0,
                      "allotNum": 0.0, "allotPrice": 0.0, "gugai": 0, "dr": 1.0334}}
    ).T  # fmt: skip
    table = dividend_table("600000.SH", frame)
    (row,) = table.to_pylist()
    assert row["ex_date"] == "2024-07-19" and row["cash"] == 0.321 and row["factor"] == 1.0334
    assert dividend_table("600000.SH", pd.DataFrame()).num_rows == 0
