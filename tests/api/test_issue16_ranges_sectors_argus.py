"""Issue #16 items 1, 2, 8 and 9 through a real gateway (uvicorn on loopback, the pinned simulator).

The simulated clock is 2025-06-12 10:30 (a Thursday, session forming). An empty range (a weekend, a holiday,
a range after the simulated now) answers 200 with no rows in every encoding and on every compat route;
index-constituent and industry sectors exist (the gateway fetches QMT's sector data); the Argus routes
answer at Argus's own paths and put ``"success": false`` on errors.
"""

from __future__ import annotations

import csv
import io
import json

import httpx
import pyarrow as pa
import pytest
from websockets.sync.client import connect

from .conftest import LiveServer

ARROW = "application/vnd.apache.arrow.stream"
#: (start, end, period): New Year's Day, a weekend, 1m bars of a Saturday, wholly after the simulated now
EMPTY_RANGES = [
    ("20250101", "20250101", "1d"),
    ("20250607", "20250608", "1d"),
    ("20250614", "20250614", "1m"),
    ("20270101", "20270201", "1d"),
    ("20270101", "20270201", "1m"),
    ("20250613", "20250620", "1d"),  # starts the day after the simulated today
]


@pytest.fixture(scope="module")
def http(sim_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=sim_server.url, timeout=60) as client:
        yield client  # type: ignore[misc]


# -- items 1 and 2: empty and future ranges ---------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "period"), EMPTY_RANGES)
def test_empty_range_klines_json_arrow_csv(http: httpx.Client, start: str, end: str, period: str) -> None:
    params = {"start": start, "end": end, "period": period}
    body = http.get("/api/v1/klines/600000.SH", params=params).json()
    assert body["count"] == 0 and body["data"] == [], body
    many = http.get("/api/v1/klines", params={**params, "codes": "600000.SH,000001.SZ"}).json()
    assert many["count"] == 0 and many["data"] == [] and many["codes"] == ["600000.SH", "000001.SZ"]
    arrow = http.get("/api/v1/klines/600000.SH", params=params, headers={"Accept": ARROW})
    assert arrow.status_code == 200
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 0
    assert table.schema.field("ts").type == pa.int64() and table.schema.field("close").type == pa.float64()
    assert table.schema.field("volume").type == pa.int64()
    text = http.get("/api/v1/klines/600000.SH", params=params, headers={"Accept": "text/csv"})
    assert text.status_code == 200
    rows = list(csv.reader(io.StringIO(text.text)))
    assert rows[0][:3] == ["code", "ts", "time"] and "close" in rows[0] and len(rows) == 1


def test_range_ending_before_today_still_has_its_bars(http: httpx.Client) -> None:
    """The cut at ``start`` must not lose anything: a range that includes today keeps today's bar."""
    body = http.get("/api/v1/klines/600000.SH", params={"start": "20250611", "end": "20270101"}).json()
    assert [row["time"][:10] for row in body["data"]] == ["2025-06-11", "2025-06-12"]
    today_1m = http.get(
        "/api/v1/klines/600000.SH", params={"period": "1m", "start": "20250612103000", "end": "20270101"}
    ).json()
    assert [row["time"] for row in today_1m["data"]] == ["2025-06-12T10:30:00+08:00"]


@pytest.mark.parametrize(("start", "end", "period"), EMPTY_RANGES)
def test_empty_range_on_the_xt_route(http: httpx.Client, start: str, end: str, period: str) -> None:
    params = {"codes": "600000.SH", "start_time": start, "end_time": end, "period": period}
    body = http.get("/api/v1/xt/market_data", params=params).json()
    assert body["count"] == 0 and body["codes"] == ["600000.SH"] and body["unknown"] == []


def test_the_xt_divid_factors_route_says_when_a_code_is_unknown(http: httpx.Client) -> None:
    """xtdata answers an unknown code with an empty frame; the route says which empty frame that is."""
    unknown = http.get("/api/v1/xt/divid_factors", params={"code": "999999.SH"}).json()
    assert unknown["count"] == 0 and unknown["unknown"] is True
    known = http.get("/api/v1/xt/divid_factors", params={"code": "600000.SH", "start_time": "20000101"})
    assert known.json()["unknown"] is False and known.json()["count"] > 0, known.text


