"""Compat routes answer in their documented shapes, end to end (real uvicorn on the simulated market).

The qmt-bridge routes are driven by that project's own published client (``qmt-bridge==2.1.3``'s
``QMTClient``), so "the shape the client reads" is tested by the client itself.
"""

from __future__ import annotations

from urllib.error import HTTPError
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from qmt_bridge import QMTClient

from .conftest import LiveServer
from .sim_support import TODAY, day_ms

# qmt-bridge's client calls DataFrame.set_index(inplace=True), which pandas 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


@pytest.fixture(scope="module")
def http(sim_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=sim_server.url, timeout=60) as client:
        yield client  # type: ignore[misc]


@pytest.fixture(scope="module")
def qmt(sim_server: LiveServer) -> QMTClient:
    url = urlsplit(sim_server.url)
    return QMTClient(url.hostname, url.port)


# -- the curl line from the README ----------------------------------------------------------------


def test_history_curl_gives_60_bars(http: httpx.Client) -> None:
    response = http.get("/api/history?stock=600000.SH&period=1d&count=60")
    assert response.status_code == 200 and response.headers["x-qmtgate-source"] == "simulated"
    body = response.json()
    assert {"stock", "period", "count", "data"} <= set(body)
    assert body["stock"] == "600000.SH" and body["period"] == "1d" and len(body["data"]) == 60
    assert set(body["data"][0]) == {"date", "open", "high", "low", "close", "volume"}
    assert body["data"][-1]["date"] == TODAY.strftime("%Y%m%d")


# -- qmt-bridge, through its own client ------------------------------------------------------------


def test_qmt_bridge_history(qmt: QMTClient, http: httpx.Client) -> None:
    frame = qmt.get_history("600000.SH", period="1d", count=30, fields="open,high,low,close,volume,amount")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 30
    assert frame.index.name == "date" and frame.index[-1] == "20250612"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "amount"]
    # xtquant units on compat routes: volume in lots (the normalized API says shares).
    normalized = http.get("/api/v1/klines/600000.SH", params={"count": 1}).json()["data"][0]
    assert frame["volume"].iloc[-1] * 100 == normalized["volume"]
    minutes = qmt.get_history("000001.SZ", period="5m", count=10)
    assert len(minutes) == 10 and minutes.index[-1] == "20250612103000"


def test_qmt_bridge_batch_history(qmt: QMTClient) -> None:
    frames = qmt.get_batch_history(["600000.SH", "000001.SZ"], period="1d", count=5)
    assert set(frames) == {"600000.SH", "000001.SZ"}
    assert all(len(f) == 5 and f.index.name == "date" for f in frames.values())


def test_qmt_bridge_full_tick_sector_detail_download(qmt: QMTClient) -> None:
    ticks = qmt.get_full_tick(["600000.SH", "000001.SZ"])
    assert set(ticks) == {"600000.SH", "000001.SZ"}
    assert {"lastPrice", "volume", "askPrice", "bidVol", "time"} <= set(ticks["600000.SH"])
    stocks = qmt.get_sector_stocks("科创板")
    assert len(stocks) > 100 and all(s.endswith(".SH") for s in stocks)
    detail = qmt.get_instrument_detail("600000.SH")
    assert detail["InstrumentName"] == "浦发银行" and detail["ExchangeID"] == "SH"
    answer = qmt.download("600000.SH", period="1m", start="20250609", end="20250611")
    assert answer["status"] == "ok" and answer["stock"] == "600000.SH" and answer["job_id"]


def test_qmt_bridge_errors_are_http_errors(qmt: QMTClient) -> None:
    with pytest.raises(HTTPError) as raised:
        qmt.get_history("688001.SH")
    assert raised.value.code == 404


# -- Argus ---------------------------------------------------------------------------------------


def test_argus_hist_kline(http: httpx.Client) -> None:
    body = http.get(
        "/hist_kline",
        params={"symbol": "600519.SH", "start_date": "20250602", "end_date": "20250612", "frequency": "1d"},
    ).json()
    assert body["success"] is True and body["symbol"] == "600519.SH" and body["frequency"] == "1d"
    assert [r["time"] for r in body["data"]][:2] == ["20250603", "20250604"]  # 06-02 was a holiday
    assert body["data"][-1]["time"] == "20250612" and body["count"] == len(body["data"]) == 8
    assert {"time", "open", "high", "low", "close", "volume", "amount"} <= set(body["data"][0])
    minutes = http.get(
        "/hist_kline",
        params={"symbol": "600519.SH", "start_date": "20250611", "end_date": "20250611", "frequency": "30m"},
    ).json()
    assert minutes["data"][0]["time"] == "20250611100000" and len(minutes["data"]) == 8


def test_argus_reference_routes(http: httpx.Client) -> None:
    dates = http.get(
        "/api/get_trading_dates", params={"market": "SH", "start_date": "20250530", "end_date": "20250606"}
    )
    assert dates.json()["data"] == ["20250530", "20250603", "20250604", "20250605", "20250606"]
    stocks = http.get("/stock_list", params={"sector": "京市A股"}).json()
    assert stocks["success"] is True and all(c.endswith(".BJ") for c in stocks["data"])
    detail = http.get("/instrument_detail", params={"symbol": "600519.SH"}).json()
    assert detail["data"]["InstrumentName"] == "贵州茅台"


def test_argus_market_routes(http: httpx.Client) -> None:
    latest = http.get("/latest_market", params={"symbols": "600519.SH,000001.SZ"}).json()
    assert set(latest["data"]) == {"600519.SH", "000001.SZ"}
    assert latest["data"]["600519.SH"]["time"] == day_ms(TODAY) + (10 * 3600 + 30 * 60) * 1000
    full = http.get("/full_market", params={"symbol": "600519.SH"}).json()
    assert set(full["data"]) == {"open", "high", "low", "close", "volume"}
    assert full["data"]["close"] == latest["data"]["600519.SH"]["lastPrice"]
    some = http.get("/full_market", params={"symbol": "600519.SH", "fields": "close,amount"}).json()
    assert set(some["data"]) == {"close", "amount"}


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (
            "/hist_kline",
            {"symbol": "600519.SH", "start_date": "20250601", "end_date": "20250612", "frequency": "2d"},
            422,
        ),
        ("/hist_kline", {"symbol": "688001.SH", "start_date": "20250601", "end_date": "20250612"}, 404),
        ("/latest_market", {"symbols": "bogus"}, 422),
        ("/api/history", {"stock": "600000.SH", "period": "7m"}, 422),
        ("/api/full_tick", {"stocks": "600000.SH,688001.SH"}, 404),
        ("/api/sector_stocks", {"sector": "no-such-sector"}, 404),
    ],
)
def test_compat_errors_use_the_envelope(
    http: httpx.Client, path: str, params: dict[str, str], status: int
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}
