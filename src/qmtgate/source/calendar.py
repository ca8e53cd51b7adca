"""The A-share trading calendar and the session clock, as the gateway sees them through its source.

SH, SZ and BJ share one calendar (the exchanges close on the same days), so the gateway keeps one list of
trading days: past sessions and the coming weekdays that are not holidays, as ``get_trading_calendar('SH')``
returns them (to the end of the year the holiday table covers). Sources without it fall back to
``get_trading_dates('SH')`` (past sessions only).

:meth:`CalendarService.session` answers the question every history read asks: which session is forming
now, and which is the last complete one? It follows the *source's* clock, because the simulated market
replays a past session outside trading hours.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from dataclasses import dataclass

from qmtgate.errors import InvalidDate, QmtgateError
from qmtgate.source.base import MarketSource
from qmtgate.source.convert import CST, date_of_ms, day_start_ms

#: First call-auction second and the closing match of an A-share session (Asia/Shanghai).
SESSION_OPEN = dt.time(9, 15)
SESSION_CLOSE = dt.time(15, 0)
#: Markets that share the calendar.
CALENDAR_MARKETS: tuple[str, ...] = ("SH", "SZ", "BJ")


@dataclass(frozen=True)
class SessionState:
    """Where the market is. ``forming`` is the session in progress (09:15 <= now < 15:00 on a trading
    day) or None; ``last_complete`` the latest session whose closing match has happened."""

    now_ms: int
    today: dt.date
    forming: dt.date | None
    last_complete: dt.date | None


class CalendarService:
    """Trading days and session state over a :class:`MarketSource`; the day list is reloaded hourly."""

    def __init__(self, source: MarketSource, *, reload_seconds: float = 3600.0) -> None:
        self._source = source
        self._reload_seconds = reload_seconds
        self._days: list[dt.date] = []
        self._ordinals: list[int] = []
        self._loaded_at = -1e18
        self._loaded_for: dt.date | None = None
        self._covers_future = False

    async def days(self) -> list[dt.date]:
        """All known trading days, ascending (past sessions and, when the source knows them, coming ones)."""
        today = date_of_ms(self._source.now_ms())
        if (
            not self._days
            or time.monotonic() - self._loaded_at > self._reload_seconds
            or today != self._loaded_for
        ):
            await self._load(today)
        return self._days

    async def _load(self, today: dt.date) -> None:
        texts: list[str] = []
        covers_future = True
        try:
            texts = await self._source.trading_calendar("SH")
        except QmtgateError:
            covers_future = False
        if not texts:
            covers_future = False
            stamps = await self._source.trading_dates("SH")
            days = sorted({date_of_ms(ms) for ms in stamps})
        else:
            days = sorted({dt.datetime.strptime(str(t), "%Y%m%d").date() for t in texts})
        self._days = days
        self._ordinals = [d.toordinal() for d in days]
        self._loaded_at = time.monotonic()
        self._loaded_for = today
        self._covers_future = covers_future

    async def bounds(self) -> tuple[dt.date, dt.date]:
        """First and last day the calendar can answer for (the last is Dec 31 of the holiday table's year)."""
        days = await self.days()
        if not days:
            raise InvalidDate("the source has no trading calendar", {})
        last = dt.date(days[-1].year, 12, 31) if self._covers_future else days[-1]
        return days[0], last

    async def check(self, day: dt.date) -> None:
        first, last = await self.bounds()
        if not first <= day <= last:
            raise InvalidDate(
                f"{day.isoformat()} is outside the trading calendar ({first.isoformat()} .. {last.isoformat()})",
                {"date": day.isoformat(), "first": first.isoformat(), "last": last.isoformat()},
            )

    async def is_trading_day(self, day: dt.date) -> bool:
        await self.days()
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        return i < len(self._ordinals) and self._ordinals[i] == day.toordinal()

    async def closed_on(self, day: dt.date) -> bool:
        """Whether ``day`` is known for certain to have no session (a weekend or an exchange holiday in
        the source's calendar of coming days). False when the calendar cannot say: a source without
        the holiday table knows past sessions only, and today is not among them until it is over."""
        try:
            days = await self.days()
        except QmtgateError:
            return False
        if not self._covers_future or not days or not days[0] <= day <= dt.date(days[-1].year, 12, 31):
            return False
        return not await self.is_trading_day(day)

    async def between(self, lo: dt.date | None, hi: dt.date | None) -> list[dt.date]:
        days = await self.days()
        a = 0 if lo is None else bisect.bisect_left(self._ordinals, lo.toordinal())
        b = len(days) if hi is None else bisect.bisect_right(self._ordinals, hi.toordinal())
        return days[a:b]

    async def shift(self, day: dt.date, n: int) -> dt.date | None:
        """The n-th trading day after ``day`` (n > 0) or before it (n < 0); None beyond the calendar."""
        days = await self.days()
        if n > 0:
            i = bisect.bisect_right(self._ordinals, day.toordinal()) + n - 1
        else:
            i = bisect.bisect_left(self._ordinals, day.toordinal()) + n
        return days[i] if 0 <= i < len(days) else None

    async def session(self) -> SessionState:
        now = self._source.now_ms()
        local = dt.datetime.fromtimestamp(now / 1000, CST)
        today = local.date()
        clock = local.time()
        trading_today = await self.is_trading_day(today)
        forming: dt.date | None = None
        if trading_today and clock >= SESSION_CLOSE:
            last_complete: dt.date | None = today
        else:
            last_complete = await self.shift(today, -1)
            if trading_today and clock >= SESSION_OPEN:
                forming = today
        return SessionState(now_ms=now, today=today, forming=forming, last_complete=last_complete)

    async def sessions_before(self, day: dt.date, n: int) -> dt.date:
        """The trading day ``n`` sessions before ``day`` (inclusive counting), clamped to the first one."""
        days = await self.days()
        i = bisect.bisect_right(self._ordinals, day.toordinal()) - max(n, 1)
        return days[max(i, 0)] if days else day


def day_end_ms(day: dt.date) -> int:
    """Epoch ms of 23:59:59.999 Asia/Shanghai on ``day``."""
    return day_start_ms(day) + 86_400_000 - 1
