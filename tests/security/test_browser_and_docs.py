"""Browser-facing protections and small input fixes (issue 17, items 7, 8 and 12).

- DNS rebinding: a ``Host`` the gateway does not serve is refused (400 ``host_not_allowed``), with auth off.
- Cross-origin pages: a WebSocket handshake (or request) with a foreign ``Origin`` is refused (403).
- The API docs need the ``read`` scope when auth is on.
- A blank date is a 422, not an assert.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api.support import FakeXtdata, LiveServer, make_source, start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.security.origin import HostOriginPolicy, host_name

from .support import Keys, auth_app, header, make_keys


def open_app(**web: Any) -> Any:
    """Auth off (the default), bound to loopback (the default), over the fake xtdata."""
    return create_app(Settings(source="sim", web=web), make_source(FakeXtdata()))


@pytest.fixture(scope="module")
def loopback_gateway() -> Iterator[LiveServer]:
    server = start_server(open_app())
    yield server
    server.stop()


# -- Host (DNS rebinding) ---------------------------------------------------------------------------------


def test_a_rebound_host_name_is_refused_on_loopback(loopback_gateway: LiveServer) -> None:
    url = loopback_gateway.url + "/api/v1/snapshots"
    port = loopback_gateway.url.rsplit(":", 1)[1]
    params = {"codes": "600000.SH"}
    evil = httpx.get(url, params=params, headers={"Host": f"rebind.evil.example:{port}"}, timeout=30)
    assert evil.status_code == 400
    assert evil.json()["error"]["code"] == "host_not_allowed"
    assert "items" not in evil.text and "600000" not in evil.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.8.9.10", "LOCALHOST."):
        response = httpx.get(url, params=params, headers={"Host": host}, timeout=30)
        assert response.status_code == 200, (host, response.text)
    with pytest.raises(InvalidStatus) as refused:  # the WebSocket handshake too
        connect(
            loopback_gateway.url.replace("http", "ws") + "/api/v1/ws",
            additional_headers={"Host": "rebind.evil.example"},
            open_timeout=30,
        )
    assert refused.value.response.status_code == 400


def test_host_rule() -> None:
    loopback = HostOriginPolicy("127.0.0.1", ["gw.example"], [])
    assert [loopback.host_allowed(h) for h in ("gw.example:8000", "a.localhost", "10.0.0.5", "evil.io")] == [
        True,
        True,
        False,
        False,
    ]
    assert loopback.host_allowed(None)  # HTTP/1.0 without Host: not a browser
    lan_any = HostOriginPolicy("0.0.0.0", [], [])
    assert lan_any.host_allowed("whatever.example") and lan_any.host_allowed("192.168.1.20:8000")
    lan_named = HostOriginPolicy("0.0.0.0", ["gw.lan"], [])
    assert lan_named.host_allowed("GW.lan:8000") and lan_named.host_allowed("192.168.1.20:8000")
    assert not lan_named.host_allowed("rebind.evil.example")
    assert HostOriginPolicy("127.0.0.1", ["*"], []).host_allowed("anything")
    assert host_name("[::1]:8000") == "::1" and host_name("Example.COM.:1") == "example.com"


def test_allowed_hosts_setting_admits_a_name() -> None:
    with TestClient(open_app(allowed_hosts=["testserver", "gw.example"])) as client:
        assert client.get("/api/v1/health/live", headers={"Host": "gw.example"}).status_code == 200
        refused = client.get("/api/v1/health/live", headers={"Host": "other.example"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "host_not_allowed"


# -- Origin (cross-origin pages) --------------------------------------------------------------------------


def test_a_cross_origin_websocket_is_refused(loopback_gateway: LiveServer) -> None:
    ws_url = loopback_gateway.url.replace("http", "ws")
    for path in ("/api/v1/ws", "/ws/realtime"):
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url + path, origin="http://evil.example", open_timeout=30)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"
    with connect(ws_url + "/api/v1/ws", origin=loopback_gateway.url, open_timeout=30) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"  # the gateway's own pages: same origin
    with connect(ws_url + "/api/v1/ws", open_timeout=30) as ws:  # not a browser: no Origin
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"
    cross = httpx.get(
        loopback_gateway.url + "/api/v1/health/ready", headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "origin_not_allowed"


def test_allowed_origins_setting_admits_a_dashboard() -> None:
    server = start_server(open_app(allowed_origins=["http://dash.lan:3000"]))
    try:
        ws_url = server.url.replace("http", "ws") + "/api/v1/ws"
        with connect(ws_url, origin="http://dash.lan:3000", open_timeout=30) as ws:  # type: ignore[arg-type]
            assert json.loads(ws.recv(timeout=30))["type"] == "hello"
        with pytest.raises(InvalidStatus):
            connect(ws_url, origin="http://dash.lan:3001", open_timeout=30)  # type: ignore[arg-type]
    finally:
        server.stop()
    assert HostOriginPolicy("127.0.0.1", [], ["*"]).origin_allowed("https://any.example", "127.0.0.1")
    assert not HostOriginPolicy("127.0.0.1", [], []).origin_allowed("null", "127.0.0.1:8000")


# -- docs scope -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


def test_docs_need_the_read_scope(keys: Keys) -> None:
    with TestClient(auth_app(keys), raise_server_exceptions=False) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            refused = client.get(path, headers=header(keys.stream))
            assert refused.status_code == 403, path
            assert refused.json()["error"]["code"] == "forbidden"
            assert refused.json()["error"]["details"]["required"] == "read"
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=header(keys.read)).status_code == 200, path
            assert client.get(path, headers=header(keys.admin)).status_code == 200, path


# -- blank dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["%20", "%09", "%E2%80%83", "%20%20"])
def test_a_blank_date_is_a_422_not_a_500(blank: str) -> None:
    with TestClient(open_app(allowed_hosts=["testserver"]), raise_server_exceptions=False) as client:
        response = client.get(f"/api/v1/calendar/days/{blank}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_date"


def test_a_binary_first_message_with_auth_on_is_an_unauthorized_error(keys: Keys) -> None:
    from starlette.websockets import WebSocketDisconnect

    with TestClient(auth_app(keys), raise_server_exceptions=False) as client:
        for path in ("/api/v1/ws", "/ws/realtime"):
            with client.websocket_connect(path) as ws:
                ws.send_bytes(b"\x00\x01")
                assert json.loads(ws.receive_text())["error"]["code"] == "unauthorized"
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text()
                assert closed.value.code == 4401
