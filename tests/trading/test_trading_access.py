"""Who may use the trading routes: they are absent when trading is off, need the ``trade`` scope (read,
stream and admin keys can do nothing), refuse with auth off unless the loopback setting is on, and
``MINIQMT_*`` environment names configure the lane. Connect failures are one clear reason each."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qmtgate.api.app import create_app
from qmtgate.config import Settings, TradingSettings
from qmtgate.security.keys import generate_key

from .conftest import ACCOUNT_ID, sim_settings, trading_settings

ROUTES = [
    ("get", "/api/v1/trading/status"),
    ("get", "/api/v1/trading/orders"),
    ("get", "/api/v1/trading/orders/abc"),
    ("get", "/api/v1/trading/trades"),
    ("get", "/api/v1/trading/positions"),
    ("get", "/api/v1/trading/asset"),
    ("post", "/api/v1/trading/orders"),
    ("post", "/api/v1/trading/cancel"),
    ("post", "/api/v1/trading/halt"),
    ("post", "/api/v1/trading/resume"),
    ("get", "/api/v1/trading/protections"),
    ("get", "/api/v1/trading/protections/0123456789"),
]
ORDER = {"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0, "client_order_id": "x1"}


def call(client: TestClient, method: str, path: str, token: str | None = None):
    headers = {"X-API-Key": token} if token else {}
    body = ORDER if path.endswith("/orders") and method == "post" else {"order_id": 1}
    if method == "get":
        return client.get(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def test_routes_do_not_exist_when_trading_is_off() -> None:
    client = TestClient(create_app(Settings(source="sim")), raise_server_exceptions=False)
    for method, path in ROUTES:
        r = call(client, method, path)
        assert r.status_code in (404, 405) and r.json()["error"]["code"] in (
            "not_found",
            "method_not_allowed",
        )
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/api/v1/trading/")]


def test_only_trade_keys_reach_trading_routes(tmp_path: Path) -> None:
    keys = {
        "read": generate_key("r", ["read"]),
        "stream": generate_key("s", ["stream"]),
        "admin": generate_key("a", ["admin"]),
        "trade": generate_key("t", ["trade"]),
        "trade_admin": generate_key("ta", ["trade", "admin"]),
    }
    settings = trading_settings(tmp_path / "a.sqlite", allow_loopback_without_auth=False).model_copy(
        update={"auth": Settings(auth={"keys": [k.record.model_dump() for k in keys.values()]}).auth}
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)  # no lifespan: no trader
    for name in ("read", "stream", "admin"):
        for method, path in ROUTES:
            r = call(client, method, path, keys[name].token)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (name, path)
    for method, path in ROUTES:
        r = call(client, method, path, None)
        assert r.status_code == 401
    # a trade key passes the scope check (the lane is not started here: 503), except halt/resume
    for method, path in ROUTES:
        r = call(client, method, path, keys["trade"].token)
        expected = 403 if path.endswith(("/halt", "/resume")) else 503
        assert r.status_code == expected, (path, r.text)
        r = call(client, method, path, keys["trade_admin"].token)
        assert r.status_code == 503, (path, r.text)


def test_auth_off_refuses_trading_unless_the_loopback_setting_is_on(tmp_path: Path) -> None:
    settings = trading_settings(tmp_path / "a.sqlite", allow_loopback_without_auth=False)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    for method, path in ROUTES:
        r = call(client, method, path)
        assert r.status_code == 403 and r.json()["error"]["details"] == {"required": "trade"}
    lan = trading_settings(tmp_path / "b.sqlite").model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(ValueError, match="loopback"):
        create_app(lan)


def test_miniqmt_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIQMT_ENABLED", "true")
    monkeypatch.setenv("MINIQMT_ACCOUNT_ID", "12345678")
    monkeypatch.setenv("MINIQMT_ACCOUNT_TYPE", "credit")
    monkeypatch.setenv("MINIQMT_USERDATA_PATH", r"D:\国金QMT\userdata_mini")
    t = Settings().trading
    assert (t.enabled, t.account_id, t.account_type, t.userdata_path) == (
        True,
        "12345678",
        "CREDIT",
        r"D:\国金QMT\userdata_mini",
    )
    assert TradingSettings(account_id="other").account_id == "other"  # explicit settings win
    monkeypatch.setenv("QMTGATE_TRADING__ACCOUNT_ID", "999")
    assert Settings().trading.account_id == "999"


@pytest.mark.slow  # each case waits out a connect retry
@pytest.mark.parametrize(
    ("trading", "reason"),
    [
        ({"account_id": "7770001"}, "account_not_found"),
        ({"account_type": "CREDIT"}, "account_type_mismatch"),
        ({"userdata_path": "/tmp/qmtgate-sim/userdata"}, "userdata_path_not_userdata_mini"),
    ],
)
def test_connect_failures_have_one_clear_reason(tmp_path: Path, trading: dict, reason: str) -> None:
    with TestClient(create_app(trading_settings(tmp_path / "a.sqlite", **trading))) as client:
        status = client.get("/api/v1/trading/status").json()
        assert status["connected"] is False and status["connect_error"]["reason"] == reason
        r = client.post("/api/v1/trading/orders", json=ORDER)
        assert r.status_code == 503 and r.json()["error"]["code"] == "trading_unavailable"
        assert r.json()["error"]["details"]["reason"] == reason


def test_the_simulator_trades_on_its_paper_account_when_none_is_named(tmp_path: Path) -> None:
    """``qmtgate serve --enable-trading`` on a fresh machine: no account id and no userdata path set, the
    simulator's one paper account is used and said (status, audit), and an order goes through."""
    settings = trading_settings(tmp_path / "a.sqlite", account_id="", userdata_path="")
    with TestClient(create_app(settings)) as client:
        status = client.get("/api/v1/trading/status").json()
        assert status["connected"] is True and status["connect_error"] is None
        assert status["account_id"] == ACCOUNT_ID and status["simulated"] is True
        latest = {**ORDER, "price_type": "latest", "price": 0, "client_order_id": "paper1"}
        r = client.post("/api/v1/trading/orders", json=latest)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        asset = client.get("/api/v1/trading/asset").json()
        assert asset["account_id"] == ACCOUNT_ID


