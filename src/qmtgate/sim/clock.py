"""The simulator's market clock.

Modes
-----
``live`` (default)
    Follows wall time while the exchange is in session; outside trading hours (nights, weekends,
    holidays, the lunch break) it replays the most recent trading session from 09:30:00 (the start of continuous
    trading: the first snapshot comes 3 s later) at ``speed``, looping at 15:00:10 back to 09:30:00, so
    a freshly started gateway always shows a moving market. Status outputs say so.
``real``
    Wall time, exactly as real QMT: nothing moves outside sessions.
``replay``
    A given session day from a given time of day, at ``speed``, looping like ``live``'s replay.
``manual``
    Stands still until :meth:`MarketClock.advance` or :meth:`MarketClock.set` is called (tests).

All values are epoch milliseconds; the trading calendar decides what a session day is.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from .calendar import TradingCalendar
from .timeutil import (
    AM_CLOSE,
    AM_OPEN,
    CLOSE,
    OPEN_AUCTION_START,
    PM_OPEN,
    cst_date_of_ms,
    ms_of,
    seconds_of_day_of_ms,
)

#: Where a replay starts and loops back to: 09:30:00, continuous trading. (09:29 sat in the silent gap
#: after the 09:25 opening match: a newcomer saw one message, then a minute of nothing.)
REPLAY_START = AM_OPEN
REPLAY_END = CLOSE + 10
MODES = ("live", "real", "replay", "manual")


@dataclass(frozen=True)
class ClockStatus:
    mode: str
    now_ms: int
    speed: float
    replaying: bool  # True when the shown session is a replay of a past session
    session_day: dt.date | None
    note: str


class MarketClock:
    """Market time for the simulator (thread-safe)."""

    def __init__(
        self,
        calendar: TradingCalendar,
        mode: str = "live",
        speed: float = 1.0,
        replay_day: dt.date | None = None,
        start_seconds: int = REPLAY_START,
        start_ms: int | None = None,
        wall: callable = time.time,  # type: ignore[valid-type]
        monotonic: callable = time.monotonic,  # type: ignore[valid-type]
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"clock mode must be one of {MODES}, not {mode!r}")
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.cal = calendar
        self.mode = mode
        self.speed = float(speed)
        self._wall = wall
        self._mono = monotonic
        self._lock = threading.Lock()
        self._replay_day: dt.date | None = None
        self._loop = False
        now_wall = int(wall() * 1000)
        if mode == "manual":
            self._anchor_ms = start_ms if start_ms is not None else self._default_replay_start(now_wall)
            self._replay_day = cst_date_of_ms(self._anchor_ms)
        elif mode == "replay":
            day = replay_day or self._latest_session(now_wall)
            self._replay_day = day
            self._anchor_ms = start_ms if start_ms is not None else ms_of(day, start_seconds)
            self._loop = True
        elif mode == "live" and not self._in_session(now_wall):
            self._replay_day = self._latest_session(now_wall)
            self._anchor_ms = ms_of(self._replay_day, start_seconds)
            self._loop = True
        else:
            self._anchor_ms = now_wall
        self._anchor_mono = monotonic()

    # ------------------------------------------------------------------ queries

    def now_ms(self) -> int:
        with self._lock:
            if self.mode in ("real",) or (self.mode == "live" and not self._loop):
                return int(self._wall() * 1000)
            if self.mode == "manual":
                return self._anchor_ms
            elapsed = (self._mono() - self._anchor_mono) * self.speed * 1000.0
            t = self._anchor_ms + int(elapsed)
            if self._loop and self._replay_day is not None:
                start = ms_of(self._replay_day, REPLAY_START)
                end = ms_of(self._replay_day, REPLAY_END)
                if t > end:
                    period = end - start
                    t = start + (t - start) % period
            return t

    def status(self) -> ClockStatus:
        now = self.now_ms()
        replaying = self._replay_day is not None and self.mode in ("live", "replay")
        if self.mode == "manual":
            note = "manual clock (tests): time moves only when advanced"
        elif replaying:
            note = (
                f"outside trading hours: replaying the session of {self._replay_day:%Y-%m-%d} "
                f"at {self.speed:g}x (simulated market)"
            )
        elif self.mode == "real":
            note = "real clock: the simulated market moves only during trading sessions"
        else:
            note = "live: following wall time in a trading session (simulated market)"
        return ClockStatus(
            self.mode, now, self.speed, replaying, self._replay_day or cst_date_of_ms(now), note
        )

    # ------------------------------------------------------------------ manual control

    def set(self, ms: int) -> None:
        """Jump to a market time (manual mode)."""
        self._require_manual()
        with self._lock:
            self._anchor_ms = int(ms)

    def advance(self, seconds: float) -> int:
        """Move a manual clock forward; returns the new time."""
        self._require_manual()
        with self._lock:
            self._anchor_ms += round(seconds * 1000)
            return self._anchor_ms

    def _require_manual(self) -> None:
        if self.mode != "manual":
            raise RuntimeError(
                f"the clock is in {self.mode!r} mode; only a manual clock can be set or advanced"
            )

    # ------------------------------------------------------------------ sharing across processes

    def sharing_key(self) -> dict | None:
        """What two clocks must agree on to share an anchor (None: this clock follows wall time or is
        manual, so there is nothing to share)."""
        if self.mode == "manual" or not self._loop:
            return None
        # A clock reading a shifted wall (sim.wall_time) is its own "now": anchors are in its wall's seconds,
        # so only clocks with the same shift may share one.
        shift = round(self._wall() - time.time())
        return {
            "mode": self.mode,
            "speed": self.speed,
            "replay_day": str(self._replay_day),
            "wall_shift": shift,
        }

    def anchor(self) -> tuple[int, float]:
        """(market ms, wall-clock seconds) of one instant: enough for another process to follow."""
        with self._lock:
            return self._anchor_ms, self._wall() - (self._mono() - self._anchor_mono)

    def adopt_anchor(self, anchor_ms: int, anchor_wall: float) -> None:
        """Follow another process's clock: the same market time at the same wall time."""
        with self._lock:
            self._anchor_ms = int(anchor_ms)
            self._anchor_mono = self._mono() - (self._wall() - float(anchor_wall))

    # ------------------------------------------------------------------ helpers

    def _in_session(self, ms: int) -> bool:
        """Whether ``live`` follows the wall clock from ``ms``: a trading day from the 09:15 auction to the
        close, except the lunch break (90 silent minutes for whoever starts the gateway at lunch; a replay
        shows a moving market instead)."""
        day = cst_date_of_ms(ms)
        sec = seconds_of_day_of_ms(ms)
        lunch = AM_CLOSE + 10 < sec < PM_OPEN
        return self.cal.is_trading_day(day) and OPEN_AUCTION_START <= sec <= REPLAY_END and not lunch

    def _latest_session(self, ms: int) -> dt.date:
        """The most recent trading day whose session has started by ``ms`` (calendar-bounded)."""
        day = cst_date_of_ms(ms)
        if day > self.cal.last:
            return self.cal.last
        i = self.cal.index_on_or_before(day)
        if self.cal.day(i) == day and seconds_of_day_of_ms(ms) < OPEN_AUCTION_START and i > 0:
            i -= 1
        return self.cal.day(max(i, 0))

    def _default_replay_start(self, now_wall: int) -> int:
        return ms_of(self._latest_session(now_wall), REPLAY_START)
