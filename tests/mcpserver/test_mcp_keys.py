"""``qmtgate mcp`` with the gateway's API keys on: the key comes from the environment and travels to the
gateway, the gateway's scopes decide (trading tools only for a ``trade`` key), and a refused key is a tool
error with the gateway's code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qmtgate.api.app import create_app
from qmtgate.security.keys import NewKey, generate_key

from .support import READ_TOOLS, TRADING_TOOLS, error_code, fails, ok, stdio_client

try:  # tests/ on sys.path
    from api.sim_support import sim_settings
    from api.support import start_server
    from trading.conftest import ACCOUNT_ID, USERDATA
except ImportError:  # tests/ itself is a package
    from tests.api.sim_support import sim_settings  # type: ignore[no-redef]
    from tests.api.support import start_server  # type: ignore[no-redef]
    from tests.trading.conftest import ACCOUNT_ID, USERDATA  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, NewKey]]]:
    keys = {
        "read": generate_key("mcp-reader", ["read"]),
        "trade": generate_key("mcp-trader", ["read", "trade"]),
    }
    trading = {
        "enabled": True,
        "account_id": ACCOUNT_ID,
        "userdata_path": USERDATA,
        "audit_path": str(tmp_path_factory.mktemp("mcp-keys") / "audit.sqlite"),
        "response_timeout": 1.0,
    }
    auth = {"keys": [k.record.model_dump() for k in keys.values()]}
    server = start_server(create_app(sim_settings(trading=trading, auth=auth)))
    try:
        yield server.url, keys
    finally:
        server.stop()


def test_keys_and_scopes_pass_through(keyed: tuple[str, dict[str, NewKey]]) -> None:
    url, keys = keyed

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
        # a trade key: the trading tools are listed and answer
        async with stdio_client(
            url, "--allow-trading", env={"QMTGATE_API_KEY": keys["trade"].token}
        ) as client:
            assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS | TRADING_TOOLS
            status = await ok(client, "get_trading_status")
            assert status["account_id"] == ACCOUNT_ID
        # no key, and a wrong one: the gateway's 401
        async with stdio_client(url) as client:
            assert error_code(await fails(client, "get_quote", {"codes": ["600519"]})) == "unauthorized"
        wrong = keys["read"].token[:-4] + "AAAA"
        async with stdio_client(url, env={"QMTGATE_API_KEY": wrong}) as client:
            text = await fails(client, "get_quote", {"codes": ["600519"]})
            assert error_code(text) == "unauthorized" and wrong not in text

    asyncio.run(scenario())
