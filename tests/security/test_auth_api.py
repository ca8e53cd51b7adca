"""Auth on the real app (fake xtdata): 401 without a key everywhere but liveness, scopes, keys in URLs,
lockout, rate limits, per-key quotas, and WebSocket authentication."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.support import FakeXtdata
from qmtgate.api.app import create_app
from qmtgate.config import Settings

from .support import Keys, auth_app, header, make_keys

LIVE = "/api/v1/health/live"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def app(keys: Keys) -> FastAPI:
    # many keyless requests below: keep them under the unauthenticated bucket (test_abuse.py tests it)
    return auth_app(keys, auth={"lockout_failures": 5}, rate_limit={"unauthenticated_burst": 10_000})


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "600000.SH", path)


def _http_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented operation plus the undocumented ones (docs UI, metrics)."""
    out = [
        (method.upper(), _concrete(path))
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    ]
    return [*out, ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/metrics")]


def test_every_route_but_liveness_needs_a_key(app: FastAPI, client: TestClient) -> None:
    routes = [*_http_routes(app), ("GET", "/no/such/route")]
    assert len(routes) > 30
    for method, path in routes:
        response = client.request(method, path, headers={"Accept": "application/json"})
        if path == LIVE:
            assert response.status_code == 200
            continue
        assert response.status_code == 401, (method, path, response.status_code)
        body = response.json()
        assert body["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/api/v1/ws", "/ws/realtime"):  # a key is required before any data
        with client.websocket_connect(path) as ws:
            ws.send_text(json.dumps({"op": "ping"}))
            msg = json.loads(ws.receive_text())
            assert msg["error"]["code"] == "unauthorized"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 4401


def test_a_read_key_reads_but_cannot_reach_admin_routes(client: TestClient, keys: Keys) -> None:
    read = header(keys.read)
    assert client.get("/api/v1/snapshots", params={"codes": "600000.SH"}, headers=read).status_code == 200
    assert client.get("/api/v1/downloads", headers=read).status_code == 200
    assert client.get("/api/v1/health/ready", headers=read).status_code == 200
    # a reader fills QMT's history cache as every xtquant script does (issue #16 item 5)
    started = client.post("/api/v1/downloads", json={"codes": ["600000.SH"]}, headers=read)
    assert started.status_code == 202, started.text
    compat = client.post("/api/download", json={"stock": "600000.SH", "period": "1d"}, headers=read)
    assert compat.status_code == 200, compat.text
    for method, path, body in [
        ("DELETE", f"/api/v1/downloads/{started.json()['id']}", None),  # jobs are not per key: admin
        ("GET", "/metrics", None),
    ]:
        response = client.request(method, path, json=body, headers=read)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"
        assert response.json()["error"]["details"]["required"] == "admin"
    admin = header(keys.admin)
    assert client.post("/api/v1/downloads", json={"codes": ["600000.SH"]}, headers=admin).status_code == 202
    assert client.get("/metrics", headers=admin).status_code == 200
    assert client.get("/api/v1/snapshots", params={"codes": "600000.SH"}, headers=admin).status_code == 200


def test_a_stream_only_key_cannot_read_rest(client: TestClient, keys: Keys) -> None:
    response = client.get("/api/v1/sectors", headers=header(keys.stream))
    assert response.status_code == 403


def test_bearer_header_works_and_a_wrong_key_is_401(client: TestClient, keys: Keys) -> None:
    ok = client.get("/api/v1/capabilities", headers={"Authorization": f"Bearer {keys.read.token}"})
    assert ok.status_code == 200
    bad = client.get("/api/v1/capabilities", headers={"X-API-Key": keys.read.token + "x"})
    assert bad.status_code == 401
    assert bad.json()["error"]["message"] == "invalid or revoked API key"


@pytest.mark.parametrize("param", ["api_key", "key", "token", "access_token", "apikey"])
def test_a_key_in_the_query_string_is_refused(client: TestClient, keys: Keys, param: str) -> None:
    for path in ("/api/v1/capabilities", LIVE, "/api/history"):
        response = client.get(path, params={param: keys.read.token}, headers=header(keys.read))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "key_in_url"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/api/v1/ws?{param}={keys.stream.token}"),
    ):
        pass


