"""One simulated session published to Hikyuu-like consumers, shared by the feed tests.

The simulator's clock is manual and stepped by the scenario (2025-06-12, whole market of SH/SZ/BJ,
~5,300 codes), so every burst is known: a hub listener converts each published burst to the records
Hikyuu's collector would send (``decoder.expected_record``, the tests' own conversion), and so does a
wrapper around the publisher's whole-market snapshot. The scenario:

1. a consumer dials the IPC address before any data; the first push (the full market, in chunks) goes out;
2. the market moves in 3-second steps from 09:29:52 across 09:30 (the opening whole-market bracket);
3. a second consumer dials the TCP address mid-session (09:30:04), which sends the whole market at once;
   the market moves on past the next periodic whole-market bracket (every 15 s) to 09:30:25.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hikyuu_feed.consumer import Consumer
from hikyuu_feed.decoder import expected_record
from qmtgate.config import HikyuuSettings, Settings
from qmtgate.hikyuu.publisher import HikyuuPublisher
from qmtgate.hub.stream import TICK, HubConfig, StreamHub
from qmtgate.source.factory import build_simulated_source

START = "20250612092952"
RECORDS_PER_MESSAGE = 1000


@dataclass
class Session:
    early: Consumer  # dialled before any data (IPC)
    late: Consumer  # dialled at 09:30:04 (TCP)
    late_joined_at: int  # brackets the publisher had sent when the late consumer joined
    late_full: int  # whole-market snapshots sent by then, the one for the late consumer included
    bursts: list[list[dict[str, Any]]]  # expected records of every hub burst, in publish order
    fulls: list[list[dict[str, Any]]]  # expected records of every whole-market snapshot
    final: dict[str, dict[str, Any]]  # expected record per code from the hub's cache at the end
    stats: dict[str, Any]
    settings: HikyuuSettings
    market: set[str]  # every code of the cache ("SH600000")


async def _quiet(hub: StreamHub, pub: HikyuuPublisher, consumers: list[Consumer]) -> None:
    """Until nothing is on its way: the hub's inbox, the publisher's queue, the sockets."""
    deadline = time.monotonic() + 30
    stable = 0
    while stable < 5:
        await asyncio.sleep(0.02)
        busy = not hub.quiet() or pub.backlog() or any(c.messages < pub.stats.messages for c in consumers[:1])
        stable = 0 if busy else stable + 1
        if time.monotonic() > deadline:
            raise AssertionError(f"feed not quiet: backlog {pub.backlog()}, {pub.info()}")


async def _scenario(tmp: Path) -> Session:
    settings = Settings(source="sim", sim={"clock": "manual", "start": START})
    source = build_simulated_source(settings)
    from qmtgate.sim.xtquant import _env

    env = _env.current()
    env.publisher.stop(manual=True)
    await source.start()
    hub = StreamHub(source, HubConfig())
    await hub.start()
    bursts: list[list[dict[str, Any]]] = []
    fulls: list[list[dict[str, Any]]] = []

    def on_burst(updates: list[Any]) -> None:
        ticks = [u for u in updates if u.channel == TICK and u.market in ("SH", "SZ", "BJ")]
        if ticks:
            bursts.append([expected_record(u.row) for u in ticks])

    hub.listeners.append(on_burst)
    hk = HikyuuSettings(
        addresses=(f"ipc://{tmp / 'hikyuu_real.ipc'}", "tcp://127.0.0.1:0"),
        full_interval=15,
        records_per_message=RECORDS_PER_MESSAGE,
    )
    pub = HikyuuPublisher(hub, source, hk, check_interval=0.02)
    snapshot = pub.full_market

    def recorded_full_market() -> list[Any]:
        updates = snapshot()
        if updates:  # an empty cache sends nothing
            fulls.append([expected_record(u.row) for u in updates])
        return updates

    pub.full_market = recorded_full_market  # type: ignore[method-assign]
    await pub.start()
    early = Consumer(pub.addresses[0])
    late: Consumer | None = None
    try:
        while (
            not pub.stats.joins
        ):  # the subscriber is connected (its whole-market bracket: the cache is empty)
            await asyncio.sleep(0.01)
        await asyncio.to_thread(env.publisher.step)  # the first push: the whole market
        await _quiet(hub, pub, [early])
        joined = late_full = 0
        for step in range(11):  # 09:29:52 -> 09:30:25 in 3-second steps
            env.market.clock.advance(3)
            await asyncio.to_thread(env.publisher.step)
            await _quiet(hub, pub, [early])
            if step == 3:  # 09:30:04: a consumer connects mid-session
                late = Consumer(pub.addresses[1])
                while len(pub._socket.pipes) < 2:
                    await asyncio.sleep(0.01)
                joined = pub.stats.brackets
                deadline = time.monotonic() + 10
                while len(fulls) < 2 and time.monotonic() < deadline:  # the bracket its connection sends
                    await asyncio.sleep(0.01)
                await _quiet(hub, pub, [early])  # sent before the market moves on
                late_full = len(fulls)
        final = {f"{r['market']}{r['code']}": r for r in (expected_record(u.row) for u in snapshot())}
        early.wait_messages(pub.stats.messages)
        assert late is not None
        return Session(early, late, joined, late_full, bursts, fulls, final, dict(pub.info()), hk, set(final))
    finally:
        await pub.stop()
        await hub.stop()
        await source.stop()


@pytest.fixture(scope="package")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("hikyuu")
    s = asyncio.run(_scenario(tmp))
    yield s
    s.early.close()
    s.late.close()
