"""``qmtgate mcp`` trading tools against a live gateway that trades on the simulated paper broker
(docs/trading.md, docs/mcp.md): listed only with trading on both sides; placing takes a preview and a
confirmation token; the gateway's risk checks, idempotency and audit trail apply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qmtgate.api.app import create_app

from .support import READ_TOOLS, TRADING_TOOLS, error_code, fails, http_client, http_server, ok, stdio_client

try:  # tests/ on sys.path
    from api.support import start_server
    from trading.conftest import trading_settings
except ImportError:  # tests/ itself is a package
    from tests.api.support import start_server  # type: ignore[no-redef]
    from tests.trading.conftest import trading_settings  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    audit = tmp_path_factory.mktemp("mcp-trading") / "audit.sqlite"
    app = create_app(trading_settings(audit, risk={"max_orders_per_second": 1000}))
    server = start_server(app)
    try:
        yield server.url, app
    finally:
        server.stop()


def broker_orders(url: str) -> list[dict[str, Any]]:
    """The gateway's own orders query (GET /api/v1/trading/orders), not the MCP tool."""
    r = httpx.get(url + "/api/v1/trading/orders", timeout=30)
    r.raise_for_status()
    return r.json()


def audit_kinds(app: FastAPI, coid: str) -> list[str]:
    return [row["kind"] for row in app.state.trading.audit.rows(coid)]


def test_no_trading_tools_without_allow_trading(gateway: tuple[str, FastAPI]) -> None:
    url, _ = gateway
    before = broker_orders(url)

    async def scenario() -> None:
        async with stdio_client(url) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == READ_TOOLS
            assert "Unknown tool" in await fails(
                client, "place_order", {"code": "600000.SH", "side": "buy", "volume": 100, "price": 10.0}
            )

    asyncio.run(scenario())
    assert broker_orders(url) == before


def test_two_step_place_over_stdio(gateway: tuple[str, FastAPI]) -> None:
    url, app = gateway
    code = "600519.SH"

    async def scenario() -> None:
        async with stdio_client(url, "--allow-trading") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == READ_TOOLS | TRADING_TOOLS
            assert tools["place_order"].annotations.destructive_hint
            assert "confirm_token" in tools["place_order"].input_schema["properties"]

            status = await ok(client, "get_trading_status")
            assert status["connected"] and not status["halted"]
            cash = (await ok(client, "get_asset"))["cash"]
            quote = (await ok(client, "get_quote", {"codes": [code]}))["rows"][0]
            price = quote["ask1"]
            order = {"code": "600519", "side": "buy", "volume": 100, "price": price}
            before = broker_orders(url)

            # step 1: a preview, nothing sent
            preview = await ok(client, "place_order", order)
            assert preview["status"] == "preview" and preview["sent"] is False
            assert preview["order"] == {
                "code": code, "side": "buy", "volume": 100, "price_type": "limit", "price": price,
            }  # fmt: skip
            assert preview["instrument"]["name"] == "贵州茅台" and preview["quote"]["ask1"] == price
            assert preview["estimated_value"] == pytest.approx(price * 100)
            assert preview["cash_available"] == cash and preview["warnings"] == []
            token = preview["confirm_token"]
            assert broker_orders(url) == before

            # a wrong token, or the right token on another order, places nothing
            assert error_code(await fails(client, "place_order", {**order, "confirm_token": "x" * 20})) == (
                "confirmation_invalid"
            )
            changed = {**order, "volume": 200, "confirm_token": token}
            assert error_code(await fails(client, "place_order", changed)) == "confirmation_mismatch"
            assert broker_orders(url) == before

            # step 2: the same arguments with the token place exactly one order
            placed = await ok(client, "place_order", {**order, "confirm_token": token})
            assert placed["sent"] is True and placed["status"] == "accepted" and placed["order_id"] > 0
            coid = placed["client_order_id"]
            after = broker_orders(url)
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
            assert len(broker_orders(url)) == len(after)
            listed = await ok(client, "get_orders")
            assert coid in [o["order_remark"] for o in listed["rows"]]

            # the gateway's risk checks apply to a confirmed order: above the up limit
            limit_up = preview["instrument"]["limit_up"]
            high = {**order, "price": round(limit_up + 1, 2)}
            risky = await ok(client, "place_order", high)
            assert any("up limit" in w for w in risky["warnings"])
            text = await fails(client, "place_order", {**high, "confirm_token": risky["confirm_token"]})
            assert error_code(text) == "risk_refused" and "price_limit" in text
            # a sell with no position: warned in the preview, refused by the gateway
            sell = {"code": "600036.SH", "side": "sell", "volume": 100, "price_type": "market"}
            sp = await ok(client, "place_order", sell)
            assert any("T+1" in w for w in sp["warnings"])
            text = await fails(client, "place_order", {**sell, "confirm_token": sp["confirm_token"]})
            assert error_code(text) == "risk_refused" and "insufficient_position" in text
            assert len(broker_orders(url)) == len(after)

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


def test_two_step_place_over_http(gateway: tuple[str, FastAPI]) -> None:
    url, _ = gateway

    async def scenario(endpoint: str) -> None:
        async with http_client(endpoint) as client:
            assert {t.name for t in (await client.list_tools()).tools} >= TRADING_TOOLS
            order = {"code": "000001.SZ", "side": "buy", "volume": 100, "price_type": "market"}
            before = len(broker_orders(url))
            preview = await ok(client, "place_order", order)
            assert preview["sent"] is False and len(broker_orders(url)) == before
            placed = await ok(client, "place_order", {**order, "confirm_token": preview["confirm_token"]})
            assert placed["status"] == "accepted"
            assert [o["order_remark"] for o in broker_orders(url)].count(placed["client_order_id"]) == 1
            assert len(broker_orders(url)) == before + 1

    with http_server(url, "--allow-trading") as endpoint:
        asyncio.run(scenario(endpoint))