def test_an_unnamed_account_is_refused_where_there_is_a_choice(tmp_path: Path) -> None:
    """Several paper accounts (as a real QMT may have): the gateway never picks one; it names them."""
    base = {"enabled": True, "account_id": "", "audit_path": str(tmp_path / "a.sqlite"),
            "allow_loopback_without_auth": True}  # fmt: skip
    settings = sim_settings(trading=base)
    settings = settings.model_copy(
        update={"sim": settings.sim.model_copy(update={"paper_accounts": ("8880001", "8880002")})}
    )
    with TestClient(create_app(settings)) as client:
        error = client.get("/api/v1/trading/status").json()["connect_error"]
        assert error["reason"] == "account_id_missing" and "8880001, 8880002" in error["message"]
        r = client.post("/api/v1/trading/orders", json=ORDER)
        assert r.status_code == 503 and r.json()["error"]["details"]["reason"] == "account_id_missing"


def test_only_a_chosen_simulator_gets_a_default_account() -> None:
    """A real QMT, and a Windows gateway that fell back to the simulator (``auto`` with QMT down), never
    trade an account nobody named; ``--source sim``, or a machine where xtquant cannot exist, may."""
    from qmtgate.source.trading.lane import settings_problem, simulator_chosen

    unnamed = TradingSettings(enabled=True, account_id="", userdata_path="")
    assert settings_problem(unnamed, simulated=False, paper_default=True).reason == "account_id_missing"
    fell_back = settings_problem(unnamed, simulated=True, paper_default=False)
    assert fell_back.reason == "account_id_missing" and "--source sim" in fell_back.message
    assert settings_problem(unnamed, simulated=True, paper_default=True) is None
    assert simulator_chosen(Settings(source="sim"), "Windows")
    assert not simulator_chosen(Settings(source="auto"), "Windows")
    assert simulator_chosen(Settings(source="auto"), "Linux") and simulator_chosen(Settings(), "Darwin")
