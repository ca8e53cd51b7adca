"""With trading off the WebSocket has no trading channel (a module of its own: the app it starts binds a
new simulated market, which must not happen under another module's running gateway)."""

from __future__ import annotations

from qmtgate.api.app import create_app


def test_no_trading_channel_when_trading_is_off() -> None:
    from fastapi.testclient import TestClient

    try:  # tests/ on sys.path
        from api.sim_support import sim_settings
    except ImportError:
        from tests.api.sim_support import sim_settings  # type: ignore[no-redef]

    with TestClient(create_app(sim_settings())) as client, client.websocket_connect("/api/v1/ws") as ws:
        hello = ws.receive_json()
        assert hello["channels"] == []
        ws.send_json({"op": "subscribe", "channel": "trading"})
        error = ws.receive_json()
        assert error["type"] == "error" and error["error"]["code"] == "trading_disabled"
        # orders over the socket are refused the same way, and nothing is placed
        body = {"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0, "client_order_id": "off-1"}
        ws.send_json({"op": "place", "id": 1, "body": body})
        reply = ws.receive_json()
        assert reply["type"] == "reply" and reply["id"] == 1 and reply["op"] == "place"
        assert reply["status"] == 404 and reply["error"]["code"] == "trading_disabled"
        ws.send_json({"op": "cancel", "id": 2, "body": {"order_id": 1}})
        reply = ws.receive_json()
        assert reply["id"] == 2 and reply["error"]["code"] == "trading_disabled"
        assert client.post("/api/v1/trading/orders", json=body).status_code == 404  # REST: no route
