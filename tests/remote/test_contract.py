"""One xtdata contract suite, run twice: against the simulator's xtdata in this process and against
``qmtgate.remote``'s xtdata through a real gateway (a subprocess on the same seed and pinned clock).

Every case is a function of an ``xtdata`` module; both answers must be identical: DataFrames equal with
dtypes and index types, dicts with the same keys and values, lists equal, callback payloads of the same
shape. The in-process simulator holds a whole-market subscription, as the gateway does, so today's bars
are visible for every code on both sides (xtquant shows today's bars for subscribed codes only).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import qmtgate.remote
import qmtgate.sim
from qmtgate.source.convert import XT_KLINE_DTYPES

from .conftest import Gateway, eventually

CST = dt.timezone(dt.timedelta(hours=8))
PINNED = dt.datetime(2025, 6, 12, 10, 30, tzinfo=CST)
CODES = ["600000.SH", "000001.SZ", "300750.SZ", "510300.SH", "000300.SH"]


@pytest.fixture(scope="module")
def local(launched_gateway: Gateway) -> Any:
    """The simulator's xtdata in this process, pinned like the gateway and whole-market subscribed."""
    env = qmtgate.sim.install(
        0, clock="manual", replay_day=PINNED.date(), start_ms=int(PINNED.timestamp() * 1000)
    )
    from qmtgate.sim.xtquant import xtdata

    xtdata.enable_hello = False
    seq = xtdata.subscribe_whole_quote(["SH", "SZ", "BJ"], lambda data: None)
    xtdata.get_full_tick(["SH", "SZ", "BJ"])  # warm up the whole universe while the gateway starts
    xtdata.env = env  # the tests reach the clock through it; removed after (not an xtdata name)
    try:
        yield xtdata
    finally:
        xtdata.unsubscribe_quote(seq)
        del xtdata.env


@pytest.fixture(scope="module")
def remote(gateway: Gateway) -> Any:
    session = qmtgate.remote.connect(gateway.url)
    from qmtgate.remote.xtquant import xtdata

    yield xtdata
    session.close()


def assert_same(a: Any, b: Any, path: str = "result") -> None:
    """Exact equality of xtdata answers: types, dtypes, keys, values (NaN equals NaN)."""
    if isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), f"{path}: {type(b)}"
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, obj=path)
        return
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)[:10]} != {sorted(b)[:10]}"
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _minute(xt: Any, period: str) -> Any:
    xt.download_history_data("600000.SH", "1m", "20250609", "20250611")
    return xt.get_market_data_ex([], ["600000.SH"], period, start_time="20250610", count=-1)


