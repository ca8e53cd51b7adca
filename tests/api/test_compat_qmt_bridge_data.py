"""Every market-data method of the published qmt-bridge 2.1.3 client, driven by that client (``QMTClient``)
against a live gateway on the simulated market (2025-06-12 10:30, manual clock; 06-02 was a holiday).

One test per method, asserting on content; the methods whose data qmtgate does not serve must answer a 501
naming the method (never a 404). The legacy methods (get_history, ...) are in test_compat.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

import pandas as pd
import pytest
from qmt_bridge import QMTClient

from qmtgate.config import package_version

from .conftest import LiveServer
from .sim_support import LAST_COMPLETE, TODAY, day_ms

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

XT_BAR = ["time", "open", "high", "low", "close", "volume", "amount"]
XT_BAR += ["settelementPrice", "openInterest", "preClose", "suspendFlag"]


@pytest.fixture(scope="module")
def qmt(sim_server: LiveServer) -> QMTClient:
    url = urlsplit(sim_server.url)
    return QMTClient(url.hostname, url.port)


def _error(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPError) as raised:
        call()
    return raised.value.code, json.loads(raised.value.read())["error"]


# -- /api/market ------------------------------------------------------------------------------------------


def test_get_history_ex(qmt: QMTClient) -> None:
    frames = qmt.get_history_ex(
        ["600000.SH", "000001.SZ"], period="1d", start_time="20250603", end_time="20250611"
    )
    assert set(frames) == {"600000.SH", "000001.SZ"}
    frame = frames["600000.SH"]
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["index", *XT_BAR]
    assert list(frame["index"]) == [
        "20250603",
        "20250604",
        "20250605",
        "20250606",
        "20250609",
        "20250610",
        "20250611",
    ]
    assert frame["time"].iloc[0] == day_ms(dt.date(2025, 6, 3))
    assert (frame["high"] >= frame["low"]).all() and frame["volume"].dtype.kind == "i"
    minutes = qmt.get_history_ex(["600000.SH"], period="5m", count=3)["600000.SH"]
    assert list(minutes["index"]) == ["20250612102000", "20250612102500", "20250612103000"]


def test_get_history_ex_front_adjusted_differs_after_a_dividend(qmt: QMTClient) -> None:
    raw = qmt.get_history_ex(["600000.SH"], start_time="20240101", end_time="20250611")["600000.SH"]
    front = qmt.get_history_ex(
        ["600000.SH"], start_time="20240101", end_time="20250611", dividend_type="front"
    )
    assert len(raw) == len(front["600000.SH"]) > 300
    assert raw["close"].iloc[-1] == front["600000.SH"]["close"].iloc[-1]  # the latest bar is the anchor


def test_get_local_data(qmt: QMTClient) -> None:
    frame = qmt.get_local_data(["600519.SH"], period="1d", count=5)["600519.SH"]
    assert list(frame.columns) == ["index", *XT_BAR] and len(frame) == 5
    assert frame["index"].iloc[-1] == TODAY.strftime("%Y%m%d")


def test_get_market_snapshot(qmt: QMTClient) -> None:
    ticks = qmt.get_market_snapshot(["600000.SH", "000001.SZ"])
    assert set(ticks) == {"600000.SH", "000001.SZ"}
    tick = ticks["600000.SH"]
    assert {
        "time",
        "lastPrice",
        "open",
        "high",
        "low",
        "lastClose",
        "volume",
        "amount",
        "askPrice",
        "bidVol",
    } <= set(tick)
    assert tick["lastPrice"] > 0 and len(tick["askPrice"]) == 5
    assert tick["time"] == day_ms(TODAY) + (10 * 3600 + 30 * 60) * 1000
    status, error = _error(lambda: qmt.get_market_snapshot(["600000.SH", "688001.SH"]))
    assert status == 404 and error["code"] == "unknown_code" and error["details"]["codes"] == ["688001.SH"]


def test_get_major_indices(qmt: QMTClient) -> None:
    answer = qmt.get_major_indices()
    assert answer["indices"][:4] == ["000001.SH", "399001.SZ", "399006.SZ", "000300.SH"]
    assert "000300.SH" in answer["data"] and answer["data"]["000300.SH"]["lastPrice"] > 1000
    assert set(answer["data"]) <= set(answer["indices"])


def test_get_divid_factors(qmt: QMTClient) -> None:
    data = qmt.get_divid_factors("600000.SH", start_time="20150101", end_time="20250611")
    assert {"time", "interest", "dr"} <= set(data)
    days = list(data["dr"])
    assert days and all(len(d) == 8 and "20150101" <= d <= "20250611" for d in days)
    assert all(data["dr"][d] >= 1.0 for d in days) and data["time"][days[0]] == day_ms(
        dt.datetime.strptime(days[0], "%Y%m%d").date()
    )


def test_get_market_data(qmt: QMTClient) -> None:
    data = qmt.get_market_data(["600000.SH", "000001.SZ"], fields="close,volume", count=3)
    assert set(data) == {"600000.SH", "000001.SZ"}
    rows = data["000001.SZ"]
    assert [r["date"] for r in rows] == ["20250610", "20250611", "20250612"]
    assert all(set(r) == {"date", "close", "volume"} and r["close"] > 0 for r in rows)
    status, error = _error(lambda: qmt.get_market_data(["600000.SH"], fields="close,bogus"))
    assert status == 422 and error["code"] == "invalid_field"


def test_get_market_data3(qmt: QMTClient) -> None:
    frames = qmt.get_market_data3(["600000.SH"], fields="open,close", period="1d", count=2)
    frame = frames["600000.SH"]
    assert list(frame.columns) == ["index", "open", "close"] and list(frame["index"]) == [
        "20250611",
        "20250612",
    ]
    everything = qmt.get_market_data3(["600000.SH"], count=1)["600000.SH"]
    assert list(everything.columns) == ["index", *XT_BAR]


def test_get_full_kline(qmt: QMTClient) -> None:
    data = qmt.get_full_kline("600000.SH", period="1m")
    assert set(data) == set(XT_BAR)
    labels = list(data["close"])
    assert labels[0] == "20250612093000" and labels[-1] == "20250612103000" and len(labels) == 61
    assert data["close"][labels[-1]]["600000.SH"] > 0
    daily = qmt.get_full_kline("600000.SH")  # qmt-bridge's default period: 1d, today's forming bar
    assert list(daily["close"]) == [TODAY.strftime("%Y%m%d")]


# -- /api/sector ------------------------------------------------------------------------------------------


def test_get_sector_list(qmt: QMTClient) -> None:
    sectors = qmt.get_sector_list()
    assert {"沪深A股", "上证A股", "深证A股", "京市A股", "科创板"} <= set(sectors)


def test_get_sector_stocks_v2(qmt: QMTClient) -> None:
    stocks = qmt.get_sector_stocks_v2("京市A股")
    assert len(stocks) > 100 and all(s.endswith(".BJ") for s in stocks)
    assert stocks == qmt.get_sector_stocks("京市A股")  # the legacy route agrees
    status, error = _error(lambda: qmt.get_sector_stocks_v2("no-such-sector"))
    assert status == 404 and error["code"] == "not_found"


# -- /api/calendar ----------------------------------------------------------------------------------------


def test_get_trading_dates(qmt: QMTClient) -> None:
    dates = qmt.get_trading_dates("SH", start_time="20250530", end_time="20250606")
    expected = [dt.date(2025, 5, 30), dt.date(2025, 6, 3), dt.date(2025, 6, 4), dt.date(2025, 6, 5)]
    assert dates == [day_ms(d) for d in [*expected, dt.date(2025, 6, 6)]]  # epoch ms, as xtdata
    assert qmt.get_trading_dates("SH", count=2) == [day_ms(LAST_COMPLETE), day_ms(TODAY)]


def test_get_holidays(qmt: QMTClient) -> None:
    holidays = qmt.get_holidays()
    assert "20250602" in holidays and "20250101" in holidays and "20250603" not in holidays


def test_get_trading_calendar(qmt: QMTClient) -> None:
    calendar = qmt.get_trading_calendar("SH", start_time="20250612", end_time="20250620")
    assert calendar == ["20250612", "20250613", "20250616", "20250617", "20250618", "20250619", "20250620"]


def test_is_trading_date(qmt: QMTClient) -> None:
    assert qmt.is_trading_date("SH", "20250603") is True
    assert qmt.is_trading_date("SH", "20250602") is False  # Dragon Boat holiday
    assert qmt.is_trading_date("SH", "20250607") is False  # Saturday


def test_get_prev_trading_date(qmt: QMTClient) -> None:
    assert qmt.get_prev_trading_date("SH", "20250603") == day_ms(dt.date(2025, 5, 30))
    assert qmt.get_prev_trading_date("SH", "20250602") == day_ms(dt.date(2025, 5, 30))  # a holiday itself
    assert qmt.get_prev_trading_date("SH") == day_ms(LAST_COMPLETE)  # today's previous


def test_get_next_trading_date(qmt: QMTClient) -> None:
    assert qmt.get_next_trading_date("SH", "20250530") == day_ms(dt.date(2025, 6, 3))
    assert qmt.get_next_trading_date("SH") == day_ms(dt.date(2025, 6, 13))


def test_get_trading_dates_count(qmt: QMTClient) -> None:
    assert qmt.get_trading_dates_count("SH", start_time="20250601", end_time="20250612") == 8


# -- /api/instrument --------------------------------------------------------------------------------------


def test_get_batch_instrument_detail(qmt: QMTClient) -> None:
    details = qmt.get_batch_instrument_detail(["600000.SH", "600519.SH"])
    assert details["600000.SH"]["InstrumentName"] == "浦发银行"
    assert details["600519.SH"]["InstrumentName"] == "贵州茅台" and details["600519.SH"]["ExchangeID"] == "SH"
    status, error = _error(lambda: qmt.get_batch_instrument_detail(["600000.SH", "688001.SH"]))
    assert status == 404 and error["details"]["codes"] == ["688001.SH"]


def test_get_instrument_type(qmt: QMTClient) -> None:
    assert qmt.get_instrument_type("600000.SH")["stock"] is True
    assert qmt.get_instrument_type("000300.SH")["index"] is True


# -- /api/meta --------------------------------------------------------------------------------------------


def test_get_markets(qmt: QMTClient) -> None:
    markets = qmt.get_markets()
    assert markets["SH"] == "上交所" and markets["BJ"] == "北交所" and len(markets) == 15


def test_get_periods(qmt: QMTClient) -> None:
    names = [p["name"] for p in qmt.get_periods()]
    assert names[:3] == ["tick", "1m", "5m"] and "1d" in names


def test_get_stock_list_by_category(qmt: QMTClient) -> None:
    stocks = qmt.get_stock_list_by_category("上证A股")
    assert "600000.SH" in stocks and all(s.endswith(".SH") for s in stocks)


def test_get_last_trade_date(qmt: QMTClient) -> None:
    assert qmt.get_last_trade_date("SH") == day_ms(TODAY)


def test_get_server_version(qmt: QMTClient) -> None:
    assert qmt.get_server_version() == package_version()


def test_get_xtdata_version(qmt: QMTClient) -> None:
    assert qmt.get_xtdata_version() == "simulated"


def test_get_connection_status(qmt: QMTClient) -> None:
    assert qmt.get_connection_status() == {"connected": True}


def test_health_check(qmt: QMTClient) -> None:
    assert qmt.health_check() == {"status": "ok"}


def test_get_quote_server_status(qmt: QMTClient) -> None:
    status = qmt.get_quote_server_status()["data"]
    assert status["source"] == "simulated" and status["connected"] is True and status["state"] == "ready"


# -- /api/utility -----------------------------------------------------------------------------------------


def test_get_stock_name(qmt: QMTClient) -> None:
    assert qmt.get_stock_name("600519.SH") == "贵州茅台"
    assert qmt.get_stock_name("600000.sh") == "浦发银行"  # normalized like every route
    status, error = _error(lambda: qmt.get_stock_name("688001.SH"))
    assert status == 404 and error["code"] == "unknown_code"


def test_get_batch_stock_name(qmt: QMTClient) -> None:
    assert qmt.get_batch_stock_name(["600000.SH", "600519.SH"]) == {
        "600000.SH": "浦发银行",
        "600519.SH": "贵州茅台",
    }


def test_code_to_market(qmt: QMTClient) -> None:
    answer = qmt.code_to_market("000001.SZ")
    assert answer["stock"] == "000001.SZ" and answer["market"] == "SZ" and answer["type"]["stock"] is True


def test_search_stocks(qmt: QMTClient) -> None:
    found = qmt.search_stocks("60000", limit=5)
    assert 0 < len(found) <= 5 and all("60000" in s for s in found) and "600000.SH" in found


# -- /api/download ----------------------------------------------------------------------------------------


def test_download_batch(qmt: QMTClient) -> None:
    answer = qmt.download_batch(
        ["600000.SH", "000001.SZ"], period="1m", start_time="20250609", end_time="20250611"
    )
    assert (
        answer["status"] == "ok"
        and answer["stocks"] == ["600000.SH", "000001.SZ"]
        and answer["period"] == "1m"
    )
    status, error = _error(lambda: qmt.download_batch(["600000.SH"], period="1m"))
    assert status == 422 and error["code"] == "invalid_date"  # minute downloads need a start


def test_download_sector_data(qmt: QMTClient) -> None:
    assert qmt.download_sector_data() == {"status": "ok"}


def test_download_holiday_data(qmt: QMTClient) -> None:
    assert qmt.download_holiday_data() == {"status": "ok"}


# -- what qmtgate does not serve: 501 naming the method ------------------------------------------------------

UNSERVED: list[tuple[str, tuple[Any, ...]]] = [
    ("get_fullspeed_orderbook", ("600000.SH",)),
    ("get_transactioncount", ("600000.SH",)),
    ("get_l2_quote", ("600000.SH",)),
    ("get_l2_order", ("600000.SH",)),
    ("get_l2_transaction", ("600000.SH",)),
    ("get_l2_thousand_quote", ("600000.SH",)),
    ("get_l2_thousand_orderbook", ("600000.SH",)),
    ("get_l2_thousand_trade", ("600000.SH",)),
    ("get_financial_data", (["600000.SH"],)),
    ("download_financial", (["600000.SH"],)),
    ("download_financial_data2", (["600000.SH"],)),
    ("get_option_detail", ("10000001.SHO",)),
    ("get_option_chain", ("510050.SH",)),
    ("get_option_list", ("510050.SH", "202506")),
    ("get_history_option_list", ("510050.SH", "20250612")),
    ("download_option_data", ()),
    ("get_etf_list", ()),
    ("get_etf_info", ()),
    ("download_etf_info", ()),
    ("get_cb_info", ("113001.SH",)),
    ("get_cb_list", ()),
    ("get_cb_detail", ("113001.SH",)),
    ("get_cb_conversion_price", ("113001.SH",)),
    ("get_bond_info", ("113001.SH",)),
    ("download_cb_data", ()),
    ("get_main_contract", ("IF00.IF",)),
    ("get_sec_main_contract", ("IF00.IF",)),
    ("download_history_contracts", ()),
    ("get_hk_stock_list", ()),
    ("get_hk_connect_stocks", ()),
    ("get_tabular_data", (["600000.SH"],)),
    ("list_tables", ()),
    ("get_ipo_info", ()),
    ("download_ipo_data", ()),
    ("get_index_weight", ("000300.SH",)),
    ("download_index_weight", ()),
    ("get_st_history", ("600000.SH",)),
    ("get_trading_period", ("600000.SH",)),
    ("get_trading_time", ("600000.SH",)),
    ("get_sector_info", ("沪深A股",)),
    ("create_sector_folder", ("mine",)),
    ("create_sector", ("mine",)),
    ("add_sector_stocks", ("mine", ["600000.SH"])),
    ("remove_sector_stocks", ("mine", ["600000.SH"])),
    ("remove_sector", ("mine",)),
    ("reset_sector", ("mine", ["600000.SH"])),
]


@pytest.mark.parametrize(("method", "args"), UNSERVED, ids=[m for m, _ in UNSERVED])
def test_unserved_methods_answer_501_naming_the_method(
    qmt: QMTClient, method: str, args: tuple[Any, ...]
) -> None:
    status, error = _error(lambda: getattr(qmt, method)(*args))
    assert status == 501 and error["code"] == "unsupported"
    assert error["details"] == {"method": method} and method in error["message"]


def test_formula_methods_answer_501(qmt: QMTClient) -> None:
    for call in (
        lambda: qmt.call_formula("MA", "600000.SH", "1d"),
        lambda: qmt.call_formula_batch("MA", ["600000.SH"], "1d"),
        lambda: qmt.generate_index_data("MA", ["600000.SH"], "1d"),
    ):
        status, error = _error(call)
        assert status == 501 and error["code"] == "unsupported"


def test_every_market_data_method_of_the_client_is_routed(sim_server: LiveServer) -> None:
    """No market-data method of QMTClient may hit a route the gateway does not have (a bare 404)."""
    import inspect
    import re

    import qmt_bridge.client as package
    from qmt_bridge.client.trading import TradingMixin

    from qmtgate.api.app import create_app
    from qmtgate.config import Settings

    trading = ("trading", "credit", "fund", "smt", "bank", "websocket", "base")
    paths: set[str] = set()
    for name in dir(package):
        mixin = getattr(package, name)
        module = getattr(mixin, "__module__", "")
        if not inspect.isclass(mixin) or mixin is TradingMixin or module.rpartition(".")[2] in trading:
            continue
        if not module.startswith("qmt_bridge.client."):
            continue
        source = inspect.getsource(mixin)
        paths |= set(re.findall(r'self\._(?:get|post|delete)\(\s*f?"(/api/[^"{]+)"', source))
    served = set(create_app(Settings(source="sim")).openapi()["paths"])
    assert len(paths) > 80 and paths - served == set()
