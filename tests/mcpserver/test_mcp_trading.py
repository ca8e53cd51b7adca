"""``qmtgate mcp`` trading tools against a live gateway that trades on the simulated paper broker, with API
keys on (docs/trading.md, docs/mcp.md): listed only with trading on both sides (the gateway trades for the
key, and ``--allow-trading``); placing takes a preview and a confirmation token; the gateway's risk checks,
idempotency and audit trail apply. The key comes from the environment and the gateway's scopes decide."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qmtgate.api.app import create_app
from qmtgate.config import AuthSettings
from qmtgate.security.keys import NewKey, generate_key

from .support import READ_TOOLS, TRADING_TOOLS, error_code, fails, http_client, http_server, ok, stdio_client

try:  # tests/ on sys.path
    from api.support import start_server
    from trading.conftest import ACCOUNT_ID, trading_settings
except ImportError:  # tests/ itself is a package
    from tests.api.support import start_server  # type: ignore[no-redef]
    from tests.trading.conftest import trading_settings  # type: ignore[no-redef]


@dataclass
class Gateway:
    url: str
    app: FastAPI
    keys: dict[str, NewKey]

    def env(self, key: str = "trade") -> dict[str, str]:
        """What the MCP server gets: the key in the environment, never on its command line."""
        return {"QMTGATE_API_KEY": self.keys[key].token}

    def orders(self) -> list[dict[str, Any]]:
        """The gateway's own orders query (GET /api/v1/trading/orders), not the MCP tool."""
        headers = {"X-API-Key": self.keys["trade"].token}
        r = httpx.get(self.url + "/api/v1/trading/orders", headers=headers, timeout=30)
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Trading on the simulated paper broker, API keys on: a read key and a read+trade key."""
    keys = {
        "read": generate_key("mcp-reader", ["read"]),
        "trade": generate_key("mcp-trader", ["read", "trade"]),
    }
    audit = tmp_path_factory.mktemp("mcp-trading") / "audit.sqlite"
    settings = trading_settings(
        audit,
        allow_loopback_without_auth=False,
        risk={"max_orders_per_second": 1000},
    ).model_copy(update={"auth": AuthSettings(keys=[k.record for k in keys.values()])})
    app = create_app(settings)
    server = start_server(app)
    try:
        yield Gateway(server.url, app, keys)
    finally:
        server.stop()


def audit_kinds(app: FastAPI, coid: str) -> list[str]:
    return [row["kind"] for row in app.state.trading.audit.rows(coid)]


def test_no_trading_tools_without_allow_trading(gateway: Gateway) -> None:
    url = gateway.url
    before = gateway.orders()

    async def scenario() -> None:
        async with stdio_client(url, env=gateway.env()) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == READ_TOOLS
            assert "Unknown tool" in await fails(
                client, "place_order", {"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0}
            )

    asyncio.run(scenario())
    assert gateway.orders() == before


def test_two_step_place_over_stdio(gateway: Gateway) -> None:
    url, app = gateway.url, gateway.app
    code = "600519.SH"

    async def scenario() -> None:
        async with stdio_client(url, "--allow-trading", env=gateway.env()) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == READ_TOOLS | TRADING_TOOLS
            assert tools["place_order"].annotations.destructive_hint
            assert "confirm_token" in tools["place_order"].input_schema["properties"]

            status = await ok(client, "get_trading_status")
            assert status["connected"] and not status["halted"] and status["account_id"] == ACCOUNT_ID
            cash = (await ok(client, "get_asset"))["cash"]
            quote = (await ok(client, "get_quote", {"codes": [code]}))["rows"][0]
            price = quote["ask1"]
            order = {"code": "600519", "side": "buy", "volume": 100, "price": price}
            before = gateway.orders()

            # step 1: a preview, nothing sent
            preview = await ok(client, "place_order", order)
            assert preview["status"] == "preview" and preview["sent"] is False
            assert preview["order"] == {
                "code": code, "side": "buy", "volume": 100, "price_type": "limit", "price": price,
            }  # fmt: skip
            assert preview["instrument"]["name"] == "贵州茅台" and preview["quote"]["ask1"] == price
            assert preview["estimated_value"] == pytest.approx(price * 100)
            assert preview["cash_available"] == cash and preview["warnings"] == []
            assert preview["check"] == {"passed": True, "rule": None}
            token = preview["confirm_token"]
            assert gateway.orders() == before

            # a wrong token, or the right token on another order, places nothing
            assert error_code(await fails(client, "place_order", {**order, "confirm_token": "x" * 20})) == (
                "confirmation_invalid"
            )
            changed = {**order, "volume": 200, "confirm_token": token}
            assert error_code(await fails(client, "place_order", changed)) == "confirmation_mismatch"
            assert gateway.orders() == before

            # step 2: the same arguments with the token place exactly one order
            placed = await ok(client, "place_order", {**order, "confirm_token": token})
            assert placed["sent"] is True and placed["status"] == "accepted" and placed["order_id"] > 0
            coid = placed["client_order_id"]
            after = gateway.orders()
            assert len(after) == len(before) + 1
            (mine,) = [o for o in after if o["order_remark"] == coid]
            assert (
                mine["stock_code"] == code
                and mine["order_volume"] == 100
                and mine["order_id"] == placed["order_id"]
            )
            rows = app.state.trading.audit.rows(coid)
            kinds = [row["kind"] for row in rows]
            assert "request.place" in kinds and "response.place" in kinds
            request = next(row for row in rows if row["kind"] == "request.place")
            assert request["payload"]["strategy_name"] == "qmtgate-mcp"

            # confirming again is answered from the gateway's idempotency ledger: still one order
            again = await ok(client, "place_order", {**order, "confirm_token": token})
            assert again["replayed"] is True and again["order_id"] == placed["order_id"]
            assert len(gateway.orders()) == len(after)
            listed = await ok(client, "get_orders")
            assert coid in [o["order_remark"] for o in listed["rows"]]

            # the gateway's risk checks apply to a confirmed order: above the up limit
            limit_up = preview["instrument"]["limit_up"]
            high = {**order, "price": round(limit_up + 1, 2)}
            risky = await ok(client, "place_order", high)
            assert risky["check"] == {"passed": False, "rule": "price_limit"}  # the gateway's own verdict
            assert any("price_limit" in w and str(limit_up) in w for w in risky["warnings"])
            text = await fails(client, "place_order", {**high, "confirm_token": risky["confirm_token"]})
            assert error_code(text) == "risk_refused" and "price_limit" in text
            # a sell with no position: warned in the preview, refused by the gateway
            sell = {"code": "600036.SH", "side": "sell", "volume": 100, "price_type": "market"}
            sp = await ok(client, "place_order", sell)
            assert sp["check"]["rule"] == "insufficient_position" and any("T+1" in w for w in sp["warnings"])
            text = await fails(client, "place_order", {**sell, "confirm_token": sp["confirm_token"]})
            assert error_code(text) == "risk_refused" and "insufficient_position" in text
            assert len(gateway.orders()) == len(after)

            # bad arguments are tool errors, before anything is previewed
            assert "volume" in await fails(client, "place_order", {**order, "volume": 0})
            assert "side" in await fails(client, "place_order", {**order, "side": "short"})
            no_price = {"code": code, "side": "buy", "volume": 100}
            assert error_code(await fails(client, "place_order", no_price)) == "bad_request"
            assert error_code(await fails(client, "place_order", {**order, "code": "abc"})) == "invalid_code"

            # the other trading tools
            assert (await ok(client, "get_positions"))["count"] >= 0
            assert (await ok(client, "get_trades"))["count"] >= 0
            assert error_code(await fails(client, "cancel_order", {})) == "bad_request"
            assert "client_order_id" in await fails(client, "cancel_order", {"client_order_id": "bad id!"})
            # a resting buy (far below the market) is cancelable; the filled one is not
            low = {**order, "price": round(preview["instrument"]["limit_down"] + 1, 2)}
            resting = await ok(client, "place_order", low)
            rest = await ok(client, "place_order", {**low, "confirm_token": resting["confirm_token"]})
            assert rest["status"] == "accepted"
            cancel = await ok(client, "cancel_order", {"client_order_id": rest["client_order_id"]})
            assert cancel["order_id"] == rest["order_id"]
            assert "request.cancel" in audit_kinds(app, rest["client_order_id"])
            text = await fails(client, "cancel_order", {"order_id": placed["order_id"]})
            assert error_code(text) == "cancel_refused"

    asyncio.run(scenario())


def test_two_step_place_over_http(gateway: Gateway) -> None:
    url = gateway.url

    async def scenario(endpoint: str) -> None:
        async with http_client(endpoint) as client:
            assert {t.name for t in (await client.list_tools()).tools} >= TRADING_TOOLS
            order = {"code": "000001.SZ", "side": "buy", "volume": 100, "price_type": "market"}
            before = len(gateway.orders())
            preview = await ok(client, "place_order", order)
            assert preview["sent"] is False and len(gateway.orders()) == before
            placed = await ok(client, "place_order", {**order, "confirm_token": preview["confirm_token"]})
            assert placed["status"] == "accepted"
            assert [o["order_remark"] for o in gateway.orders()].count(placed["client_order_id"]) == 1
            assert len(gateway.orders()) == before + 1

    with http_server(url, "--allow-trading", env=gateway.env()) as endpoint:
        asyncio.run(scenario(endpoint))


def test_keys_and_scopes_pass_through(gateway: Gateway) -> None:
    url, keys = gateway.url, gateway.keys

    async def scenario() -> None:
        # a read key from the environment: data works; --allow-trading finds no trading for it (403)
        async with stdio_client(
            url, "--allow-trading", env={"QMTGATE_API_KEY": keys["read"].token}
        ) as client:
            assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS
            quote = await ok(client, "get_quote", {"codes": ["600519"]})
            assert quote["rows"][0]["code"] == "600519.SH"
            # cancelling a job needs admin: the gateway's refusal, as a tool error
            assert error_code(await fails(client, "cancel_download", {"job_id": "nope"})) == "forbidden"
        # (a trade key: test_two_step_place_over_stdio)
        # no key: the gateway's 401
        async with stdio_client(url) as client:
            assert error_code(await fails(client, "get_quote", {"codes": ["600519"]})) == "unauthorized"

    asyncio.run(scenario())