@pytest.mark.parametrize(("start", "end", "period"), EMPTY_RANGES)
def test_empty_range_on_argus_hist_kline(http: httpx.Client, start: str, end: str, period: str) -> None:
    response = http.get(
        "/hist_kline",
        params={"symbol": "600519.SH", "start_date": start, "end_date": end, "frequency": period},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["count"] == 0 and body["data"] == []


def test_issue_curl_line_for_argus(http: httpx.Client) -> None:
    """The issue's reproduction, verbatim."""
    response = http.get("/hist_kline?symbol=600519.SH&start_date=20250101&end_date=20250101&frequency=1d")
    assert response.status_code == 200 and response.json()["count"] == 0


# -- item 8: Argus paths and error bodies ----------------------------------------------------------------


def test_argus_trading_dates_at_the_designs_path(http: httpx.Client) -> None:
    params = {"market": "SH", "start_date": "20250530", "end_date": "20250606"}
    body = http.get("/trading_dates", params=params).json()
    assert body["success"] is True and body["market"] == "SH"
    assert body["data"] == ["20250530", "20250603", "20250604", "20250605", "20250606"]
    assert http.get("/api/get_trading_dates", params=params).json()["data"] == body["data"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/hist_kline", {"symbol": "688001.SH", "start_date": "20250601", "end_date": "20250612"}, 404,
         "unknown_code"),
        ("/hist_kline", {"symbol": "600519.SH", "start_date": "20250601", "end_date": "20250612",
                         "frequency": "2d"}, 422, "invalid_period"),
        ("/hist_kline", {"symbol": "600519.SH", "start_date": "20250612", "end_date": "20250601"}, 422,
         "invalid_date"),
        ("/trading_dates", {"market": "XX"}, 422, "validation_error"),
        ("/stock_list", {"sector": "no-such-sector"}, 404, "not_found"),
        ("/instrument_detail", {"symbol": "bogus"}, 422, "invalid_code"),
        ("/latest_market", {"symbols": "600519.SH,688001.SH"}, 404, "unknown_code"),
        ("/full_market", {"symbol": "600519.SH", "fields": "nope"}, 422, "invalid_field"),
    ],
)  # fmt: skip
def test_argus_errors_say_success_false(
    http: httpx.Client, path: str, params: dict[str, str], status: int, code: str
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code
    assert int(response.headers["content-length"]) == len(response.content)


def test_other_routes_keep_the_plain_envelope(http: httpx.Client) -> None:
    body = http.get("/api/v1/klines/688001.SH").json()
    assert set(body) == {"error"}
    assert set(http.get("/api/history", params={"stock": "688001.SH"}).json()) == {"error"}


# -- item 9: index-constituent and industry sectors -------------------------------------------------------


def test_index_and_industry_sectors_are_listed(http: httpx.Client) -> None:
    names = http.get("/api/v1/sectors").json()["data"]
    for name in ("沪深A股", "沪深300", "上证50", "中证500", "中证1000", "科创50", "创业板指", "SW1银行"):
        assert name in names, name


@pytest.mark.parametrize("sector", ["沪深300", "上证50", "中证500", "SW1银行"])
def test_sector_members_on_every_route(http: httpx.Client, sector: str) -> None:
    rest = http.get(f"/api/v1/sectors/{sector}/members").json()
    assert rest["count"] == len(rest["data"]) > 0 and len(set(rest["data"])) == rest["count"]
    assert http.get("/stock_list", params={"sector": sector}).json()["data"] == rest["data"]
    assert http.get("/api/sector_stocks", params={"sector": sector}).json()["stocks"] == rest["data"]
    snaps = http.get("/api/v1/snapshots", params={"sector": sector, "fields": "last_price"}).json()
    assert {row["code"] for row in snaps["data"]} | set(snaps["missing"]) == set(rest["data"])


def test_constituent_sizes_and_an_industry(http: httpx.Client) -> None:
    hs300 = http.get("/api/v1/sectors/沪深300/members").json()["data"]
    zz500 = http.get("/api/v1/sectors/中证500/members").json()["data"]
    assert len(hs300) == 300 and len(zz500) == 500 and not set(hs300) & set(zz500)
    banks = http.get("/api/v1/sectors/SW1银行/members").json()["data"]
    assert all(code[-3:] in (".SH", ".SZ", ".BJ") for code in banks)


def test_docs_streaming_example_subscribes_to_hs300(sim_server: LiveServer) -> None:
    """docs/streaming.md's subscribe line: no unknown_sector, and the members are subscribed."""
    url = sim_server.url.replace("http://", "ws://") + "/api/v1/ws"
    msg = {"op": "subscribe", "period": "tick", "codes": ["600000.SH", "sz000001"], "sectors": ["沪深300"]}
    with connect(url, open_timeout=30) as ws:
        ws.send(json.dumps(msg))
        for _ in range(100):
            frame = json.loads(ws.recv(timeout=30))
            if frame.get("type") == "subscribed":
                break
        else:
            raise AssertionError("no subscribed answer")
    assert frame["errors"] == [], frame["errors"]
    assert {"600000.SH", "000001.SZ"} <= set(frame["codes"]) and len(frame["codes"]) > 250


def test_constituents_are_listed_by_the_simulated_today(http: httpx.Client) -> None:
    """沪深300 has 300 members on any date: stocks listed after the simulated today are not among them."""
    hs300 = http.get("/api/v1/sectors/沪深300/members").json()["data"]
    rows = http.get("/api/v1/instruments", params={"codes": ",".join(hs300)}).json()["data"]
    assert len(rows) == 300 and all(row["list_date"] <= "2025-06-12" for row in rows)
    assert all(row["kind"] == "stock" for row in rows)
