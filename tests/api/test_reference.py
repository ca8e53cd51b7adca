"""Sectors, instruments, dividends, calendar and download jobs over the simulated market."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from .sim_support import xtdata


def error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# -- sectors and instruments -----------------------------------------------------------------------


def test_sectors_and_members(sim_client: TestClient) -> None:
    sectors = sim_client.get("/api/v1/sectors").json()
    assert sectors["source"] == "simulated" and "沪深A股" in sectors["data"]
    assert sectors["count"] == len(sectors["data"])
    members = sim_client.get("/api/v1/sectors/科创板/members").json()
    assert members["sector"] == "科创板" and all(c.startswith("688") for c in members["data"])
    missing = sim_client.get("/api/v1/sectors/no-such-sector/members")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"


def test_instrument_details_are_normalized(sim_client: TestClient) -> None:
    body = sim_client.get("/api/v1/instruments", params={"codes": "600000.SH,000001.SZ,510300.SH"}).json()
    rows = {row["code"]: row for row in body["data"]}
    pufa = rows["600000.SH"]
    raw = xtdata().get_instrument_detail("600000.SH")
    assert pufa["name"] == raw["InstrumentName"] and pufa["exchange"] == "SH" and pufa["kind"] == "stock"
    assert pufa["limit_up"] == raw["UpStopPrice"] and pufa["pre_close"] == raw["PreClose"]
    assert pufa["delist_date"] is None  # 99999999 sentinel
    assert pufa["trading_day"] == "2025-06-12" and pufa["list_date"] == "1990-12-19"
    assert rows["510300.SH"]["kind"] == "etf" and rows["510300.SH"]["price_tick"] == 0.001
    one = sim_client.get("/api/v1/instruments/sh600000").json()
    assert one["data"] == pufa
    typed = sim_client.get("/api/v1/instruments/000300.SH/type").json()
    assert typed == {"source": "simulated", "code": "000300.SH", "kind": "index", "type": {"index": True}}
    unknown = sim_client.get("/api/v1/instruments", params={"codes": "600000.SH,688001.SH"})
    assert unknown.status_code == 404 and error(unknown)["details"]["codes"] == ["688001.SH"]


def test_dividends(sim_client: TestClient) -> None:
    body = sim_client.get("/api/v1/dividends/600000.SH").json()
    assert body["code"] == "600000.SH" and body["count"] > 3
    first = body["data"][0]
    assert set(first) == {
        "code", "ts", "time", "ex_date", "cash", "bonus_shares", "transfer_shares", "rights_shares",
        "rights_price", "factor",
    }  # fmt: skip
    assert first["ex_date"] == first["time"][:10] and first["cash"] > 0 and first["factor"] > 1
    dates = [row["ex_date"] for row in body["data"]]
    assert dates == sorted(dates) and dates[-1] <= "2025-06-12"
    ranged = sim_client.get(
        "/api/v1/dividends/600000.SH", params={"start": "20200101", "end": "20221231"}
    ).json()
    assert all("2020" <= row["ex_date"][:4] <= "2022" for row in ranged["data"])


# -- calendar --------------------------------------------------------------------------------------


def test_trading_dates_and_holidays(sim_client: TestClient) -> None:
    days = sim_client.get(
        "/api/v1/calendar/trading-dates", params={"start": "20250101", "end": "20250110"}
    ).json()
    assert [d["date"] for d in days["data"]] == [
        "2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10",
    ]  # fmt: skip
    assert days["data"][0]["time"] == "2025-01-02T00:00:00+08:00"
    last = sim_client.get("/api/v1/calendar/trading-dates", params={"count": 3}).json()["data"]
    assert [d["date"] for d in last] == ["2025-06-10", "2025-06-11", "2025-06-12"]  # up to today by default
    holidays = sim_client.get(
        "/api/v1/calendar/holidays", params={"start": "20251001", "end": "20251008"}
    ).json()
    assert [d["date"] for d in holidays["data"]] == [
        "2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("day", "n", "trading", "previous", "following"),
    [
        ("20250531", 1, False, "2025-05-30", "2025-06-03"),
        ("2025-06-12", 1, True, "2025-06-11", "2025-06-13"),
        ("20250612", 5, True, "2025-06-05", "2025-06-19"),
        ("20251001", 1, False, "2025-09-30", "2025-10-09"),
    ],
)
def test_previous_and_next_trading_day(
    sim_client: TestClient, day: str, n: int, trading: bool, previous: str, following: str
) -> None:
    body = sim_client.get(f"/api/v1/calendar/days/{day}", params={"n": n}).json()
    assert body["is_trading_day"] is trading
    assert (body["previous_trading_day"], body["next_trading_day"]) == (previous, following)


def test_calendar_rejects_days_it_cannot_know(sim_client: TestClient) -> None:
    response = sim_client.get("/api/v1/calendar/days/20990101")
    assert response.status_code == 422 and error(response)["code"] == "invalid_date"
    assert sim_client.get("/api/v1/calendar/days/notadate").status_code == 422


# -- download jobs ---------------------------------------------------------------------------------


def wait_finished(client: TestClient, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/downloads/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_download_job_runs_and_verifies(sim_client: TestClient) -> None:
    code = "300750.SZ"
    assert xtdata().get_market_data_ex([], [code], "5m", "20250602", "20250611235959")[code].empty
    response = sim_client.post(
        "/api/v1/downloads", json={"codes": [code, "600519.SH"], "period": "5m", "start": "20250602"}
    )
    assert response.status_code == 202
    job = response.json()
    assert job["state"] in ("queued", "running") and job["codes"] == 2 and job["source"] == "simulated"
    done = wait_finished(sim_client, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == {"finished": 2, "total": 2, "percent": 100.0, "code": None}
    verification = done["verification"]
    assert verification["with_data"] == 2 and verification["missing_count"] == 0
    assert verification["end"] == "2025-06-11"  # the last complete session
    assert not xtdata().get_market_data_ex([], [code], "5m", "20250602", "20250611235959")[code].empty
    listed = sim_client.get("/api/v1/downloads").json()
    assert listed["data"][0]["id"] == job["id"]


def test_a_range_before_listing_is_explained_not_failed(sim_client: TestClient) -> None:
    job = sim_client.post(
        "/api/v1/downloads",
        json={"codes": ["001381.SZ"], "period": "1d", "start": "20200101", "end": "20201231"},
    ).json()
    done = wait_finished(sim_client, job["id"])
    assert done["state"] == "succeeded", done
    assert done["verification"]["empty"] == ["001381.SZ"] and done["verification"]["with_data"] == 0


def test_cancel_and_errors(sim_client: TestClient) -> None:
    source = sim_client.app.state.source  # type: ignore[attr-defined]
    jobs = sim_client.app.state.services.jobs  # type: ignore[attr-defined]
    # Hold the job queue: a job that cannot start until the executor is free.
    first = sim_client.post("/api/v1/downloads", json={"codes": ["000002.SZ"], "period": "1d"}).json()
    second = sim_client.post("/api/v1/downloads", json={"codes": ["000004.SZ"], "period": "1d"}).json()
    cancelled = sim_client.delete(f"/api/v1/downloads/{second['id']}").json()
    assert cancelled["state"] in ("cancelled", "succeeded")  # it may already have run on a fast machine
    assert wait_finished(sim_client, first["id"])["state"] == "succeeded"
    assert jobs.get(second["id"]).state.finished and source.status().ready
    missing = sim_client.get("/api/v1/downloads/dl-nope")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"
    no_start = sim_client.post("/api/v1/downloads", json={"codes": ["600000.SH"], "period": "1m"})
    assert no_start.status_code == 422 and error(no_start)["code"] == "invalid_date"
    bad_period = sim_client.post("/api/v1/downloads", json={"codes": ["600000.SH"], "period": "2m"})
    assert bad_period.status_code == 422 and error(bad_period)["code"] == "invalid_period"
    unknown = sim_client.post("/api/v1/downloads", json={"codes": ["688001.SH"], "period": "1d"})
    assert unknown.status_code == 404 and "688001.SH" in error(unknown)["message"]
