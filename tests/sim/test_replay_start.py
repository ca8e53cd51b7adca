"""Where an after-hours replay starts (issue #16 item 4): continuous trading, so ticks come at once, and
the ``sim.wall_time`` setting that lets a test (or a demo) start the gateway "after hours" at any hour."""

from __future__ import annotations

import datetime as dt
import time

from qmtgate.config import Settings
from qmtgate.sim.clock import MarketClock
from qmtgate.sim.market import SimMarket
from qmtgate.sim.timeutil import AM_OPEN, ms_of, seconds_of_day_of_ms
from qmtgate.source.factory import _install_options, shifted_wall

FRIDAY = dt.date(2026, 12, 4)  # a trading day
CST = dt.timezone(dt.timedelta(hours=8))


def _wall_at(hour: int) -> float:
    return dt.datetime.combine(FRIDAY, dt.time(hour), CST).timestamp()


def test_live_clock_after_hours_replays_from_continuous_trading() -> None:
    cal = SimMarket(seed=0).calendar
    now = [0.0]
    clock = MarketClock(cal, mode="live", wall=lambda: _wall_at(20), monotonic=lambda: now[0])
    status = clock.status()
    assert status.replaying and status.session_day == FRIDAY
    assert clock.now_ms() == ms_of(FRIDAY, AM_OPEN)  # 09:30:00, not 09:29 before the open
    now[0] = 5.0
    assert seconds_of_day_of_ms(clock.now_ms()) == AM_OPEN + 5  # and it moves


def test_a_lunch_time_start_replays_the_session_instead_of_90_silent_minutes() -> None:
    cal = SimMarket(seed=0).calendar
    noon = MarketClock(cal, mode="live", wall=lambda: _wall_at(12), monotonic=lambda: 0.0)
    assert noon.status().replaying and noon.now_ms() == ms_of(FRIDAY, AM_OPEN)
    morning = MarketClock(cal, mode="live", wall=lambda: _wall_at(10), monotonic=lambda: 0.0)
    assert not morning.status().replaying  # in session: the wall clock, as before
    assert morning.now_ms() == _wall_at(10) * 1000


def test_replay_loops_back_to_continuous_trading() -> None:
    cal = SimMarket(seed=0).calendar
    now = [0.0]
    clock = MarketClock(cal, mode="live", wall=lambda: _wall_at(20), monotonic=lambda: now[0])
    now[0] = (15 * 3600 + 10 - AM_OPEN) + 7.0  # 7 s past the loop end (15:00:10)
    assert seconds_of_day_of_ms(clock.now_ms()) == AM_OPEN + 7


def test_wall_time_setting_reaches_the_clock(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QMTGATE_SIM__WALL_TIME", "20261204200000")
    settings = Settings()
    assert settings.sim.wall_time == "20261204200000"
    options = _install_options(settings.sim)
    assert abs(options["wall"]() - _wall_at(20)) < 5
    wall = shifted_wall("20261204200000")
    first = wall()
    time.sleep(0.05)
    assert wall() > first  # it runs on


def test_a_bare_replay_date_starts_in_continuous_trading() -> None:
    options = _install_options(Settings(sim={"clock": "replay", "start": "20261204"}).sim)
    assert options["start_ms"] == ms_of(FRIDAY, AM_OPEN)