CASES: dict[str, Callable[[Any], Any]] = {
    "TC-X01 get_market_data_ex 1d count": lambda xt: xt.get_market_data_ex([], CODES, "1d", count=30),
    "TC-X02 get_market_data_ex range, fields, unknown code": lambda xt: xt.get_market_data_ex(
        ["close", "volume", "time"], ["600000.SH", "688999.SH", "sh600000"], "1d", "20250101", "20250331"
    ),
    "TC-X03 front-adjusted": lambda xt: xt.get_market_data_ex(
        [], ["600000.SH"], "1d", count=300, dividend_type="front"
    ),
    "TC-X04 get_market_data field-major": lambda xt: xt.get_market_data(
        ["open", "close", "volume"], ["600000.SH", "000001.SZ"], "1d", count=5
    ),
    "TC-X05 get_local_data weekly": lambda xt: xt.get_local_data([], ["000001.SZ"], "1w", count=8),
    "TC-X06 1m after download, incl. today": lambda xt: _minute(xt, "1m"),
    "TC-X07 5m after download": lambda xt: _minute(xt, "5m"),
    "TC-X08 get_full_tick codes": lambda xt: xt.get_full_tick([*CODES, "688999.SH"]),
    "TC-X09 get_full_tick whole market BJ": lambda xt: xt.get_full_tick(["BJ"]),
    "TC-X10 get_instrument_detail": lambda xt: [
        xt.get_instrument_detail("600000.SH"),
        xt.get_instrument_detail("510300.SH", True),
        xt.get_instrument_detail("688999.SH"),
    ],
    "TC-X11 get_instrument_detail_list": lambda xt: xt.get_instrument_detail_list(CODES),
    "TC-X12 get_instrument_type": lambda xt: [
        xt.get_instrument_type("000300.SH"),
        xt.get_instrument_type("510300.SH", ["stock", "etf", "fund", "bond"]),
        xt.get_instrument_type("688999.SH"),
    ],
    "TC-X13 sectors": lambda xt: [
        xt.download_sector_data(),  # index-constituent and industry sectors appear after it (issue 16)
        xt.get_sector_list(),
        xt.get_stock_list_in_sector("沪深300"),
        xt.get_stock_list_in_sector("SW1银行"),
        xt.get_stock_list_in_sector("no such sector"),
    ],
    "TC-X14 trading dates and calendar": lambda xt: [
        xt.get_trading_dates("SH", "20250101", "20250301"),
        xt.get_trading_dates("SZ", count=5),
        xt.get_trading_calendar("SH", "20250601", "20251231"),
        xt.get_holidays(),
    ],
    "TC-X15 dividend factors": lambda xt: [
        xt.get_divid_factors("600000.SH"),
        xt.get_divid_factors("600000.SH", "20200101", "20231231"),
        xt.get_divid_factors("688999.SH"),
    ],
    # issue 16: empty ranges are empty frames with the requested columns and xtquant's dtypes
    "TC-X18 holiday range 1d": lambda xt: xt.get_market_data_ex(
        ["close"], ["600000.SH"], period="1d", start_time="20250101", end_time="20250101"
    ),
    "TC-X19 weekend range, all fields, two codes": lambda xt: xt.get_market_data_ex(
        [], ["600000.SH", "000001.SZ"], "1d", "20250607", "20250608"
    ),
    "TC-X20 bare-date end_time for 1m (00:00 of that day)": lambda xt: xt.get_market_data_ex(
        [], ["600000.SH"], "1m", "20250611", "20250611"
    ),
    "TC-X21 range after the simulated now": lambda xt: [
        xt.get_market_data_ex(["time", "close"], ["600000.SH"], "1d", "20270101", "20270201"),
        xt.get_market_data_ex(["time", "close"], ["600000.SH"], "1m", "20270101", "20270201"),
        xt.get_market_data_ex([], ["600000.SH"], "1d", "20250613", ""),
    ],
    "TC-X22 get_market_data on empty ranges": lambda xt: [
        xt.get_market_data(["open", "close"], ["600000.SH", "000001.SZ"], "1d", "20250101", "20250101"),
        xt.get_market_data([], ["600000.SH"], "1m", "20270101", "20270201"),
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_in_process_and_remote(case: str, local: Any, remote: Any) -> None:
    fn = CASES[case]
    assert_same(fn(local), fn(remote), case)


def test_download_progress_shape(local: Any, remote: Any) -> None:
    """TC-X16: download_history_data2 blocks, reports progress as xtquant's dicts and returns a dict."""
    seen: dict[str, list[dict[str, Any]]] = {"local": [], "remote": []}
    for name, xt in (("local", local), ("remote", remote)):
        out = xt.download_history_data2(
            ["000001.SZ", "600000.SH"], "5m", "20250605", "20250606", callback=seen[name].append
        )
        assert isinstance(out, dict)
    for name in seen:
        assert seen[name], name
        assert all(set(p) == {"finished", "total", "stockcode", "message"} for p in seen[name])
        assert seen[name][-1]["finished"] == seen[name][-1]["total"] == 2


def _shape(value: Any) -> Any:
    """Structure of a payload: dict keys (not code keys), value types, list lengths."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_callback_payloads_have_the_same_shape(local: Any, remote: Any, gateway: Gateway) -> None:
    """TC-X17: subscribe_quote (tick, 1m) and subscribe_whole_quote deliver xtquant-shaped payloads on a
    background thread, the same shape in process and through the gateway."""
    got: dict[str, dict[str, list[Any]]] = {}
    for name, xt in (("local", local), ("remote", remote)):
        got[name] = {"tick": [], "1m": [], "whole": [], "threads": []}
        box = got[name]

        def recorder(kind: str, box: dict[str, list[Any]] = box) -> Callable[[dict[str, Any]], None]:
            def callback(data: dict[str, Any]) -> None:
                box["threads"].append(threading.current_thread() is threading.main_thread())
                box[kind].append(data)

            return callback

        seqs = [
            xt.subscribe_quote("600000.SH", "tick", callback=recorder("tick")),
            xt.subscribe_quote("000001.SZ", "1m", callback=recorder("1m")),
            xt.subscribe_whole_quote(["SZ"], callback=recorder("whole")),
        ]
        assert all(isinstance(seq, int) and seq > 0 for seq in seqs)
        box["seqs"] = seqs
    remote_box = got["remote"]
    # the gateway's first whole-market push is the current snapshot, as xtquant's is
    eventually(lambda: remote_box["whole"], timeout=60)  # generous: a loaded CI box
    for _ in range(3):
        local.env.market.clock.advance(3)
        gateway.advance(3)
    for name in ("local", "remote"):
        box = got[name]
        eventually(lambda box=box: box["tick"] and box["1m"] and len(box["whole"]) >= 2, timeout=60)
        assert not any(box["threads"]), f"{name}: a callback ran on the main thread"
    for kind in ("tick", "1m"):
        assert _shape(got["local"][kind][-1]) == _shape(got["remote"][kind][-1]), kind
    local_whole, remote_whole = got["local"]["whole"][-1], got["remote"]["whole"][-1]
    assert all(code.endswith(".SZ") for code in remote_whole)
    assert _shape(next(iter(local_whole.values()))) == _shape(next(iter(remote_whole.values())))
    for name, xt in (("local", local), ("remote", remote)):
        for seq in got[name]["seqs"]:
            xt.unsubscribe_quote(seq)


@pytest.mark.parametrize("period", ["1d", "1m", "5m", "1w"])
def test_empty_ranges_have_xtquant_columns_and_dtypes(remote: Any, period: str) -> None:
    """Issue 16: a holiday, a weekend, a bare-date 1m end and a future range give {code: empty frame}
    with the requested columns in order and xtquant's dtypes, never an exception."""
    for start, end in (("20250101", "20250101"), ("20250607", "20250608"), ("20270101", "20270201")):
        out = remote.get_market_data_ex([], ["600000.SH"], period, start, end)
        frame = out["600000.SH"]
        assert list(out) == ["600000.SH"] and frame.empty
        assert list(frame.columns) == list(XT_KLINE_DTYPES)
        assert {c: frame[c].dtype for c in frame.columns} == {
            c: np.dtype(d) for c, d in XT_KLINE_DTYPES.items()
        }
        some = remote.get_market_data_ex(["close", "time"], ["600000.SH"], period, start, end)["600000.SH"]
        assert list(some.columns) == ["close", "time"] and some.empty
    minute = remote.get_market_data_ex([], ["600000.SH"], "1m", "20250611", "20250611150000")["600000.SH"]
    assert len(minute) == 241 and minute.index[0] == "20250611093000"  # the 14-digit end covers the day
