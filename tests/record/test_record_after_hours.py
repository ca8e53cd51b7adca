"""A recording started after hours writes bars while its backfill still runs (issue 16, item 4).

After hours the simulator replays the last session from 09:30:00, so a recorder started then joins at
09:30 and backfills 09:15-09:30 from the tick history. For the whole market that takes minutes (the
09:15-09:25 call auction alone is ~200 snapshots a code) and the old recorder built no bar until the
whole first attempt ended: a 60 s ``qmtgate record`` after hours wrote 485,094 ticks and 0 bars.

Here the simulator's clock is manual and stepped by the test, and the tick history of the call auction
is held back (a gate the test opens) to stand for that long fill, deterministically. The bars of 09:30
(the opening match) and 09:31 must be stored while the auction is still being filled, equal to the
simulator's own bars; once the fill ends, every published tick is stored exactly once, no bar was written
twice or rebuilt for nothing, and the day is complete.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from qmtgate.config import Settings
from qmtgate.hub.stream import HubConfig, StreamHub
from qmtgate.record.bars import label_ms
from qmtgate.record.completeness import report
from qmtgate.record.recorder import Recorder, RecordTarget
from qmtgate.record.writer import RecordWriter
from qmtgate.source.factory import build_simulated_source

from .conftest import DAY, cst_ms

CODES = ("600000.SH", "000001.SZ", "300750.SZ", "430934.BJ")
AUCTION_END = "092500"  # the opening match: history ranges starting before it are the call auction


class GatedSource:
    """The real source, whose tick history of the opening call auction waits until ``gate`` is set."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.gate = asyncio.Event()
        self.ranges: list[tuple[str, str]] = []  # (start, end) of every tick-history read, in order

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    async def history(self, codes: Any, period: str = "1d", start: str = "", end: str = "", **kw: Any) -> Any:
        if period == "tick":
            self.ranges.append((start, end))
            if start[8:] < AUCTION_END:
                await self.gate.wait()
        return await self._source.history(codes, period, start=start, end=end, **kw)


async def _advance(env: Any, recorder: Recorder, seconds: float) -> None:
    """Move the market on in 3 s steps (every snapshot pushed once) and let the recorder take each."""
    while seconds > 0:
        step = min(seconds, 3.0)
        seconds -= step
        env.market.clock.advance(step)
        await asyncio.to_thread(env.publisher.step)
        deadline = time.monotonic() + 10
        while recorder.backlog() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


async def _wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def after_hours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # the moment an after-hours start joins the replayed session (sim.clock.REPLAY_START)
    settings = Settings(source="sim", sim={"clock": "manual", "start": "20250612093000"})
    source = build_simulated_source(settings)
    from qmtgate.sim.xtquant import _env

    env = _env.current()
    env.publisher.stop(manual=True)
    env.market.day_context(env.market.calendar.index_on_or_before(DAY))
    path = tmp_path_factory.mktemp("afterhours") / "afterhours.duckdb"
    out: dict[str, Any] = {"path": path}

    async def scenario() -> None:
        await source.start()
        gated = GatedSource(source)
        hub = StreamHub(source, HubConfig())
        await hub.start()
        writer = RecordWriter(path, create=True, flush_seconds=0.05, idle_seconds=0.3)
        recorder = Recorder(hub, gated, writer, RecordTarget(codes=CODES), clock_interval=0.05, open_wait_s=2)
        try:
            await recorder.start()
            await asyncio.to_thread(env.publisher.step)  # the subscription's snapshot
            await _advance(env, recorder, 6)  # the market moves on: the live span starts
            # the minutes from the opening match on are filled; the call auction is still on its way
            assert await _wait_for(lambda: bool(gated.ranges) and not gated.gate.is_set(), 60)
            await _advance(env, recorder, (cst_ms(9, 31, 6) - env.market.clock.now_ms()) / 1000)
            out["bars_written"] = await _wait_for(
                lambda: (writer.stats.last_bar_ts or 0) >= label_ms(DAY, 1), 60
            )
            await asyncio.to_thread(writer.flush)
            out["during"] = {
                "backfill_state": recorder.stats.backfill_state,
                "filling": writer.stats.filling,
                "bars": duckdb_rows(writer, "SELECT code, ts, open, high, low, close, volume, amount "
                                    "FROM bars ORDER BY code, ts"),
            }  # fmt: skip
            gated.gate.set()
            await asyncio.wait_for(recorder.fill_idle.wait(), 60)
            await _advance(env, recorder, (cst_ms(9, 33, 6) - env.market.clock.now_ms()) / 1000)
            await _wait_for(lambda: (writer.stats.last_bar_ts or 0) >= label_ms(DAY, 3), 60)
            await asyncio.sleep(0.3)  # a few clock ticks: the live span is claimed up to the clock
            await asyncio.to_thread(writer.flush)
            out["ranges"] = list(gated.ranges)
            out["info"] = recorder.info()
        finally:
            await recorder.stop()
            await hub.stop()
        try:
            # the simulator's own record of the session, read once the session is over (as conftest)
            env.market.clock.set(cst_ms(15, 5))
            # the jump drawn here, not by the source's next health probe on its xtdata thread (conftest)
            await asyncio.to_thread(env.publisher.step)
            await source.download_history(list(CODES), "tick", "20250612", "20250612")
            ticks = await source.history(list(CODES), "tick", start="20250612", end="20250612093250")
            out["sim_ticks"] = {c: f["time"].tolist() for c, f in ticks.items()}
            await source.download_history(list(CODES), "1m", "20250612", "20250612")
            out["sim_bars"] = await source.history(list(CODES), "1m", start="20250612", end="20250612093300")
        finally:
            await source.stop()

    asyncio.run(scenario())
    return out


