"""The session clock, trading-day arithmetic and the download ledger."""

from __future__ import annotations

import datetime as dt

import pytest

from qmtgate.errors import InvalidDate
from qmtgate.source.calendar import CalendarService
from qmtgate.source.ledger import DownloadLedger

pytestmark = pytest.mark.anyio

CST = dt.timezone(dt.timedelta(hours=8))
D = dt.date


class StubSource:
    """Just the calls CalendarService makes."""

    def __init__(self, when: dt.datetime, days: list[str], with_calendar: bool = True) -> None:
        self.when = when
        self.days = days
        self.with_calendar = with_calendar

    def now_ms(self) -> int:
        return int(self.when.timestamp() * 1000)

    async def trading_calendar(self, market: str, start: str = "", end: str = "") -> list[str]:
        if not self.with_calendar:
            from qmtgate.errors import Unsupported

            raise Unsupported("no calendar")
        return list(self.days)

    async def trading_dates(self, market: str, start: str = "", end: str = "", count: int = -1) -> list[int]:
        return [
            int(dt.datetime.strptime(d, "%Y%m%d").replace(tzinfo=CST).timestamp() * 1000) for d in self.days
        ]


DAYS = ["20250102", "20250103", "20250106", "20250107", "20250108", "20250109", "20250110", "20250113"]


@pytest.mark.parametrize(
    ("when", "forming", "last_complete"),
    [
        (dt.datetime(2025, 1, 10, 9, 0), None, D(2025, 1, 9)),  # before the call auction
        (dt.datetime(2025, 1, 10, 9, 15), D(2025, 1, 10), D(2025, 1, 9)),
        (dt.datetime(2025, 1, 10, 14, 59, 59), D(2025, 1, 10), D(2025, 1, 9)),
        (dt.datetime(2025, 1, 10, 15, 0), None, D(2025, 1, 10)),  # the closing match has happened
        (dt.datetime(2025, 1, 11, 12, 0), None, D(2025, 1, 10)),  # Saturday
    ],
)
async def test_session_state(when: dt.datetime, forming: dt.date | None, last_complete: dt.date) -> None:
    calendar = CalendarService(StubSource(when.replace(tzinfo=CST), DAYS))  # type: ignore[arg-type]
    state = await calendar.session()
    assert (state.forming, state.last_complete, state.today) == (forming, last_complete, when.date())


async def test_trading_day_arithmetic() -> None:
    calendar = CalendarService(StubSource(dt.datetime(2025, 1, 10, 10, tzinfo=CST), DAYS))  # type: ignore[arg-type]
    assert await calendar.is_trading_day(D(2025, 1, 10)) and not await calendar.is_trading_day(D(2025, 1, 4))
    assert await calendar.shift(D(2025, 1, 4), 1) == D(2025, 1, 6)
    assert await calendar.shift(D(2025, 1, 4), -1) == D(2025, 1, 3)
    assert await calendar.shift(D(2025, 1, 6), 2) == D(2025, 1, 8)
    assert await calendar.shift(D(2025, 1, 13), 1) is None
    assert await calendar.between(D(2025, 1, 4), D(2025, 1, 7)) == [D(2025, 1, 6), D(2025, 1, 7)]
    assert await calendar.sessions_before(D(2025, 1, 9), 3) == D(2025, 1, 7)
    assert await calendar.bounds() == (D(2025, 1, 2), D(2025, 12, 31))
    with pytest.raises(InvalidDate):
        await calendar.check(D(2026, 1, 5))


async def test_without_a_trading_calendar_only_past_sessions_are_known() -> None:
    source = StubSource(dt.datetime(2025, 1, 10, 10, tzinfo=CST), DAYS, with_calendar=False)
    calendar = CalendarService(source)  # type: ignore[arg-type]
    assert (await calendar.days())[-1] == D(2025, 1, 13)
    assert (await calendar.bounds())[1] == D(2025, 1, 13)


def test_ledger_missing_ranges_and_versions() -> None:
    ledger = DownloadLedger()
    assert ledger.missing("600000.SH", "1m", D(2025, 1, 6), D(2025, 1, 9)) == [(D(2025, 1, 6), D(2025, 1, 9))]
    ledger.record("600000.SH", "1m", D(2025, 1, 6), D(2025, 1, 9))
    first = ledger.version("600000.SH", "1m")
    assert ledger.missing("600000.SH", "1m", D(2025, 1, 7), D(2025, 1, 9)) == []
    assert ledger.missing("600000.SH", "1m", D(2025, 1, 2), D(2025, 1, 10)) == [
        (D(2025, 1, 2), D(2025, 1, 6)),
        (D(2025, 1, 9), D(2025, 1, 10)),
    ]
    ledger.record("600000.SH", "1m", D(2025, 1, 9), D(2025, 1, 10))
    coverage = ledger.coverage("600000.SH", "1m")
    assert coverage is not None and (coverage.lo, coverage.hi) == (D(2025, 1, 6), D(2025, 1, 10))
    assert ledger.version("600000.SH", "1m") > first
    # "From the beginning" (daily history) covers any start.
    ledger.record("600000.SH", "1d", None, D(2025, 1, 9))
    assert ledger.missing("600000.SH", "1d", None, D(2025, 1, 9)) == []
    assert ledger.missing("600000.SH", "1d", D(2020, 1, 1), D(2025, 1, 10)) == [
        (D(2025, 1, 9), D(2025, 1, 10))
    ]
    assert ledger.version("000001.SZ", "1d") == 0


async def test_closed_on_says_yes_only_when_the_calendar_knows() -> None:
    with_holidays = CalendarService(StubSource(dt.datetime(2025, 1, 10, 10, tzinfo=CST), DAYS))  # type: ignore[arg-type]
    assert await with_holidays.closed_on(D(2025, 1, 4))  # a Saturday
    assert not await with_holidays.closed_on(
        D(2025, 1, 1)
    )  # New Year's Day: before the first day listed, unknown
    assert not await with_holidays.closed_on(D(2025, 1, 10))
    assert await with_holidays.closed_on(D(2025, 1, 14))  # not in the table of coming days: no session
    assert not await with_holidays.closed_on(D(2026, 1, 5))  # past the year the table covers: unknown
    past_only = CalendarService(  # type: ignore[arg-type]
        StubSource(dt.datetime(2025, 1, 14, 10, tzinfo=CST), DAYS, with_calendar=False)
    )
    assert not await past_only.closed_on(D(2025, 1, 14))  # today is not a past session yet: unknown, open
    assert not await past_only.closed_on(D(2025, 1, 11))  # even a known gap: this source cannot promise
