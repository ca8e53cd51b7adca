"""``qmtgate record --url``: recording a live gateway's stream through qmtgate.client (issue 16, item 14).

A real gateway (uvicorn on loopback, the simulator at 20x from 09:30, recording three codes itself) and
``qmtgate record --url`` run in this process. The remote recording must hold only ticks the gateway
published, claim its live span, and fill the hole before its start (09:15 to the moment it joined) from
the gateway's own recording through REST, once the gateway's recording covers it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
import httpx
from typer.testing import CliRunner

from api.support import start_server
from qmtgate.api.app import create_app
from qmtgate.config import Settings

CODES = ("600000.SH", "000001.SZ", "300750.SZ")
DAY = dt.date(2025, 6, 12)
CST = dt.timezone(dt.timedelta(hours=8))


def cst_ms(hh: int, mm: int) -> int:
    return int(dt.datetime(2025, 6, 12, hh, mm, tzinfo=CST).timestamp() * 1000)


def _stored(path: Path, lo: int | None = None, hi: int | None = None) -> set[tuple[str, int]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT code, ts FROM ticks WHERE date = ? AND ts BETWEEN ? AND ?",
            [DAY, lo if lo is not None else 0, hi if hi is not None else 2**62],
        ).fetchall()
    return {(c, int(t)) for c, t in rows}


def test_record_url_records_a_live_gateway_and_backfills_from_its_recording(tmp_path: Path) -> None:
    gateway_db = tmp_path / "gateway.duckdb"
    settings = Settings(
        source="sim",
        sim={"clock": "replay", "speed": 20, "start": "20250612093000"},
        recorder={"enabled": True, "db": gateway_db, "create": True, "markets": (), "codes": CODES},
    )
    server = start_server(create_app(settings))
    local = tmp_path / "remote.duckdb"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while client.get("/api/v1/health/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)  # the gateway's simulator warms up first
        time.sleep(3)  # the gateway records for a while before the remote recorder joins
        from qmtgate.cli import app

        result = CliRunner().invoke(
            app,
            [
                "record",
                "--db",
                str(local),
                "--create",
                "--url",
                server.url,
                "--codes",
                ",".join(CODES),
                "--duration",
                "25",
                "--log-level",
                "info",
            ],
        )
        assert result.exit_code == 0, result.output
        with httpx.Client(base_url=server.url, timeout=30) as client:
            published = client.get(
                "/api/v1/recorded/ticks",
                params={
                    "codes": ",".join(CODES),
                    "start": "20250612000000",
                    "end": "20250612235959",
                    "fields": "last_price",
                },
            ).json()["data"]
            gateway = {(r["code"], r["ts"]) for r in published}
            metrics = client.get("/metrics").text  # the gateway's own recorder, in its metrics
            assert "qmtgate_recorder_ticks_total" in metrics and "qmtgate_recorder_holes " in metrics
            assert "qmtgate_recorder_backfill_done" in metrics
    finally:
        server.stop()
    mine = _stored(local)
    assert len(mine) > 200
    newest = max(t for _, t in gateway)  # the gateway's writer may not have flushed its last second yet
    assert {k for k in mine if k[1] <= newest} <= gateway, "only ticks the gateway published"
    with duckdb.connect(str(local), read_only=True) as con:
        live = con.execute(
            "SELECT min(lo), max(hi), list(DISTINCT scope) FROM coverage WHERE kind = 'live'"
        ).fetchall()[0]
        claims = con.execute("SELECT scope, lo, hi, kind FROM coverage").fetchall()
    lo, hi, scopes = live
    assert sorted(scopes) == sorted(CODES) and hi > lo, "the live span was claimed"
    fills = [c for c in claims if c[3] == "fill"]
    assert fills, "part of the hole before the start was filled from the gateway's recording"
    # every claim is true: each tick the gateway holds inside a claimed span is in the recording
    for code, a, b, _kind in claims:
        want = {k for k in gateway if k[0] == code and a <= k[1] <= min(b, newest)}
        assert want <= mine, (code, a, b, sorted(want - mine)[:5])
    # and what the recording lacks is reported as a hole by `record --status`
    from qmtgate.cli import app

    status = CliRunner().invoke(app, ["record", "--db", str(local), "--status", "--json"])
    (day,) = json.loads(status.output)
    assert day["known"]
    for code, ts in gateway - mine:
        if ts < cst_ms(9, 15) or (cst_ms(11, 30) < ts < cst_ms(13, 0)) or ts > hi:
            continue  # outside the session windows, or after the last claim
        assert any(h["start_ms"] <= ts <= h["end_ms"] and code in h["scopes"] for h in day["holes"]), (
            code,
            ts,
        )