def duckdb_rows(writer: RecordWriter, sql: str) -> list[tuple[Any, ...]]:
    return writer.cursor().execute(sql).fetchall()


def _check_bars(rows: list[tuple[Any, ...]], sim_bars: dict[str, Any], labels: int) -> None:
    """``rows`` (code, ts, open, high, low, close, volume, amount) hold exactly the simulator's first
    ``labels`` bars of every code (volume in shares: the simulator's bars count lots)."""
    for code in CODES:
        got = [r for r in rows if r[0] == code]
        assert len(got) == labels, (code, [r[1] for r in got])
        sim = sim_bars[code]
        assert [r[1] for r in got] == sim["time"].to_numpy()[:labels].tolist(), code
        for i, name in enumerate(("open", "high", "low", "close"), start=2):
            want = sim[name].to_numpy()[:labels]
            assert np.allclose([r[i] for r in got], want, rtol=0, atol=1e-9), (code, name)
        assert [r[6] for r in got] == (sim["volume"].to_numpy()[:labels] * 100).tolist(), code
        assert np.allclose([r[7] for r in got], sim["amount"].to_numpy()[:labels], rtol=0, atol=0.01), code


def test_bars_are_written_while_the_call_auction_is_still_being_backfilled(
    after_hours: dict[str, Any],
) -> None:
    during = after_hours["during"]
    assert after_hours["bars_written"], f"no bar while the backfill ran: {during}"
    assert during["backfill_state"] == "pending" and during["filling"], "the auction fill was still waiting"
    # 09:30 (the opening match) and 09:31, as the simulator built them
    _check_bars(during["bars"], after_hours["sim_bars"], 2)
    # the minutes bars need were read first, the auction (which no bar needs) last
    starts = [start[8:] for start, _ in after_hours["ranges"]]
    assert starts[0] >= AUCTION_END and starts[-1] < AUCTION_END, starts


def test_after_the_fill_every_tick_is_stored_once_and_the_day_is_complete(
    after_hours: dict[str, Any],
) -> None:
    info = after_hours["info"]
    assert info["recorder"]["backfill_state"] == "done" and info["recorder"]["holes_filled"] >= 2
    with duckdb.connect(str(after_hours["path"]), read_only=True) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (code, ts)) FROM ticks WHERE date = ?", [DAY]
        ).fetchall()[0]
        assert total == distinct, "no duplicate tick"
        for code in CODES:
            stored = [r[0] for r in con.execute(
                "SELECT ts FROM ticks WHERE date = ? AND code = ? AND ts <= ? ORDER BY ts",
                [DAY, code, cst_ms(9, 32, 50)],
            ).fetchall()]  # fmt: skip
            want = after_hours["sim_ticks"][code]
            assert len(want) > 150, code  # the call auction's snapshots and the first minutes
            assert stored == want, f"{code}: every published tick of 09:15-09:32:50, once"
        rows = con.execute(
            "SELECT code, ts, open, high, low, close, volume, amount FROM bars ORDER BY code, ts"
        ).fetchall()
        (day,) = report(con)
    assert len(rows) == len({(r[0], r[1]) for r in rows}), "no bar written twice"
    _check_bars(rows, after_hours["sim_bars"], 4)  # 09:30 .. 09:33
    assert day["known"] and day["complete"], day


def test_fill_order_and_barrier_of_one_hole() -> None:
    """The slices of a hole: from the opening match on oldest first, the call auction last."""
    from qmtgate.record.recorder import FILL_SLICE_MS, _slices

    match = cst_ms(9, 25)
    hole = (cst_ms(9, 15), cst_ms(9, 50) - 1)
    got = _slices({hole: ["SH"]}, match)
    assert [(a, b) for a, b, _ in got] == [
        (match, match + FILL_SLICE_MS - 1),
        (match + FILL_SLICE_MS, match + 2 * FILL_SLICE_MS - 1),
        (match + 2 * FILL_SLICE_MS, hole[1]),
        (hole[0], match - 1),
    ]
    assert all(scopes == ("SH",) for _, _, scopes in got)
    # a hole after the opening match is not cut at it
    later = (cst_ms(10, 0), cst_ms(10, 5))
    assert [(a, b) for a, b, _ in _slices({later: ["SH"]}, match)] == [later]


def test_a_fill_of_the_call_auction_alone_rebuilds_no_bar(tmp_path: Path) -> None:
    """Ticks before the opening match carry no trade: filling them must not drop and rebuild the day's
    bars (the auction is filled last, after bars were built in front of it)."""
    writer = RecordWriter(tmp_path / "w.duckdb", create=True)
    try:
        writer._coverage("filled", "fill-a", DAY, ["SH"], cst_ms(9, 15), cst_ms(9, 25) - 1)
        assert writer._rebuild == {}
        writer._coverage("filled", "fill-b", DAY, ["SH"], cst_ms(9, 25), cst_ms(9, 30))
        assert writer._rebuild == {DAY: cst_ms(9, 25)}
    finally:
        writer.close()
