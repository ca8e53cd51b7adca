"""The SSE/SZSE trading calendar, from exchange-calendars' maintained XSHG calendar.

SH, SZ and BJ equities share one calendar. Days are handled as proleptic ordinals (``date.toordinal()``)
so that calendar arithmetic is array arithmetic.
"""

from __future__ import annotations

import bisect
import datetime as dt
from functools import cached_property

import numpy as np

#: The first session the simulator generates history from unless configured otherwise.
DEFAULT_HISTORY_START = dt.date(2015, 1, 5)


class TradingCalendar:
    """Trading sessions between ``start`` and the last year the XSHG holiday table covers."""

    def __init__(self, start: dt.date = DEFAULT_HISTORY_START) -> None:
        import warnings

        import exchange_calendars as xcals

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = xcals.get_calendar("XSHG", start=start.isoformat())
        self._ordinals: list[int] = [d.toordinal() for d in cal.sessions.date]
        self.ordinals = np.asarray(self._ordinals, dtype=np.int64)
        self.first = dt.date.fromordinal(self._ordinals[0])
        self.last = dt.date.fromordinal(self._ordinals[-1])

    def __len__(self) -> int:
        return len(self._ordinals)

    def day(self, index: int) -> dt.date:
        return dt.date.fromordinal(self._ordinals[index])

    def is_trading_day(self, day: dt.date) -> bool:
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        return i < len(self._ordinals) and self._ordinals[i] == day.toordinal()

    def index_of(self, day: dt.date) -> int:
        """Index of a trading day; KeyError if ``day`` is not one."""
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        if i < len(self._ordinals) and self._ordinals[i] == day.toordinal():
            return i
        raise KeyError(day)

    def index_on_or_before(self, day: dt.date) -> int:
        """Index of the last trading day <= ``day`` (-1 if none)."""
        return bisect.bisect_right(self._ordinals, day.toordinal()) - 1

    def index_on_or_after(self, day: dt.date) -> int:
        """Index of the first trading day >= ``day`` (len(self) if none)."""
        return bisect.bisect_left(self._ordinals, day.toordinal())

    def previous(self, day: dt.date) -> dt.date | None:
        i = bisect.bisect_left(self._ordinals, day.toordinal()) - 1
        return self.day(i) if i >= 0 else None

    def next(self, day: dt.date) -> dt.date | None:
        i = bisect.bisect_right(self._ordinals, day.toordinal())
        return self.day(i) if i < len(self._ordinals) else None

    def between(self, start: dt.date, end: dt.date) -> list[dt.date]:
        lo = self.index_on_or_after(start)
        hi = self.index_on_or_before(end)
        return [self.day(i) for i in range(lo, hi + 1)]

    @cached_property
    def holidays(self) -> list[dt.date]:
        """Weekdays without a session (exchange holidays), first session to the end of the last year."""
        sessions = set(self._ordinals)
        out: list[dt.date] = []
        d = self.first
        end = dt.date(self.last.year, 12, 31)
        while d <= end:
            if d.weekday() < 5 and d.toordinal() not in sessions:
                out.append(d)
            d += dt.timedelta(days=1)
        return out
