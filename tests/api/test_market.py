"""K-lines and snapshots over the simulated market: schema, units, formats, downloads, validation."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from qmtgate.source.convert import local_iso

from .sim_support import LAST_COMPLETE, TODAY, day_ms, xtdata

ARROW = "application/vnd.apache.arrow.stream"


def error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# -- K-lines ---------------------------------------------------------------------------------------


def test_daily_klines_are_normalized_with_units(sim_client: TestClient) -> None:
    response = sim_client.get("/api/v1/klines", params={"codes": "600000.SH,000001.SZ", "count": 5})
    assert response.status_code == 200
    assert response.headers["x-qmtgate-source"] == "simulated"
    body = response.json()
    assert body["source"] == "simulated" and body["codes"] == ["600000.SH", "000001.SZ"]
    assert body["count"] == 10
    rows = body["data"]
    assert list(rows[0]) == [
        "code", "ts", "time", "open", "high", "low", "close", "pre_close", "volume", "amount", "suspend_flag",
    ]  # fmt: skip
    by_code = {code: [r for r in rows if r["code"] == code] for code in body["codes"]}
    for code, bars in by_code.items():
        assert len(bars) == 5
        # Daily bars are stamped 00:00 Asia/Shanghai; time is the same instant, local.
        assert all(r["ts"] % 86_400_000 == 57_600_000 for r in bars)
        assert [r["time"] for r in bars] == list(local_iso([r["ts"] for r in bars]))
        assert bars[-1]["ts"] == day_ms(TODAY)  # today's forming bar is included
        assert bars[-2]["ts"] == day_ms(LAST_COMPLETE)
        # Units: the same complete sessions straight from xtdata, where volume is in lots.
        raw = xtdata().get_market_data_ex([], [code], "1d", end_time="20250611", count=4)[code]
        assert [r["ts"] for r in bars[:4]] == raw["time"].tolist()
        assert [r["volume"] for r in bars[:4]] == (raw["volume"] * 100).tolist()
        assert [r["close"] for r in bars[:4]] == raw["close"].tolist()
        assert [r["amount"] for r in bars[:4]] == pytest.approx(raw["amount"].tolist())


def test_todays_bar_matches_the_live_snapshot(sim_client: TestClient) -> None:
    bar = sim_client.get("/api/v1/klines/600519.SH", params={"count": 1}).json()["data"][0]
    (snap,) = sim_client.get("/api/v1/snapshots", params={"codes": "600519.SH"}).json()["data"]
    assert bar["ts"] == day_ms(TODAY)
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        snap["open"], snap["high"], snap["low"], snap["last_price"],
    )  # fmt: skip
    assert bar["volume"] == snap["volume"] and bar["pre_close"] == snap["pre_close"]


def test_arrow_and_csv_carry_the_same_table(sim_client: TestClient) -> None:
    params = {"codes": "600000.SH", "count": 3}
    as_json = sim_client.get("/api/v1/klines", params=params).json()["data"]
    response = sim_client.get("/api/v1/klines", params=params, headers={"Accept": ARROW})
    assert response.headers["content-type"] == ARROW
    table = ipc.open_stream(io.BytesIO(response.content)).read_all()
    assert table.schema.metadata[b"qmtgate.source"] == b"simulated"
    assert table.schema.field("time").type == pa.timestamp("ms", tz="Asia/Shanghai")
    assert table.schema.field("volume").type == pa.int64()
    frame = table.to_pandas()
    assert frame["ts"].tolist() == [r["ts"] for r in as_json]
    assert frame["volume"].tolist() == [r["volume"] for r in as_json]
    assert str(frame["time"].dt.tz) == "Asia/Shanghai"
    assert frame["time"].iloc[-1].isoformat() == as_json[-1]["time"]
    csv = sim_client.get("/api/v1/klines", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].replace('"', "").split(",")[:3] == ["code", "ts", "time"] and len(lines) == 4


def test_minute_history_is_downloaded_before_it_is_read(sim_client: TestClient) -> None:
    code = "688981.SH"
    history = {"end_time": "20250611235959", "count": 5}  # complete sessions only (today's come live)
    assert xtdata().get_market_data_ex([], [code], "1m", **history)[code].empty  # nothing local yet
    response = sim_client.get(f"/api/v1/klines/{code}", params={"period": "1m", "count": 300})
    rows = response.json()["data"]
    assert len(rows) == 300
    days = {r["time"][:10] for r in rows}
    assert days == {"2025-06-11", "2025-06-12"}  # the complete session downloaded + today's live bars
    assert rows[-1]["time"] == "2025-06-12T10:30:00+08:00"
    assert not xtdata().get_market_data_ex([], [code], "1m", **history)[code].empty
    # The ledger remembers: the same read again does not download.
    before = sim_client.app.state.source.executor.status().calls["download_history_data2"].count  # type: ignore[attr-defined]
    sim_client.get(f"/api/v1/klines/{code}", params={"period": "1m", "count": 300})
    after = sim_client.app.state.source.executor.status().calls["download_history_data2"].count  # type: ignore[attr-defined]
    assert after == before


def test_range_fields_and_intraday_labels(sim_client: TestClient) -> None:
    body = sim_client.get(
        "/api/v1/klines/600000.SH",
        params={"period": "5m", "start": "2025-06-11", "end": "20250611", "fields": "close,volume"},
    ).json()
    rows = body["data"]
    assert len(rows) == 48  # 09:35 ... 11:30, 13:05 ... 15:00 (the auction folds into the first bar)
    assert list(rows[0]) == ["code", "ts", "time", "close", "volume"]
    assert rows[0]["time"] == "2025-06-11T09:35:00+08:00" and rows[-1]["time"] == "2025-06-11T15:00:00+08:00"


def test_a_range_without_sessions_is_empty_not_an_error(sim_client: TestClient) -> None:
    body = sim_client.get("/api/v1/klines/600000.SH", params={"start": "20250531", "end": "20250602"}).json()
    assert body["count"] == 0 and body["data"] == []


def test_front_adjustment_changes_history_not_the_latest_bar(sim_client: TestClient) -> None:
    params = {"codes": "600000.SH", "start": "20150101", "end": "20250611", "fields": "close"}
    plain = sim_client.get("/api/v1/klines", params=params).json()["data"]
    front = sim_client.get("/api/v1/klines", params={**params, "dividend_type": "front"}).json()["data"]
    assert len(plain) == len(front) > 2000
    assert plain[-1]["close"] == front[-1]["close"]
    assert front[0]["close"] < plain[0]["close"]  # cash dividends lower front-adjusted history


@pytest.mark.parametrize("spelling", ["sh600000", "600000.XSHG", "600000", "SH600000", " 600000.sh "])
def test_code_spellings_normalize(sim_client: TestClient, spelling: str) -> None:
    body = sim_client.get("/api/v1/klines", params={"codes": spelling, "count": 1}).json()
    assert body["codes"] == ["600000.SH"] and body["data"][0]["code"] == "600000.SH"


def test_unknown_code_is_a_404_naming_it(sim_client: TestClient) -> None:
    response = sim_client.get("/api/v1/klines", params={"codes": "600000.SH,688001.SH", "count": 1})
    assert response.status_code == 404
    err = error(response)
    assert err["code"] == "unknown_code" and "688001.SH" in err["message"]
    assert err["details"]["codes"] == ["688001.SH"]
    one = sim_client.get("/api/v1/klines/688001.SH")
    assert one.status_code == 404 and "688001.SH" in error(one)["message"]


def test_bad_period_is_a_422_envelope(sim_client: TestClient) -> None:
    response = sim_client.get("/api/v1/klines", params={"codes": "600000.SH", "period": "2m"})
    assert response.status_code == 422
    err = error(response)
    assert err["code"] == "invalid_period" and "period" in err["message"]
    assert err["details"][0]["loc"] == ["query", "period"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"codes": "700001"}, "ambiguous_code"),
        ({"codes": "60000.SH"}, "invalid_code"),
        ({"codes": "600000.HK"}, "invalid_code"),
        ({"codes": ""}, "invalid_code"),
        ({"codes": "600000.SH", "start": "2025-13-01"}, "invalid_date"),
        ({"codes": "600000.SH", "start": "20250105", "end": "20250101"}, "invalid_date"),
        ({"codes": "600000.SH", "start": "18990101"}, "invalid_date"),
        ({"codes": "600000.SH", "fields": "close,bogus"}, "invalid_field"),
        ({"codes": "600000.SH", "count": 0}, "validation_error"),
        ({"codes": "600000.SH", "dividend_type": "forward"}, "validation_error"),
        (
            {"codes": "600000.SH,000001.SZ,600519.SH,300750.SZ", "period": "1m", "start": "20150101"},
            "too_large",
        ),
        ({"codes": ",".join(f"{600000 + i}.SH" for i in range(501))}, "too_large"),
    ],
)
def test_bad_input_is_a_422_never_a_500(sim_client: TestClient, params: dict[str, str], code: str) -> None:
    response = sim_client.get("/api/v1/klines", params=params)
    assert response.status_code == 422, response.text
    assert error(response)["code"] == code


def test_nan_becomes_null(sim_client: TestClient) -> None:
    # A suspended stock with fill_data=false has bars without prices: null in JSON, never NaN or a 500.
    detail = xtdata().get_instrument_detail("001381.SZ")
    assert detail["InstrumentStatus"] > 0  # suspended for some sessions in the simulated market
    response = sim_client.get(
        "/api/v1/klines/001381.SZ", params={"count": 10, "fill_data": "false", "fields": "close"}
    )
    assert response.status_code == 200
    closes = [r["close"] for r in response.json()["data"]]
    assert None in closes and all(c is None or c > 0 for c in closes)


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshot_of_codes_is_normalized(sim_client: TestClient) -> None:
    body = sim_client.get("/api/v1/snapshots", params={"codes": ["600000.SH", "sz000001"]}).json()
    assert body["from_cache"] is True and body["missing"] == []
    first, second = body["data"]
    assert first["code"] == "600000.SH" and second["code"] == "000001.SZ"
    raw = xtdata().get_full_tick(["000001.SZ"])["000001.SZ"]
    assert second["volume"] == raw["volume"] * 100
    assert second["bid_volume"][0] == raw["bidVol"][0] * 100
    assert second["ts"] == raw["time"] and second["time"] == "2025-06-12T10:30:00+08:00"
    assert len(second["ask_price"]) == 5 and second["phase"] == 13


def test_whole_a_share_market_from_the_cache(sim_client: TestClient) -> None:
    members = sim_client.get("/api/v1/sectors/沪深A股/members").json()["data"]
    response = sim_client.get("/api/v1/snapshots", params={"sector": "沪深A股"})
    body = response.json()
    assert body["from_cache"] is True
    assert body["count"] + len(body["missing"]) == len(members) > 4000
    # a suspended member has its flat tick (phase 1): no member of the sector is without a snapshot
    assert body["missing"] == [] and {r["code"] for r in body["data"]} == set(members)
    assert 0 < sum(1 for r in body["data"] if r["phase"] == 1) < 100
    assert float(response.headers["server-timing"].split("dur=")[1]) > 0  # timed by bench/, not here


def test_snapshot_of_markets_filtered_by_kind(sim_client: TestClient) -> None:
    body = sim_client.get(
        "/api/v1/snapshots", params={"markets": "SH,SZ", "kinds": "etf", "fields": "last_price"}
    ).json()
    assert body["count"] > 100
    assert all(r["code"][:3] in ("510", "512", "513", "515", "588", "159") for r in body["data"])
    assert list(body["data"][0]) == ["code", "ts", "time", "last_price"]
    arrow = sim_client.get("/api/v1/snapshots", params={"codes": "600000.SH"}, headers={"Accept": ARROW})
    table = ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.schema.field("bid_price").type == pa.list_(pa.float64())
    assert table.column("code").to_pylist() == ["600000.SH"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "bad_request"),
        ({"codes": "600000.SH", "sector": "沪深A股"}, 400, "bad_request"),
        ({"sector": "不存在的板块"}, 404, "not_found"),
        ({"markets": "SH,HK"}, 422, "validation_error"),
        ({"codes": "688001.SH"}, 404, "unknown_code"),
        ({"codes": "600000.SH", "fields": "price"}, 422, "invalid_field"),
    ],
)
def test_snapshot_input_errors(
    sim_client: TestClient, params: dict[str, str], status: int, code: str
) -> None:
    response = sim_client.get("/api/v1/snapshots", params=params)
    assert response.status_code == status and error(response)["code"] == code


def test_a_suspended_code_has_a_flat_snapshot(sim_client: TestClient) -> None:
    """QMT keeps a tick for a suspended stock (xtquant-api.md 3.4): phase 1, the last price at the previous
    close, no open/high/low, no volume, an empty book. It is not missing."""
    assert xtdata().get_instrument_detail("001381.SZ")["InstrumentStatus"] > 0
    body = sim_client.get("/api/v1/snapshots", params={"codes": "001381.SZ,600000.SH"}).json()
    assert body["missing"] == [] and [r["code"] for r in body["data"]] == ["001381.SZ", "600000.SH"]
    row = body["data"][0]
    assert row["phase"] == 1 and body["data"][1]["phase"] == 13
    assert row["last_price"] == row["pre_close"] == xtdata().get_instrument_detail("001381.SZ")["PreClose"]
    assert row["open"] is row["high"] is row["low"] is None
    assert row["volume"] == 0 and row["amount"] == 0 and row["trades"] == 0
    assert row["bid_price"] == row["ask_price"] == [None] * 5
    assert row["time"] == "2025-06-12T09:15:00+08:00", "its one snapshot of the day, at the opening auction"


def test_sector_snapshot_json_has_no_nan(sim_client: TestClient) -> None:
    text = sim_client.get("/api/v1/snapshots", params={"sector": "科创板"}).text
    assert "NaN" not in text and "Infinity" not in text
    assert np.isfinite(sim_client.get("/api/v1/snapshots", params={"sector": "科创板"}).json()["count"])