def test_a_key_in_the_query_string_is_refused_with_auth_off() -> None:
    with TestClient(create_app(Settings(source="sim"), None), raise_server_exceptions=False) as c:
        response = c.get("/api/v1/health/live", params={"api_key": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "key_in_url"


def test_repeated_bad_keys_lock_the_address_out(keys: Keys) -> None:
    app = auth_app(keys, auth={"lockout_failures": 3, "lockout_seconds": 60})
    with TestClient(app, raise_server_exceptions=False) as c:
        for _ in range(3):
            assert c.get("/api/v1/capabilities", headers={"X-API-Key": "qg_00000000_nope"}).status_code == 401
        locked = c.get("/api/v1/capabilities", headers=header(keys.read))  # even a good key
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "locked_out"
        assert 55 <= int(locked.headers["Retry-After"]) <= 60
        assert c.get(LIVE).status_code == 200  # liveness stays open for supervisors


def test_429_with_retry_after_when_the_bucket_is_empty(client: TestClient, keys: Keys) -> None:
    small = header(keys.quota)  # rate 2/s, burst 3
    statuses = [client.get("/api/v1/capabilities", headers=small).status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    limited = client.get("/api/v1/capabilities", headers=small)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.json()["error"]["details"]["limit"] == "key"
    assert int(limited.headers["Retry-After"]) >= 1


def test_per_address_bucket(keys: Keys) -> None:
    app = auth_app(keys, rate_limit={"per_address_rate": 1, "per_address_burst": 2})
    with TestClient(app, raise_server_exceptions=False) as c:
        codes = [c.get("/api/v1/capabilities", headers=header(keys.admin)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        last = c.get("/api/v1/capabilities", headers=header(keys.read))
        assert last.json()["error"]["details"]["limit"] == "address"


def test_per_key_batch_quota(keys: Keys) -> None:
    app = auth_app(keys)
    with TestClient(app, raise_server_exceptions=False) as c:
        small = header(keys.quota)
        ok = c.get("/api/v1/snapshots", params={"codes": "600000.SH,000001.SZ"}, headers=small)
        assert ok.status_code == 200
        big = c.get("/api/v1/snapshots", params={"codes": "600000.SH,000001.SZ,510300.SH"}, headers=small)
        assert big.status_code == 422
        assert big.json()["error"]["code"] == "too_large"
        assert big.json()["error"]["details"]["limit"] == 2


def test_websocket_header_and_first_message_auth(keys: Keys) -> None:
    fake = FakeXtdata()
    with TestClient(auth_app(keys, fake), raise_server_exceptions=False) as c:
        with c.websocket_connect("/api/v1/ws", headers=header(keys.stream)) as ws:
            assert json.loads(ws.receive_text())["type"] == "hello"
        with c.websocket_connect("/api/v1/ws") as ws:
            ws.send_text(json.dumps({"op": "auth", "key": keys.stream.token}))
            ack = json.loads(ws.receive_text())
            assert ack == {"type": "auth", "ok": True, "key_id": keys.stream.record.id, "scopes": ["stream"]}
            assert json.loads(ws.receive_text())["type"] == "hello"
        with c.websocket_connect("/api/v1/ws") as ws:  # a read key has no stream scope
            ws.send_text(json.dumps({"op": "auth", "key": keys.read.token}))
            assert json.loads(ws.receive_text())["error"]["code"] == "forbidden"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 4403
        with c.websocket_connect("/api/v1/ws") as ws:
            ws.send_text(json.dumps({"op": "auth", "key": "qg_00000000_wrong"}))
            assert json.loads(ws.receive_text())["error"]["code"] == "unauthorized"
        # a bad key in the handshake header is refused before the route runs
        with (
            pytest.raises(WebSocketDisconnect),
            c.websocket_connect("/api/v1/ws", headers={"X-API-Key": "qg_00000000_wrong"}),
        ):
            pass
        # the per-key stream quota (max_stream_codes=1)
        with c.websocket_connect("/api/v1/ws", headers=header(keys.quota)) as ws:
            assert json.loads(ws.receive_text())["type"] == "hello"
            ws.send_text(json.dumps({"op": "subscribe", "codes": ["600000.SH", "000001.SZ"]}))
            msg = json.loads(ws.receive_text())
            assert msg["type"] == "error" and msg["error"]["code"] == "too_many_codes"
            ws.send_text(json.dumps({"op": "subscribe", "codes": ["600000.SH"]}))
            assert json.loads(ws.receive_text())["type"] == "subscribed"


def test_compat_realtime_route_needs_a_stream_key(keys: Keys) -> None:
    with TestClient(auth_app(keys), raise_server_exceptions=False) as c:
        with c.websocket_connect("/ws/realtime") as ws:
            ws.send_text(json.dumps({"stocks": ["600000.SH"]}))
            assert json.loads(ws.receive_text())["error"]["code"] == "unauthorized"
        with c.websocket_connect("/ws/realtime") as ws:
            ws.send_text(json.dumps({"op": "auth", "key": keys.stream.token}))
            assert json.loads(ws.receive_text())["ok"] is True


def test_public_docs_and_metrics_settings(keys: Keys) -> None:
    app = auth_app(keys, auth={"public_docs": True}, metrics={"public": True})
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/api/v1/capabilities").status_code == 401
    spec = app.openapi()
    ops = spec["paths"]["/api/v1/klines"]["get"]
    assert {"401", "403", "429"} <= set(ops["responses"])
    assert "ApiKey" in spec["components"]["securitySchemes"]


def test_auth_off_by_default_keeps_everything_open() -> None:
    with TestClient(create_app(Settings(source="sim"), None), raise_server_exceptions=False) as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/openapi.json").status_code == 200
