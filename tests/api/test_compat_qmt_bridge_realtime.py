"""``/ws/realtime`` sends what qmt-bridge 2.1.3 sends, driven by its published client's
``QMTClient.subscribe_realtime``: one message ``{code: [xtquant item]}`` per code and push, so a handler
written for qmt-bridge (``data[code][0]['lastPrice']``) runs unchanged. The simulator's clock is manual; the
test moves it forward as a running QMT would.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from qmt_bridge import QMTClient

from qmtgate.api.qmt_bridge.realtime import xt_bar, xt_tick

from .conftest import LiveServer
from .sim_support import TODAY, day_ms

TICK_KEYS = {"time", "lastPrice", "open", "high", "low", "lastClose", "amount", "volume", "pvolume"}
TICK_KEYS |= {"openInt", "transactionNum", "askPrice", "bidPrice", "askVol", "bidVol", "stockStatus"}
BAR_KEYS = {"time", "open", "high", "low", "close", "volume", "amount", "settelementPrice", "openInterest"}
BAR_KEYS |= {"preClose", "suspendFlag"}


def _advance(seconds: float) -> None:
    """Move the simulated market forward and wait until its publisher has delivered it."""
    from qmtgate.sim.xtquant import _env

    env = _env.current()
    env.market.clock.advance(seconds)
    target = env.market.time().slot
    deadline = time.monotonic() + 30
    while env.publisher.delivered_slot < target and time.monotonic() < deadline:
        time.sleep(0.02)


async def _collect(
    server: LiveServer, stocks: list[str], period: str, until: Any, advance_by: float = 15
) -> list[dict[str, Any]]:
    """Run the published client's subscription, move the market on, collect the callback's messages."""
    url = urlsplit(server.url)
    client = QMTClient(url.hostname, url.port)
    received: list[dict[str, Any]] = []
    task = asyncio.create_task(client.subscribe_realtime(stocks, received.append, period=period))
    try:
        deadline = time.monotonic() + 60
        while not until(received):
            assert not task.done(), task.exception() if task.done() else None
            assert time.monotonic() < deadline, f"no qualifying message in 60 s: {received[-3:]}"
            await asyncio.to_thread(_advance, advance_by)
            await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return received


def test_realtime_tick_handler_written_for_qmt_bridge_runs(sim_server: LiveServer) -> None:
    seen: dict[str, float] = {}

    def on_tick(data: dict[str, Any]) -> None:  # as in qmt-bridge's README
        for code, items in data.items():
            seen[code] = items[-1]["lastPrice"]

    def both(messages: list[dict[str, Any]]) -> bool:
        for m in messages:
            on_tick(m)
        return {"600000.SH", "000001.SZ"} <= set(seen)

    messages = asyncio.run(_collect(sim_server, ["600000.SH", "000001.SZ"], "tick", both))
    assert all(len(m) == 1 for m in messages), "one code per message, as xtdata's callback per subscription"
    assert all(isinstance(items, list) and items for m in messages for items in m.values())
    assert not any("type" in m for m in messages)
    tick = next(items[-1] for m in messages for code, items in m.items() if code == "600000.SH")
    assert set(tick) >= TICK_KEYS
    assert tick["lastPrice"] > 0 and tick["time"] > day_ms(TODAY) + (10 * 3600 + 30 * 60) * 1000
    assert (
        len(tick["askPrice"]) == 5
        and isinstance(tick["volume"], int)
        and tick["pvolume"] == tick["volume"] * 100
    )
    assert seen["600000.SH"] > 0 and seen["000001.SZ"] > 0


def test_realtime_bars_are_xtquant_bar_dicts(sim_server: LiveServer) -> None:
    messages = asyncio.run(
        _collect(sim_server, ["600000.SH"], "1m", lambda ms: any("600000.SH" in m for m in ms), advance_by=30)
    )
    bar = messages[-1]["600000.SH"][-1]
    assert set(bar) == BAR_KEYS
    assert bar["low"] <= bar["close"] <= bar["high"] and bar["volume"] >= 0
    assert bar["time"] % 60_000 == 0 and bar["time"] > day_ms(TODAY)


def test_xt_item_conversion_units_and_nulls() -> None:
    row = {
        "code": "600000.SH",
        "ts": 1749695400000,
        "last_price": 10.5,
        "open": None,
        "high": 10.6,
        "low": 10.4,
        "pre_close": 10.3,
        "volume": 123400,
        "amount": 1.3e6,
        "trades": 77,
        "phase": 13,
        "bid_price": [10.49, None, None, None, None],
        "bid_volume": [500, 0, 0, 0, 0],
        "ask_price": [10.5, 10.51, None, None, None],
        "ask_volume": [200, 300, 0, 0, 0],
    }
    tick = xt_tick(row, {"stockStatus": 3, "pe": 5.0, "lastPrice": 1.0})
    assert tick["volume"] == 1234 and tick["pvolume"] == 123400 and tick["open"] == 0.0
    assert tick["bidPrice"] == [10.49, 0.0, 0.0, 0.0, 0.0] and tick["askVol"] == [2, 3, 0, 0, 0]
    assert (
        tick["lastPrice"] == 10.5 and tick["stockStatus"] == 3 and tick["pe"] == 5.0
    )  # row wins, base fills
    bar = xt_bar({"ts": 1749695400000, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 300})
    assert bar["volume"] == 3 and bar["amount"] == 0.0 and bar["preClose"] == 0.0 and set(bar) == BAR_KEYS


def test_a_suspended_code_converts_as_the_peer_sends_it() -> None:
    """qmt-bridge passes xtquant's own dicts through: a suspended stock's tick (openInt and stockStatus 1,
    the last price at the previous close, nothing traded) and bars with suspendFlag 1."""
    row = {
        "code": "001381.SZ",
        "ts": day_ms(TODAY) + (9 * 3600 + 15 * 60) * 1000,
        "last_price": 25.3,
        "open": None,
        "high": None,
        "low": None,
        "pre_close": 25.3,
        "volume": 0,
        "amount": 0.0,
        "trades": 0,
        "phase": 1,
        "bid_price": [None] * 5,
        "bid_volume": [0] * 5,
        "ask_price": [None] * 5,
        "ask_volume": [0] * 5,
    }
    tick = xt_tick(row)  # no cached tick of the code: the row alone
    assert tick["openInt"] == tick["stockStatus"] == 1
    assert tick["lastPrice"] == tick["lastClose"] == 25.3 and tick["open"] == tick["high"] == 0.0
    assert tick["volume"] == tick["pvolume"] == 0 and tick["bidPrice"] == [0.0] * 5
    bar_row = {"ts": day_ms(TODAY), "open": 25.3, "high": 25.3, "low": 25.3, "close": 25.3, "volume": 0,
               "pre_close": 25.3}  # fmt: skip
    bar = xt_bar(bar_row, tick)
    assert bar["suspendFlag"] == 1 and bar["openInterest"] == 1 and set(bar) == BAR_KEYS
    trading = xt_bar(bar_row, {**tick, "openInt": 13})
    assert trading["suspendFlag"] == 0 and trading["openInterest"] == 13
    assert xt_bar({**bar_row, "suspend_flag": -1}, tick)["suspendFlag"] == -1, "a row's own flag wins"
