from __future__ import annotations

import time

from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import FakeXtdata, make_source


def test_live_names_the_source_without_touching_it(client: TestClient, fake: FakeXtdata) -> None:
    calls_before = len(fake.calls)
    response = client.get("/api/v1/health/live")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["source"] == "simulated"
    assert abs(body["time_ms"] - time.time() * 1000) < 60_000
    assert response.headers["x-qmtgate-source"] == "simulated"
    assert len(fake.calls) == calls_before


def test_ready_reports_state_and_queues(client: TestClient) -> None:
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
