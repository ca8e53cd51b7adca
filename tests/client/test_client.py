"""``Client`` and ``AsyncClient``: one set of methods, DataFrames from Arrow or JSON, typed errors,
the API key only in a header."""

from __future__ import annotations

import asyncio
import inspect
import socket

import httpx
import pandas as pd
import pytest

from qmtgate.client import AsyncClient, Client, errors
from qmtgate.client._base import API_KEY_HEADER

try:
    from api.support import LiveServer
except ImportError:
    from tests.api.support import LiveServer  # type: ignore[no-redef]

CODES = ["600000.SH", "000001.SZ"]


def _public(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


def test_sync_and_async_have_the_same_methods() -> None:
    shared = _public(Client) & _public(AsyncClient)
    for name in (
        "klines",
        "snapshots",
        "sectors",
        "instruments",
        "trading_dates",
        "subscribe",
        "xt_full_tick",
    ):
        assert name in shared
    assert inspect.iscoroutinefunction(AsyncClient.klines)
    assert not inspect.iscoroutinefunction(Client.klines)
    assert inspect.signature(Client.klines) == inspect.signature(AsyncClient.klines)


@pytest.mark.parametrize("fmt", ["arrow", "json"])
def test_klines_are_dataframes_in_either_wire_format(server: LiveServer, fmt: str) -> None:
    with Client(server.url, format=fmt) as client:
        df = client.klines(CODES, count=3)
    assert isinstance(df, pd.DataFrame)
    assert list(df["code"].astype(str).unique()) == CODES
    assert (df.groupby("code", observed=True).size() == 3).all()
    assert str(df["time"].dt.tz) == "Asia/Shanghai"
    assert df["volume"].dtype.kind in "iu" and df["close"].dtype.kind == "f"


def test_arrow_and_json_give_the_same_values(server: LiveServer) -> None:
    with Client(server.url) as arrow_client, Client(server.url, format="json") as json_client:
        a = arrow_client.klines(CODES, count=5)
        j = json_client.klines(CODES, count=5)
    a["code"] = a["code"].astype(str)
    pd.testing.assert_frame_equal(
        a[["code", "ts", "close", "volume"]], j[["code", "ts", "close", "volume"]], check_dtype=False
    )
    assert (a["time"] == j["time"]).all()


def test_reference_calls(server: LiveServer) -> None:
    with Client(server.url) as client:
        assert "沪深A股" in client.sectors()
        assert client.sector_members("沪深A股") == CODES
        assert client.instrument_type("000001.SH")["type"] == {"index": True}
        assert client.health()["status"] == "ok"
        assert set(client.snapshots(CODES)["code"]) == set(CODES)


@pytest.mark.parametrize(
    ("call", "expected", "code"),
    [
        (lambda c: c.klines(["688999.SH"]), errors.UnknownCode, "unknown_code"),
        (lambda c: c.klines(CODES, period="2m"), errors.InvalidPeriod, "invalid_period"),
        (lambda c: c.sector_members("no such sector"), errors.NotFound, "not_found"),
        (lambda c: c.klines(["hello"]), errors.InvalidCode, "invalid_code"),
    ],
)
def test_errors_are_typed_from_the_envelope(server: LiveServer, call, expected, code) -> None:
    with Client(server.url) as client, pytest.raises(expected) as info:
        call(client)
    assert info.value.code == code and 400 <= info.value.status < 500 and info.value.message


def test_unknown_code_details_name_it(server: LiveServer) -> None:
    with Client(server.url) as client, pytest.raises(errors.UnknownCode) as info:
        client.klines(["600000.SH", "688999.SH"])
    assert info.value.details["codes"] == ["688999.SH"]
    assert isinstance(info.value, errors.NotFound) and isinstance(info.value, errors.GatewayError)


def test_unreachable_gateway_is_connection_failed() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as client, pytest.raises(errors.ConnectionFailed):
        client.health()


def test_async_client(server: LiveServer) -> None:
    async def main() -> tuple[pd.DataFrame, list[str]]:
        async with AsyncClient(server.url) as client:
            return await asyncio.gather(client.klines(CODES, count=2), client.sectors())

    df, sectors = asyncio.run(main())
    assert len(df) == 4 and "沪深A股" in sectors


def test_api_key_travels_only_in_a_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"source": "x", "count": 0, "data": ["a"]})

    with Client("http://gateway.invalid:8000", api_key="s3cret") as client:
        # the keep-alive fast path for small JSON reads sends the same headers
        assert client._fast is not None and client._fast._headers[API_KEY_HEADER] == "s3cret"
        client._fast = None
        client._http = httpx.Client(
            base_url=client.options.base_url,
            headers=client.options.headers(),
            transport=httpx.MockTransport(handler),
        )
        assert client.sectors() == ["a"]
    assert seen[0].headers[API_KEY_HEADER] == "s3cret"
    assert "s3cret" not in str(seen[0].url)
    assert client.options.ws_url() == "ws://gateway.invalid:8000/api/v1/ws"


def test_keepalive_path_reuses_one_connection_and_survives_a_server_close(server: LiveServer) -> None:
    with Client(server.url) as client:
        assert client._fast is not None
        client.health()
        first = client._fast._local.conn
        for _ in range(5):
            assert client.xt_full_tick(["600000.SH"])["600000.SH"]["lastPrice"] > 0
        assert client._fast._local.conn is first  # one kept-alive connection
        first.sock.shutdown(socket.SHUT_RDWR)  # as if the server had dropped the idle connection
        assert client.health()["status"] == "ok"
