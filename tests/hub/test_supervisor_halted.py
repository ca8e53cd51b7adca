"""The staleness supervisor and suspended / halted codes (docs/reliability.md): QMT keeps one flat tick of a
suspended stock all session (phase 1) and a halted one (17, 20) does not change either. Such a streamed code
is quiet, not stale: it counts no silence, is never renewed, and never makes its market look stale, while a
trading code that falls silent still is stale and renewed.

The supervisor runs against small stand-ins for the source and the hub (what it uses of them: the market
clock, status, probe, announce; the subscribed markets, streamed codes, last values and renewals)."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qmtgate.hub.ring import Update
from qmtgate.hub.supervisor import SourceSupervisor, SupervisorConfig
from qmtgate.vocab import HALTED_PHASES

CST = dt.timezone(dt.timedelta(hours=8))
#: a Thursday in continuous trading
T0 = int(dt.datetime(2025, 6, 12, 10, 0, tzinfo=CST).timestamp() * 1000)


class FakeSource:
    def __init__(self) -> None:
        self.now = T0
        self.announced: list[tuple[str, ...]] = []
        self.renewals: list[str] = []

    def now_ms(self) -> int:
        return self.now

    def status(self) -> Any:
        return SimpleNamespace(connected=True, state=SimpleNamespace(value="ready"))

    async def probe(self) -> bool:
        return True

    async def renew_subscriptions(self, reason: str) -> None:
        self.renewals.append(reason)

    def announce(self, kind: Any, stale: tuple[str, ...] = ()) -> None:
        self.announced.append(stale)


class FakeLvc:
    """The last value per (channel, code) (its seq tells a change) and the raw xtquant tick per code."""

    def __init__(self) -> None:
        self.updates: dict[tuple[str, str], Update] = {}
        self.raws: dict[str, dict[str, Any]] = {}
        self.seq = 0

    def put(self, channel: str, code: str, phase: int) -> None:
        self.seq += 1
        self.updates[(channel, code)] = Update(
            self.seq, channel, code, code[-2:], {"code": code, "phase": phase}
        )
        self.raws[code] = {"lastPrice": 10.0, "openInt": phase}

    def get(self, channel: str, code: str) -> Update | None:
        return self.updates.get((channel, code))

    def raw_tick(self, code: str) -> dict[str, Any] | None:
        return self.raws.get(code)

    def raw_value(self, code: str, key: str) -> Any:
        return self.raws.get(code, {}).get(key)


class FakeHub:
    def __init__(self, streamed: list[tuple[str, str]]) -> None:
        self.lvc = FakeLvc()
        self.streamed = streamed
        self.renewed: list[tuple[str, str]] = []
        self.listeners: list[Any] = []

    def add_listener(self, fn: Any) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: Any) -> None:
        self.listeners.remove(fn)

    def subscribed_markets(self) -> set[str]:
        return {"SH", "SZ"}

    def streamed_codes(self, limit: int) -> list[tuple[str, str]]:
        return self.streamed[:limit]

    async def retry_failed_upstream(self) -> int:
        return 0

    async def renew_codes(self, keys: Any) -> list[tuple[str, str]]:
        self.renewed += list(keys)
        return list(keys)


def run(
    phases: dict[str, int], silent_seconds: int, channels: tuple[str, ...] = ("tick",)
) -> tuple[Any, Any, Any]:
    """Stream ``phases``' codes (each with one first tick in that phase, then silence) while both markets
    keep bursting, for ``silent_seconds`` market seconds checked every 3 s; returns (report, source, hub)."""
    streamed = [(ch, code) for code in phases for ch in channels]
    hub = FakeHub(streamed)
    source = FakeSource()
    config = SupervisorConfig(min_wall_seconds=0.0)
    sup = SourceSupervisor(source, hub, config=config)
    sup.tracker.wall = lambda: source.now / 1000  # wall time moves with the market here
    for code, phase in phases.items():
        for ch in channels:
            hub.lvc.put(ch, code, phase)

    async def go() -> Any:
        report = await sup.check()
        for _ in range(silent_seconds // 3):
            source.now += 3000
            # the markets' bursts keep coming (other codes): the markets are alive
            sup.tracker.observe(
                [Update(0, "tick", "600000.SH", "SH", {}), Update(0, "tick", "000001.SZ", "SZ", {})]
            )
            report = await sup.check()
        return report

    return asyncio.run(go()), source, hub


def test_a_suspended_code_is_quiet_a_silent_trading_code_is_stale() -> None:
    report, source, hub = run({"000113.SZ": 1, "600519.SH": 13}, 63, ("tick", "1m"))  # past the 60 s window
    assert report.in_session
    assert set(report.quiet_symbols) == {("tick", "000113.SZ"), ("1m", "000113.SZ")}
    assert (
        report.symbol_staleness[("tick", "000113.SZ")] == report.symbol_staleness[("1m", "000113.SZ")] == 0.0
    )
    assert report.symbol_staleness[("tick", "600519.SH")] > 60
    assert ("tick", "600519.SH") in report.stale_symbols and ("1m", "600519.SH") in report.stale_symbols
    assert not any(code == "000113.SZ" for _, code in report.stale_symbols)
    assert not any(code == "000113.SZ" for _, code in hub.renewed), "a suspended code is never renewed"
    assert ("tick", "600519.SH") in hub.renewed
    assert report.stale_markets == () and source.announced == [] and source.renewals == []


def test_a_market_whose_streamed_codes_are_all_suspended_is_not_stale() -> None:
    report, source, hub = run({"000113.SZ": 1, "002009.SZ": 1, "600149.SH": 20}, 600)
    assert report.stale_markets == () and report.stale_symbols == ()
    assert set(report.market_staleness.values()) == {0.0} and set(report.symbol_staleness.values()) == {0.0}
    assert hub.renewed == [] and source.announced == [] and source.renewals == []
    assert len(report.quiet_symbols) == 3


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["000113.SZ", "002009.SZ", "600064.SH", "600519.SH", "300750.SZ"]),
        st.sampled_from([1, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22]),
        min_size=1,
    ),
    st.integers(min_value=0, max_value=200),
)
def test_a_streamed_code_is_stale_only_if_it_trades_and_is_silent_past_the_window(
    phases: dict[str, int], seconds: int
) -> None:
    report, _, hub = run(phases, seconds)
    elapsed = (seconds // 3) * 3
    for code, phase in phases.items():
        key = ("tick", code)
        halted = phase in HALTED_PHASES
        assert (key in report.quiet_symbols) == (halted and elapsed > 0)
        if halted:
            assert report.symbol_staleness[key] == 0.0 and key not in report.stale_symbols
            assert key not in hub.renewed
        else:
            assert report.symbol_staleness[key] == elapsed or key in hub.renewed  # renewed: window restarted
            assert (key in hub.renewed) == (elapsed > SupervisorConfig().symbol_stale_seconds)
    assert report.stale_markets == ()
