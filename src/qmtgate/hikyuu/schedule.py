"""When to send a whole-market bracket from the last-value cache (market time, China time).

Hikyuu's QMT collector sends ``get_full_tick`` of every code once at 09:30 (its minute-bar updater
builds the day's first bar from it); its HTTP collector polls every N seconds inside trading windows.
:class:`FullSchedule` does both from the gateway's market clock: the opening bracket once per day when
the clock reaches ``open_time`` (not when the gateway starts later), and one every ``interval``
seconds inside the windows. Pure: it is fed times and answers, so it is tested without waiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from qmtgate.vocab import CST

#: An opening bracket is still sent this long after ``open_time`` (a clock step, a slow start-up).
OPEN_GRACE_S = 60.0


class FullSchedule:
    def __init__(
        self,
        open_time: dt.time | None,
        interval_s: float,
        windows: Sequence[tuple[dt.time, dt.time]],
    ) -> None:
        self.open_time = open_time
        self.interval_ms = int(interval_s * 1000)
        self.windows = list(windows)
        self._open_day: dt.date | None = None
        self._last_full_ms: int | None = None

    def due(self, now_ms: int) -> str | None:
        """``'open'``, ``'periodic'`` or None: whether a whole-market bracket is due at ``now_ms``."""
        moment = dt.datetime.fromtimestamp(now_ms / 1000, CST)
        day, tod = moment.date(), moment.time()
        if self.open_time is not None and self._open_day != day and tod >= self.open_time:
            self._open_day = day
            opened = dt.datetime.combine(day, self.open_time, CST)
            if (moment - opened).total_seconds() <= OPEN_GRACE_S:
                return "open"
        if self.interval_ms <= 0 or not any(lo <= tod < hi for lo, hi in self.windows):
            return None
        if (
            self._last_full_ms is None
            or now_ms - self._last_full_ms >= self.interval_ms
            or now_ms < self._last_full_ms
        ):
            return "periodic"
        return None

    def sent(self, now_ms: int) -> None:
        """A whole-market bracket went out at ``now_ms`` (any kind: the next periodic one counts from it)."""
        self._last_full_ms = now_ms
