"""A replay answers what its recording can (issue 16, item 10): bars of every minute period and daily bars
aggregated from the recorded 1m bars (equal to the simulator's own), the reference data recorded with the
session (instrument details, sectors, calendar), a clear 501 for the rest, and a clock that starts where
the market moves and steps over silent stretches."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest

from api.support import start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings
from qmtgate.errors import Unsupported
from qmtgate.source.factory import build_simulated_source
from qmtgate.source.replay import GAP_KEEP_MS, ReplayClock, ReplaySource

from .conftest import DAY, Recorded, cst_ms

PERIODS = ("5m", "15m", "30m", "60m", "1d")


@pytest.fixture(scope="module")
def frames(recorded: Recorded) -> dict[str, Any]:
    """The replay's bars at the end of the day, and the simulator's own, per period."""
    codes = list(recorded.codes)

    async def read() -> dict[str, Any]:
        replay = ReplaySource(recorded.path, DAY, speed=1, start="15:00:30")
        await replay.start()
        sim = build_simulated_source(
            Settings(source="sim", sim={"clock": "manual", "start": "20250612150500"})
        )
        await sim.start()
        try:
            out: dict[str, Any] = {"replay": {}, "sim": {}}
            for period in PERIODS:
                out["replay"][period] = await replay.history(
                    codes, period, start="20250612", end="20250612235959"
                )
                await sim.download_history(codes, period, "20250612", "20250612")
                out["sim"][period] = await sim.history(codes, period, start="20250612", end="20250612235959")
            out["details"] = await replay.instrument_details(["600000.SH", "999999.SH"])
            out["sectors"] = await replay.sector_list()
            out["members"] = await replay.sector_members("沪深A股")
            out["dates"] = await replay.trading_dates("SH", "20250601", "20250612")
            out["caps"] = replay.capabilities()
            with pytest.raises(Unsupported):
                await replay.divid_factors("600000.SH")
            return out
        finally:
            await replay.stop()
            await sim.stop()

    return asyncio.run(read())


@pytest.mark.parametrize("period", PERIODS)
def test_aggregated_bars_equal_the_simulators(
    frames: dict[str, Any], recorded: Recorded, period: str
) -> None:
    for code in recorded.codes:
        got, want = frames["replay"][period][code], frames["sim"][period][code]
        want = want[want["time"] >= cst_ms(0, 0)]  # the recorded day only
        assert len(got) == len(want) and len(got) > 0, (code, period)
        assert (got["time"].to_numpy() == want["time"].to_numpy()).all(), (code, period)
        for name in ("open", "high", "low", "close", "preClose"):
            assert np.allclose(got[name].to_numpy(), want[name].to_numpy(), rtol=0, atol=1e-9), (
                code,
                period,
                name,
            )
        assert (got["volume"].to_numpy() == want["volume"].to_numpy()).all(), (code, period)
        assert np.allclose(got["amount"].to_numpy(), want["amount"].to_numpy(), rtol=0, atol=0.05), (
            code,
            period,
        )


def test_reference_data_recorded_with_the_session(frames: dict[str, Any]) -> None:
    detail = frames["details"]["600000.SH"]
    assert detail["InstrumentName"] == "浦发银行" and detail["ExchangeID"] == "SH"
    assert frames["details"]["999999.SH"] is None
    assert "沪深A股" in frames["sectors"] and "600000.SH" in frames["members"]
    assert len(frames["members"]) > 1000
    assert frames["dates"][-1] == cst_ms(0, 0) and len(frames["dates"]) >= 5
    assert frames["caps"].features["sectors"] is True
    assert {"1d", "5m", "60m", "tick", "1m"} <= set(frames["caps"].periods)


def test_replay_clock_steps_over_silent_stretches() -> None:
    now = [0.0]
    start = cst_ms(9, 25)
    gaps = [(cst_ms(9, 25), cst_ms(9, 30)), (cst_ms(11, 30), cst_ms(13, 0))]
    clock = ReplayClock(start, cst_ms(15, 0), speed=1, gaps=gaps, monotonic=lambda: now[0])
    assert clock.now_ms() == start
    now[0] = 1.0
    assert clock.now_ms() == start + 1000  # the opening match stays a moment
    now[0] = 2.0  # one more second: the five silent minutes are skipped
    # one second into the gap's kept second -> one second before its end: 09:29:59 + 1 s
    assert clock.now_ms() == cst_ms(9, 30) - GAP_KEEP_MS + 1000
    now[0] = 2.0 + 7210  # two hours later: 11:30:10 on the gap-free clock, past 11:30's kept second
    assert clock.now_ms() == cst_ms(13, 0, 8)  # the lunch break skipped as well


def test_a_default_replay_starts_at_the_first_tick_and_skips_the_quiet_minutes(recorded: Recorded) -> None:
    async def gaps() -> tuple[int, list[tuple[int, int]]]:
        replay = ReplaySource(recorded.path, DAY, speed=1)
        await replay.start()
        try:
            assert replay.clock is not None
            return replay.clock.start_ms, replay.clock.gaps
        finally:
            await replay.stop()

    start, found = asyncio.run(gaps())
    with duckdb.connect(str(recorded.path), read_only=True) as con:
        first = con.execute("SELECT min(ts) FROM ticks WHERE date = ?", [DAY]).fetchall()[0][0]
    assert start == first
    # after the 09:25 opening match nothing is published until 09:30
    assert any(a <= cst_ms(9, 25) and b >= cst_ms(9, 30) for a, b in found), found


@pytest.fixture(scope="module")
def bare_copy(recorded: Recorded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recording without its reference data (as one made before it was kept)."""
    path = tmp_path_factory.mktemp("bare") / "bare.duckdb"
    shutil.copy(recorded.path, path)
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM ref_instruments")
        con.execute("DELETE FROM ref_sectors")
    return path


