from __future__ import annotations

import time

from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import FakeXtdata, make_source


def settle(fake: FakeXtdata, quiet: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the start-up background work (instrument index, calendar) has stopped calling the SDK."""
    deadline = time.monotonic() + limit
    seen, since = len(fake.calls), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the gateway kept calling the SDK after start"
        time.sleep(0.02)
        if len(fake.calls) != seen:
            seen, since = len(fake.calls), time.monotonic()


def test_live_names_the_source_without_touching_it(client: TestClient, fake: FakeXtdata) -> None:
    settle(fake)
    calls_before = len(fake.calls)
    response = client.get("/api/v1/health/live")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["source"] == "simulated"
    assert abs(body["time_ms"] - time.time() * 1000) < 60_000
    assert response.headers["x-qmtgate-source"] == "simulated"
    assert [c.name for c in fake.calls[calls_before:]] == []


def test_ready_reports_state_and_queues(client: TestClient, fake: FakeXtdata) -> None:
    settle(fake)
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["state"] == "ready" and body["connected"] is True
    assert body["source"] == "simulated"
    assert body["executor"]["queue_depths"] == {"control": 0, "snapshot": 0, "history": 0, "download": 0}


def test_ready_is_503_while_qmt_is_down(fake: FakeXtdata) -> None:
    fake.down = True
    app = create_app(Settings(source="xtquant"), make_source(fake, name="xtquant"))
    with TestClient(app) as client:
        response = client.get("/api/v1/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False and body["state"] == "unavailable" and body["source"] == "xtquant"
        assert "connect failed" in body["message"]
        assert client.get("/api/v1/health/live").status_code == 200


def test_capabilities(client: TestClient) -> None:
    body = client.get("/api/v1/capabilities").json()
    assert body["source"] == "simulated"
    assert body["markets"] == ["SH", "SZ", "BJ"]
    assert "1d" in body["periods"] and "tick" in body["periods"]
    assert body["features"]["snapshot"] is True and body["features"]["trading"] is False
    assert "application/vnd.apache.arrow.stream" in body["formats"]


def test_lifespan_starts_and_stops_the_source(settings: Settings, fake: FakeXtdata) -> None:
    source = make_source(fake)
    app = create_app(settings, source)
    with TestClient(app):
        assert app.state.source is source
        assert source.status().ready
    assert app.state.source is None
    assert source.status().state.value == "stopped"
    assert source.executor.state.value == "stopped"


def test_app_builds_its_own_source_from_settings(fake: FakeXtdata) -> None:
    modules = {"qmtgate.sim": object(), "qmtgate.sim.xtquant.xtdata": fake}

    def import_module(name: str) -> object:
        if name not in modules:
            raise ModuleNotFoundError(name)
        return modules[name]

    app = create_app(Settings(source="auto"), import_module=import_module)
    with TestClient(app) as client:
        assert client.get("/api/v1/health/live").json()["source"] == "simulated"
        assert client.get("/api/v1/health/ready").status_code == 200


def test_openapi_is_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/health/live" in schema["paths"]
    assert "/api/v1/capabilities" in schema["paths"]


def test_openapi_documents_every_route_with_units_and_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/klines",
        "/api/v1/klines/{code}",
        "/api/v1/snapshots",
        "/api/v1/sectors/{sector}/members",
        "/api/v1/instruments",
        "/api/v1/dividends/{code}",
        "/api/v1/calendar/trading-dates",
        "/api/v1/calendar/days/{date}",
        "/api/v1/downloads/{job_id}",
        "/api/history",
        "/api/batch_history",
        "/api/full_tick",
        "/api/sector_stocks",
        "/api/instrument_detail",
        "/api/download",
        "/api/get_trading_dates",
        "/stock_list",
        "/instrument_detail",
        "/hist_kline",
        "/latest_market",
        "/full_market",
    ):
        assert path in paths, path
    components = schema["components"]["schemas"]
    row = components["KlineRow"]["properties"]
    assert "SHARES" in row["volume"]["description"] and "yuan" in row["amount"]["description"]
    assert "UTC" in row["ts"]["description"] and "Asia/Shanghai" in row["time"]["description"]
    assert components["KlineResponse"]["examples"]
    klines = paths["/api/v1/klines"]["get"]
    assert list(klines["responses"]["200"]["content"]) == [
        "application/json",
        "application/vnd.apache.arrow.stream",
        "text/csv",
    ]
    assert components["KlinePeriod"]["enum"] == [
        "1m",
        "5m",
        "15m",
        "30m",
        "60m",
        "1h",
        "1d",
        "1w",
        "1mon",
        "1q",
        "1hy",
        "1y",
    ]
    codes = next(p for p in klines["parameters"] if p["name"] == "codes")
    assert codes["examples"]
    assert klines["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorEnvelope"
    )
