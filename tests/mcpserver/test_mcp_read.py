"""``qmtgate mcp`` read tools, driven by the mcp SDK's client over stdio and streamable HTTP against a live
gateway on the simulator (trading off): every tool with good and bad arguments, answers checked against
the gateway's own REST answers, errors as tool errors carrying the gateway's code."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qmtgate.api.app import create_app

from .support import (
    CJK,
    READ_TOOLS,
    SRC,
    TRADING_TOOLS,
    error_code,
    fails,
    free_port,
    http_client,
    http_server,
    ok,
    stdio_client,
)

try:  # tests/ on sys.path
    from api.sim_support import sim_settings
    from api.support import start_server
except ImportError:  # tests/ itself is a package
    from tests.api.sim_support import sim_settings  # type: ignore[no-redef]
    from tests.api.support import start_server  # type: ignore[no-redef]

RECORDED = "600519.SH"
ENGLISH = re.compile(r"[A-Za-z]{2,}(?:[ ,/-]+[A-Za-z]{2,}){3,}")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway on the simulator (10:30 of 2025-06-12, trading off) that records 600519.SH: the recorder's
    start-up backfill fills today's ticks and 1m bars since 09:15 from the source's tick history."""
    db = tmp_path_factory.mktemp("mcp-rec") / "rec.duckdb"
    recorder = {"enabled": True, "db": str(db), "create": True, "markets": [], "codes": [RECORDED]}
    server = start_server(create_app(sim_settings(recorder=recorder)))
    try:
        # the recorder backfills once its first live tick arrives: move the manual clock one snapshot on
        from qmtgate.sim.xtquant import _env

        _env.current().market.clock.advance(3)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            deadline = time.monotonic() + 120
            while not (
                http.get("/api/v1/health/ready").json().get("quotes", {}).get("live")
                and http.get("/api/v1/recorded/klines", params={"codes": RECORDED, "format": "json"})
                .json()
                .get("data")
            ):
                assert time.monotonic() < deadline, "quote cache not live or nothing recorded"
                time.sleep(0.1)
        yield server.url
    finally:
        server.stop()


def rest(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + "/api/v1" + path, params=params, headers={"Accept": "application/json"}, timeout=30)
    r.raise_for_status()
    return r.json()


async def check_listing(client: Any) -> None:
    tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert names == READ_TOOLS, names ^ READ_TOOLS
    assert not names & TRADING_TOOLS
    for tool in tools:
        assert tool.input_schema["type"] == "object"
        assert CJK.search(tool.description), f"{tool.name}: no Chinese description"
        assert ENGLISH.search(tool.description), f"{tool.name}: no English description"
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} undocumented"
    quote = next(t for t in tools if t.name == "get_quote")
    assert quote.annotations is not None and quote.annotations.read_only_hint
    kl = next(t for t in tools if t.name == "get_klines").input_schema["properties"]
    assert "front" in str(kl["adjust"]) and "1m" in str(kl["period"])
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"qmtgate://sectors", "qmtgate://capabilities"} <= resources
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert {"analyze_stock", "market_overview"} <= prompts
    prompt = await client.get_prompt("analyze_stock", {"code": "600519.SH"})
    assert "600519.SH" in prompt.messages[0].content.text


