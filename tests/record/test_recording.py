"""Recording: a restart loses no tick and duplicates none; bars equal the simulator's own 1m bars."""

from __future__ import annotations

import duckdb
import numpy as np

from .conftest import DAY, Recorded


def _sim_frames(rec: Recorded, period: str) -> dict:
    from qmtgate.sim.xtquant import xtdata

    codes = list(rec.codes)
    xtdata.download_history_data2(codes, period, "20250612", "20250612")
    return xtdata.get_market_data_ex(
        [], codes, period=period, start_time="20250612", end_time="20250612235959"
    )


def test_restart_mid_session_loses_no_tick_and_duplicates_none(recorded: Recorded) -> None:
    assert recorded.first["writer"]["errors"] == 0 and recorded.second["writer"]["errors"] == 0
    assert recorded.second["recorder"]["backfill_rows"] > 0, "the five-hour gap came from tick history"
    assert recorded.first["recorder"]["conflated_updates"] == 0
    assert recorded.second["recorder"]["conflated_updates"] == 0
    sim = _sim_frames(recorded, "tick")
    with duckdb.connect(str(recorded.path), read_only=True) as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (code, ts)) FROM ticks WHERE date = ?", [DAY]
        ).fetchall()[0]
        assert total == distinct, "no (code, ts) is stored twice"
        for code in recorded.codes:
            stored = [r[0] for r in con.execute(
                "SELECT ts FROM ticks WHERE date = ? AND code = ? ORDER BY ts", [DAY, code]
            ).fetchall()]  # fmt: skip
            expected = sim[code]["time"].tolist()
            assert len(expected) > 100, code
            assert stored == expected, f"{code}: every snapshot of the session, once"
            last = con.execute(
                "SELECT volume, amount FROM ticks WHERE date = ? AND code = ? ORDER BY ts DESC LIMIT 1",
                [DAY, code],
            ).fetchall()[0]
            assert last[0] == int(sim[code]["volume"].iloc[-1]) * 100  # shares
            assert abs(last[1] - float(sim[code]["amount"].iloc[-1])) < 0.01


def test_bars_from_recorded_ticks_equal_the_simulators_1m_bars(recorded: Recorded) -> None:
    sim = _sim_frames(recorded, "1m")
    with duckdb.connect(str(recorded.path), read_only=True) as con:
        for code in recorded.codes:
            got = con.execute(
                "SELECT ts, open, high, low, close, pre_close, volume, amount FROM bars "
                "WHERE date = ? AND code = ? AND period = '1m' ORDER BY ts",
                [DAY, code],
            ).fetchnumpy()
            want = sim[code]
            assert len(want) == 241 and len(got["ts"]) == 241, code
            assert (got["ts"] == want["time"].to_numpy()).all(), code
            for mine, theirs in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                                 ("pre_close", "preClose")]:  # fmt: skip
                assert np.allclose(got[mine], want[theirs].to_numpy(), rtol=0, atol=1e-9), (code, mine)
            assert (got["volume"] == want["volume"].to_numpy() * 100).all(), (code, "volume")
            # the feed's cumulative amount is rounded to fen, so one bar may differ by 0.01 yuan
            assert np.allclose(got["amount"], want["amount"].to_numpy(), rtol=0, atol=0.011), (code, "amount")
        dupes = con.execute(
            "SELECT count(*) - count(DISTINCT (code, period, ts)) FROM bars WHERE date = ?", [DAY]
        ).fetchall()[0][0]
        assert dupes == 0


def test_a_session_joined_after_the_open_gets_no_bar_it_cannot_know(recorded: Recorded) -> None:
    """At 09:14 the subscription's first push is the previous session's closing snapshot: that day's
    recording starts after its open, so the snapshot only sets a baseline and no bar is invented."""
    with duckdb.connect(str(recorded.path), read_only=True) as con:
        ticks = con.execute("SELECT count(*) FROM ticks WHERE date = '2025-06-11'").fetchall()[0][0]
        bars = con.execute("SELECT count(*) FROM bars WHERE date = '2025-06-11'").fetchall()[0][0]
    assert ticks == len(recorded.codes)
    assert bars == 0
