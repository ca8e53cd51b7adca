"""Issue #16 item 1: an empty range must not crash the conversions every K-line answer goes through
(numpy's ``char.replace`` raised ``zero-size array to reduction operation`` on an empty label array)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from qmtgate.remote import _shapes
from qmtgate.source.convert import XT_KLINE_DTYPES, XT_KLINE_FIELDS, Bars, bars_table, labels


def test_labels_of_no_bars() -> None:
    assert labels(np.zeros(0, np.int64), True) == []
    assert labels(np.zeros(0, np.int64), False) == []
    assert labels(np.array([1749657600000]), True) == ["20250612"]


def test_records_and_tables_of_no_bars() -> None:
    empty = Bars.empty()
    assert empty.records(["open", "close"], True, label="time") == []
    assert empty.between(0, 2**62).records(["close"], False) == []
    table = bars_table({"600000.SH": empty, "000001.SZ": [empty, empty]})
    assert table.num_rows == 0 and table.column_names[:2] == ["code", "ts"]


def test_drop_in_frames_of_no_bars() -> None:
    """The drop-in's frames from the gateway's table when the range holds no bar."""
    empty = pa.table(
        {
            "code": pa.array([], pa.string()),
            **{f: pa.array(np.zeros(0, d)) for f, d in XT_KLINE_DTYPES.items()},
        }
    )
    frames = _shapes.kline_frames(empty, ["600000.SH"], ["600000.SH", "bogus"], [], "1m")
    frame = frames["600000.SH"]
    assert frame.empty and list(frame.columns) == list(XT_KLINE_FIELDS)
    assert dict(frame.dtypes) == {f: np.dtype(d) for f, d in XT_KLINE_DTYPES.items()}
    assert list(frames["bogus"].columns) == list(XT_KLINE_FIELDS)
    major = _shapes.field_major(frames, ["close"], ["600000.SH"])
    assert isinstance(major["close"], pd.DataFrame) and list(major["close"].index) == ["600000.SH"]
    assert major["close"].shape == (1, 0)