async def check_read_tools(client: Any, url: str) -> None:
    """Every read tool, good and bad arguments, against the gateway at ``url``."""
    import json

    sectors = rest(url, "/sectors")["data"]
    res = await client.read_resource("qmtgate://sectors")
    assert json.loads(res.contents[0].text) == sectors

    # -- get_quote: codes (bare digits and a Chinese name), a sector, bad arguments
    snap = rest(url, "/snapshots", codes="600519.SH,000001.SZ")["data"]
    q = await ok(client, "get_quote", {"codes": ["600519", "平安银行"]})
    assert q["resolved_names"] == {"平安银行": "000001.SZ"}
    by_code = {r["code"]: r for r in q["rows"]}
    assert set(by_code) == {"600519.SH", "000001.SZ"}
    assert by_code["600519.SH"]["name"] == "贵州茅台"
    for s in snap:
        row = by_code[s["code"]]
        assert row["last_price"] == s["last_price"] and row["pre_close"] == s["pre_close"]
        assert row["change"] == pytest.approx(s["last_price"] - s["pre_close"], abs=1e-6)
        assert row["change_pct"] == pytest.approx((s["last_price"] / s["pre_close"] - 1) * 100, abs=1e-3)
        assert row["bid1"] == s["bid_price"][0] and row["ask1"] == s["ask_price"][0]
        assert row["time"] == s["time"] and row["time"].startswith("2025-06-12T10:30")
        assert row["phase_name"] == "continuous trading"
    members = rest(url, "/sectors/沪深300/members")["data"]
    sec = await ok(client, "get_quote", {"sector": "沪深300", "limit": 5, "sort_by": "change_pct"})
    quoted = rest(url, "/snapshots", sector="沪深300")["data"]
    summary = sec["summary"]
    assert summary["members"] == len(members) and summary["count"] == sec["count"] == len(quoted)
    assert summary["without_quote"] == len(members) - len(quoted) == len(sec.get("without_quote", []))
    assert sec["truncated"] and len(sec["rows"]) == 5
    assert summary["up"] + summary["down"] + summary["flat"] + summary["no_price"] == len(quoted)
    assert summary["up"] == sum(1 for r in quoted if r["last_price"] and r["last_price"] > r["pre_close"])
    pcts = [r["change_pct"] for r in sec["rows"]]
    assert pcts == sorted(pcts, reverse=True) and all(r["name"] for r in sec["rows"])
    assert error_code(await fails(client, "get_quote", {})) == "bad_request"
    assert error_code(await fails(client, "get_quote", {"codes": ["999999"]})) == "ambiguous_code"
    assert error_code(await fails(client, "get_quote", {"codes": ["abc"]})) == "invalid_code"
    assert error_code(await fails(client, "get_quote", {"codes": ["不存在的股票"]})) == "unknown_name"
    assert error_code(await fails(client, "get_quote", {"sector": "no such sector"})) == "not_found"
    assert "limit" in await fails(client, "get_quote", {"codes": ["600519"], "limit": 0})

    # -- get_klines: summary over the range, newest rows capped
    bars = rest(url, "/klines", codes="600519.SH", count=250, dividend_type="front")["data"]
    k = await ok(client, "get_klines", {"code": "600519", "count": 250, "adjust": "front", "max_rows": 5})
    s = k["summary"]
    assert k["code"] == "600519.SH" and k["rows_total"] == 250 == s["bars"] and k["truncated"]
    assert [r["close"] for r in k["rows"]] == [b["close"] for b in bars[-5:]]
    assert s["high"] == max(b["high"] for b in bars) and s["low"] == min(b["low"] for b in bars)
    assert s["first_time"] == bars[0]["time"] and s["last_time"] == bars[-1]["time"]
    assert s["return_pct"] == pytest.approx((bars[-1]["close"] / bars[0]["pre_close"] - 1) * 100, abs=1e-3)
    assert s["total_volume"] == sum(b["volume"] for b in bars)
    small = await ok(client, "get_klines", {"code": "贵州茅台", "period": "5m", "count": 10})
    assert small["rows_total"] == 10 and not small["truncated"] and small["resolved_names"]
    assert "period" in await fails(client, "get_klines", {"code": "600519", "period": "2d"})
    assert (
        error_code(await fails(client, "get_klines", {"code": "600519", "start": "notadate"}))
        == "invalid_date"
    )
    assert error_code(await fails(client, "get_klines", {"code": "600000.SZ"})) == "unknown_code"

    # -- get_instrument
    detail = rest(url, "/instruments/600519.SH")["data"]
    inst = await ok(client, "get_instrument", {"code": "茅台"})
    assert inst["code"] == "600519.SH" and inst["limit_up"] == detail["limit_up"]
    assert inst["resolved_names"] == {"茅台": "600519.SH"}
    assert error_code(await fails(client, "get_instrument", {"code": "银行"})) == "ambiguous_name"
    assert error_code(await fails(client, "get_instrument", {"code": "abc"})) == "invalid_code"

    # -- sectors
    ls = await ok(client, "list_sectors")
    assert ls["sectors"] == sectors
    sw = await ok(client, "list_sectors", {"contains": "SW1"})
    assert sw["count"] > 0 and all("SW1" in x for x in sw["sectors"])
    assert "contains" in await fails(client, "list_sectors", {"contains": "x" * 41})
    mem = await ok(client, "get_sector_members", {"sector": "沪深300", "with_names": True, "limit": 3})
    assert mem["count"] == len(members) and [m["code"] for m in mem["members"]] == members[:3]
    assert all(m["name"] for m in mem["members"])
    assert error_code(await fails(client, "get_sector_members", {"sector": "nope"})) == "not_found"

    # -- calendar
    cal = await ok(client, "get_trading_calendar", {"start": "20250101", "end": "20250210"})
    days = rest(url, "/calendar/trading-dates", start="20250101", end="20250210")["data"]
    assert cal["trading_days"] == [d["date"] for d in days]
    assert "2025-01-29" in cal["holidays"] and "2025-01-29" not in cal["trading_days"]  # Spring Festival
    assert error_code(await fails(client, "get_trading_calendar", {"start": "20251345"})) == "invalid_date"
    assert "market" in await fails(client, "get_trading_calendar", {"market": "HK"})
    now = await ok(client, "is_market_open")
    index_time = rest(url, "/snapshots", codes="000001.SH")["data"][0]["time"]
    assert now["market_time"] == index_time and now["open_now"] is True
    assert now["is_trading_day"] and now["next_trading_day"] == "2025-06-13"
    sat = await ok(client, "is_market_open", {"date": "20250614"})
    assert sat["is_trading_day"] is False and "open_now" not in sat
    assert error_code(await fails(client, "is_market_open", {"date": "xx"})) == "invalid_date"

    # -- status
    st = await ok(client, "get_market_status")
    assert st["simulated"] is True and st["real"] is False and st["source"] == "simulated"
    assert st["connected"] and st["ready"] and st["quote_cache_live"] and not st["stale"]

    # -- recorded data: what the gateway recorded, the newest rows capped
    rec_days = await ok(client, "get_recorded_data", {"kind": "days"})
    assert "2025-06-12" in json.dumps(rec_days["rows"])
    recorded = rest(url, "/recorded/klines", codes=RECORDED, count=100_000)["data"]
    rk = await ok(client, "get_recorded_data", {"kind": "klines", "codes": ["贵州茅台"], "max_rows": 3})
    assert rk["rows_total"] == min(3, len(recorded)) and len(rk["rows"]) == min(3, len(recorded))
    assert [r["close"] for r in rk["rows"]] == [b["close"] for b in recorded[-3:]]
    every = await ok(
        client, "get_recorded_data", {"kind": "klines", "codes": [RECORDED], "count": 100_000, "max_rows": 2}
    )
    assert every["rows_total"] == len(recorded) and every["truncated"] == (len(recorded) > 2)
    ticks = await ok(client, "get_recorded_data", {"kind": "ticks", "codes": ["600519"], "max_rows": 5})
    assert len(ticks["rows"]) == 5 and all(r["code"] == RECORDED for r in ticks["rows"])
    assert error_code(await fails(client, "get_recorded_data", {"kind": "klines"})) == "bad_request"
    assert "kind" in await fails(client, "get_recorded_data", {"kind": "bars"})

    # -- downloads
    job = await ok(client, "start_download", {"codes": ["600519"], "period": "1d", "start": "20250101"})
    assert job["id"] and job["codes"] == 1
    listed = await ok(client, "list_download_jobs")
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    one = await ok(client, "list_download_jobs", {"job_id": job["id"]})
    assert one["id"] == job["id"] and one["state"] in ("queued", "running", "succeeded")
    cancelled = await ok(client, "cancel_download", {"job_id": job["id"]})
    assert cancelled["id"] == job["id"]
    assert "codes" in await fails(client, "start_download", {"codes": []})
    assert error_code(await fails(client, "list_download_jobs", {"job_id": "nope"})) == "not_found"
    assert error_code(await fails(client, "cancel_download", {"job_id": "nope"})) == "not_found"

    assert "Unknown tool" in await fails(client, "no_such_tool", {})


def test_stdio_every_read_tool(gateway: str) -> None:
    async def scenario() -> None:
        # --allow-trading with a gateway that does not trade: still no trading tool
        async with stdio_client(gateway, "--allow-trading") as client:
            await check_listing(client)
            await check_read_tools(client, gateway)

    asyncio.run(scenario())


def test_streamable_http_every_read_tool(gateway: str) -> None:
    async def scenario(endpoint: str) -> None:
        async with http_client(endpoint) as client:
            await check_listing(client)
            await check_read_tools(client, gateway)

    with http_server(gateway) as endpoint:
        asyncio.run(scenario(endpoint))


def test_unreachable_gateway_is_a_tool_error() -> None:
    async def scenario() -> None:
        async with stdio_client(f"http://127.0.0.1:{free_port()}", "--timeout", "5") as client:
            assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS
            text = await fails(client, "get_quote", {"codes": ["600519"]})
            assert error_code(text) == "connection_failed"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--transport", "http", "--host", "0.0.0.0"], "loopback only"),
        (["--transport", "smoke"], "stdio or http"),
        (["--tls-fingerprint", "AB:CD"], "https://"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qmtgate", "mcp", *args],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
