"""Recorder restarts leave no silent gap (issue 17, item 2).

One day (2025-06-12, three codes) recorded by three starts on a manual simulator clock:

1. 09:40-09:50, the source's tick history times out twice first: the backfill of 09:15-09:40 is retried
   until it is stored (the old recorder tried once and recorded "live data only");
2. 10:30-10:40, the tick history fails throughout (a backfill cut short): the hole 09:50-10:30 stays,
   and the completeness record, ``record --status`` and ``/api/v1/recorded/completeness`` report it;
3. 11:00-11:05, a healthy source: both holes of the day (09:50-10:30 and 10:40-11:00) are found and filled
   (the old recorder only looked after the day's last stored tick), every tick the simulator published is
   stored exactly once, the bars built over the hole are rebuilt, and the day is reported complete.

A last test stops a real ``qmtgate record`` process with SIGTERM: it must store, claim and checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from qmtgate.config import Settings
from qmtgate.errors import SourceTimeout
from qmtgate.hub.stream import HubConfig, StreamHub
from qmtgate.record.completeness import merge, report, subtract
from qmtgate.record.recorder import Recorder, RecordTarget
from qmtgate.record.writer import RecordWriter
from qmtgate.source.factory import build_simulated_source

from .conftest import DAY, cst_ms

CODES = ("600000.SH", "000001.SZ", "430934.BJ")


class FlakySource:
    """The real source, whose ``history`` raises a timeout ``fail`` times (-1: always)."""

    def __init__(self, source: Any, fail: int) -> None:
        self._source = source
        self.fail = fail
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    async def history(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail < 0 or self.failed < self.fail:
            self.failed += 1
            raise SourceTimeout("get_market_data_ex did not answer within 5 s", {})
        return await self._source.history(*args, **kwargs)


async def _advance(env: Any, recorder: Recorder, seconds: float) -> None:
    while seconds > 0:
        step = min(seconds, 60.0)
        seconds -= step
        env.market.clock.advance(step)
        await asyncio.to_thread(env.publisher.step)
        await asyncio.sleep(0.01)
        deadline = time.monotonic() + 10
        while recorder.backlog() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


async def _run(
    env: Any, source: Any, path: Path, *, create: bool, until_ms: int, fail: int, wait_idle: bool
) -> dict[str, Any]:
    hub = StreamHub(source, HubConfig())
    await hub.start()
    writer = RecordWriter(path, create=create, flush_seconds=0.05, idle_seconds=0.3)
    flaky = FlakySource(source, fail)
    recorder = Recorder(
        hub,
        flaky,
        writer,
        RecordTarget(codes=CODES),
        clock_interval=0.05,
        retry_first_s=0.05,
        retry_max_s=0.2,
        open_wait_s=2,
    )
    await recorder.start()
    await asyncio.to_thread(env.publisher.step)
    for _ in range(2):  # the market moves on: the live span starts with the first push after the snapshot
        env.market.clock.advance(3)
        await asyncio.to_thread(env.publisher.step)
        await asyncio.sleep(0.05)
    await asyncio.wait_for(recorder.backfill_done.wait(), 60)
    if wait_idle:
        await asyncio.wait_for(recorder.fill_idle.wait(), 60)
    await _advance(env, recorder, (until_ms - env.market.clock.now_ms()) / 1000)
    await asyncio.sleep(0.3)  # a few clock ticks: the live span is claimed up to the clock
    await asyncio.to_thread(writer.flush)
    info = recorder.info()
    info["failed"] = flaky.failed
    await recorder.stop()
    await hub.stop()
    return info


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(source="sim", sim={"clock": "manual", "start": "20250612094000"})
    source = build_simulated_source(settings)
    from qmtgate.sim.xtquant import _env

    env = _env.current()
    env.publisher.stop(manual=True)
    env.market.day_context(env.market.calendar.index_on_or_before(DAY))
    path = tmp_path_factory.mktemp("gaps") / "gaps.duckdb"
    out: dict[str, Any] = {"path": path, "env": env}

    async def scenario() -> None:
        await source.start()
        try:
            out["first"] = await _run(
                env, source, path, create=True, until_ms=cst_ms(9, 50), fail=2, wait_idle=True
            )
            env.market.clock.set(cst_ms(10, 30))
            await asyncio.to_thread(env.publisher.step)
            out["second"] = await _run(
                env, source, path, create=False, until_ms=cst_ms(10, 40), fail=-1, wait_idle=False
            )
            with duckdb.connect(str(path), read_only=True) as con:
                out["report_between"] = report(con)
            env.market.clock.set(cst_ms(11, 0))
            await asyncio.to_thread(env.publisher.step)
            out["third"] = await _run(
                env, source, path, create=False, until_ms=cst_ms(11, 5), fail=0, wait_idle=True
            )
            # the simulator's own record of the session, read once the session is over (as conftest)
            env.market.clock.set(cst_ms(15, 5))
            await source.download_history(list(CODES), "tick", "20250612", "20250612")
            history = await source.history(list(CODES), "tick", start="20250612", end="20250612235959")
            out["sim_ticks"] = {c: f["time"].tolist() for c, f in history.items()}
            await source.download_history(list(CODES), "1m", "20250612", "20250612")
            out["sim_bars"] = await source.history(list(CODES), "1m", start="20250612", end="20250612235959")
        finally:
            await source.stop()

    asyncio.run(scenario())
    return out


def test_backfill_is_retried_after_a_source_timeout(gaps: dict[str, Any]) -> None:
    first = gaps["first"]["recorder"]
    assert gaps["first"]["failed"] == 2
    assert first["backfill_failures"] == 2, "two timeouts, each retried"
    assert first["backfill_state"] == "done" and first["backfill_rows"] > 0
    with duckdb.connect(str(gaps["path"]), read_only=True) as con:
        before_start = con.execute(
            "SELECT count(*) FROM ticks WHERE date = ? AND ts < ?", [DAY, cst_ms(9, 40)]
        ).fetchall()[0][0]
    assert before_start > 100, "the morning before the first start came from the tick history"


def test_a_hole_left_by_a_failed_backfill_is_reported(gaps: dict[str, Any]) -> None:
    second = gaps["second"]["recorder"]
    assert second["backfill_state"] == "retrying" and second["backfill_failures"] >= 1
    (day,) = gaps["report_between"]
    assert day["known"] and not day["complete"]
    (hole,) = day["holes"]
    # the first run claimed up to 09:50 less its margin; the second started at 10:30 and claimed from
    # its first push after the subscription's snapshot (10:30:03)
    assert cst_ms(9, 49, 40) <= hole["start_ms"] <= cst_ms(9, 50)
    assert cst_ms(10, 30) - 1 <= hole["end_ms"] <= cst_ms(10, 30, 6)
    assert sorted(hole["scopes"]) == sorted(CODES)
    assert 2390 <= day["missing_seconds"] <= 2420


def test_holes_anywhere_in_the_day_are_filled_on_the_next_start(gaps: dict[str, Any]) -> None:
    third = gaps["third"]["recorder"]
    assert third["holes_filled"] >= 2, "09:50-10:30 (an earlier start's) and 10:40-11:00 (the downtime)"
    assert third["backfill_state"] == "done"
    with duckdb.connect(str(gaps["path"]), read_only=True) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (code, ts)) FROM ticks WHERE date = ?", [DAY]
        ).fetchall()[0]
        assert total == distinct
        for code in CODES:
            stored = [r[0] for r in con.execute(
                "SELECT ts FROM ticks WHERE date = ? AND code = ? AND ts <= ? ORDER BY ts",
                [DAY, code, cst_ms(11, 4, 50)],
            ).fetchall()]  # fmt: skip
            want = [t for t in gaps["sim_ticks"][code] if t <= cst_ms(11, 4, 50)]
            assert len(want) > 300, code
            assert stored == want, f"{code}: every published tick of 09:15-11:04:50, once"
        # bars built over the hole by the second run were rebuilt from the filled ticks
        for code in CODES:
            got = con.execute(
                "SELECT ts, close, volume FROM bars WHERE date = ? AND code = ? AND period = '1m' ORDER BY ts",
                [DAY, code],
            ).fetchnumpy()
            sim = gaps["sim_bars"][code]
            n = len(got["ts"])
            assert n >= 90, code
            assert (got["ts"] == sim["time"].to_numpy()[:n]).all(), code
            assert np.allclose(got["close"], sim["close"].to_numpy()[:n], rtol=0, atol=1e-9), code
            assert (got["volume"] == sim["volume"].to_numpy()[:n] * 100).all(), code
            dupes = con.execute(
                "SELECT count(*) - count(DISTINCT ts) FROM bars WHERE date = ? AND code = ?", [DAY, code]
            ).fetchall()[0][0]
            assert dupes == 0


def test_completeness_reported_by_status_and_the_api(gaps: dict[str, Any]) -> None:
    from qmtgate.cli import app

    result = CliRunner().invoke(app, ["record", "--db", str(gaps["path"]), "--status", "--json"])
    assert result.exit_code == 0, result.output
    (day,) = json.loads(result.output)
    assert day["date"] == "2025-06-12" and day["known"] and day["complete"], day
    assert day["ticks"] > 1000 and sorted(day["scopes"]) == sorted(CODES)
    text = CliRunner().invoke(app, ["record", "--db", str(gaps["path"]), "--status"])
    assert "2025-06-12" in text.output and "complete for" in text.output

    from api.support import start_server
    from qmtgate.api.app import create_app

    settings = Settings(source="replay", replay={"db": gaps["path"], "date": "2025-06-12", "speed": 10})
    server = start_server(create_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = client.get("/api/v1/recorded/completeness").json()
            assert body["days"][0]["complete"] is True and body["days"][0]["holes"] == []
            one = client.get("/api/v1/recorded/completeness", params={"date": "20250612"}).json()
            assert [d["date"] for d in one["days"]] == ["2025-06-12"]
            bad = client.get("/api/v1/recorded/completeness", params={"date": " "})
            assert bad.status_code == 422 and bad.json()["error"]["code"]
    finally:
        server.stop()


def test_holes_arithmetic() -> None:
    assert merge([(5, 9), (0, 3), (4, 4), (20, 30)]) == [(0, 9), (20, 30)]
    assert subtract([(0, 100)], [(10, 20), (21, 30), (90, 200)]) == [(0, 9), (31, 89)]
    assert subtract([(0, 10), (50, 60)], []) == [(0, 10), (50, 60)]


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX SIGTERM to a child")
def test_sigterm_stores_claims_and_checkpoints(tmp_path: Path) -> None:
    db = tmp_path / "term.duckdb"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    cmd = [sys.executable, "-c", "from qmtgate.cli import app; app()", "record", "--db", str(db), "--create", "--codes", ",".join(CODES),
           "--source", "sim", "--sim-clock", "replay", "--sim-speed", "20", "--sim-start", "20250612093000",
           "--no-backfill", "--log-level", "info"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "recorded " in line and " ticks" in line and not line.split("recorded ")[1].startswith("0 "):
                break
        assert any("recorded " in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(lines)
    assert proc.returncode == 0, log
    assert "SIGTERM" in log, log
    assert not Path(str(db) + ".wal").exists() or Path(str(db) + ".wal").stat().st_size == 0, "checkpointed"
    with duckdb.connect(str(db), read_only=True) as con:
        ticks = con.execute("SELECT count(*) FROM ticks").fetchall()[0][0]
        claimed = con.execute("SELECT max(hi - lo) FROM coverage WHERE kind = 'live'").fetchall()[0][0]
    assert ticks > 0
    assert claimed is not None and claimed > 0, "the live span was claimed on the way out"