def test_replay_api_serves_daily_bars_sectors_and_501_for_the_rest(
    recorded: Recorded, bare_copy: Path
) -> None:
    settings = Settings(
        source="replay", replay={"db": recorded.path, "date": "2025-06-12", "speed": 10, "start": "15:00:30"}
    )
    server = start_server(create_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            daily = client.get("/api/v1/klines/600000.SH", params={"period": "1d"})
            assert daily.status_code == 200, daily.text
            assert len(daily.json()["data"]) == 1
            five = client.get("/api/v1/klines/600000.SH", params={"period": "5m", "start": "20250612"})
            assert five.status_code == 200 and len(five.json()["data"]) >= 1
            assert "沪深A股" in client.get("/api/v1/sectors").json()["data"]
            members = client.get("/api/v1/sectors/沪深A股/members").json()
            assert "600000.SH" in members["data"]
            detail = client.get("/api/v1/instruments/600000.SH").json()
            assert detail["data"]["name"] == "浦发银行"
            div = client.get("/api/v1/dividends/600000.SH")
            assert div.status_code == 501 and div.json()["error"]["code"] == "unsupported"
            week = client.get("/api/v1/klines/600000.SH", params={"period": "1w"})
            assert week.status_code in (422, 501), week.text
    finally:
        server.stop()
    settings = Settings(source="replay", replay={"db": bare_copy, "date": "2025-06-12", "speed": 10})
    server = start_server(create_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            sectors = client.get("/api/v1/sectors")
            assert sectors.status_code == 501 and sectors.json()["error"]["code"] == "unsupported"
    finally:
        server.stop()


def test_replay_without_a_date_serves_the_newest_recorded_day(recorded: Recorded, tmp_path: Path) -> None:
    """`serve --source replay --db FILE` (docs/recording.md) replays the newest recorded day; a file with no
    ticks, or none at all, is a clear error, not a traceback."""
    from qmtgate.record.cli import check_replay_settings
    from qmtgate.record.schema import open_database
    from qmtgate.source.factory import build_replay_source
    from qmtgate.source.replay import newest_recorded_day

    settings = Settings(source="replay", replay={"db": recorded.path})
    check_replay_settings(settings)  # no date needed
    assert newest_recorded_day(recorded.path) == DAY
    source = build_replay_source(settings)
    assert isinstance(source, ReplaySource) and source.day == DAY
    empty = tmp_path / "empty.duckdb"
    open_database(empty, create=True).close()
    with pytest.raises(ValueError, match="no recorded ticks"):
        newest_recorded_day(empty)
    with pytest.raises(ValueError, match="no recording"):
        newest_recorded_day(tmp_path / "absent.duckdb")
