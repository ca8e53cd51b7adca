"""Validation at the edge: codes, periods, dates, fields and batch limits, before anything reaches the source.

Bad input never travels upstream: xtquant answers silently empty for a malformed code or an unknown field,
so every parameter is checked here and rejected with the error envelope (422 for a value the API cannot
accept, 404 for a well-formed code the source does not know).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qmtgate.codes import KINDS, normalize_codes
from qmtgate.errors import InvalidCode, InvalidDate, InvalidField, TooLarge
from qmtgate.source.base import DIVIDEND_TYPES, HISTORY_PERIODS, KLINE_PERIODS
from qmtgate.source.convert import CST, day_start_ms

# Enums give OpenAPI (and clients) the exact allowed values; a value outside them is a 422.
KlinePeriod = enum.Enum("KlinePeriod", {p: p for p in KLINE_PERIODS}, type=str)  # type: ignore[misc]
KlinePeriod.__doc__ = "K-line period, xtquant spelling: 1m 5m 15m 30m 60m 1h 1d 1w 1mon 1q 1hy 1y."
HistoryPeriod = enum.Enum("HistoryPeriod", {p: p for p in HISTORY_PERIODS}, type=str)  # type: ignore[misc]
HistoryPeriod.__doc__ = "K-line period or tick (L1 snapshots)."
DividendType = enum.Enum("DividendType", {d: d for d in DIVIDEND_TYPES}, type=str)  # type: ignore[misc]
DividendType.__doc__ = "Price adjustment: none, front (前复权), back (后复权), front_ratio, back_ratio."


class Market(str, enum.Enum):
    SH = "SH"
    SZ = "SZ"
    BJ = "BJ"


Kind = enum.Enum("Kind", {k: k for k in KINDS}, type=str)  # type: ignore[misc]
Kind.__doc__ = "Instrument class by the exchange numbering plan."

#: Oldest and newest dates the API accepts (A-share trading began in December 1990).
FIRST_DAY = dt.date(1990, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)

_DIGITS8 = re.compile(r"^[0-9]{8}$")
_DIGITS14 = re.compile(r"^[0-9]{14}$")


def split_list(values: Iterable[str] | str | None) -> list[str]:
    """``['a,b', 'c']`` or ``'a,b,c'`` -> ``['a', 'b', 'c']`` (blanks dropped)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def parse_codes(values: Iterable[str] | str | None, *, limit: int, param: str = "codes") -> list[str]:
    """Normalize a code list (every spelling clients use); reject empty lists and lists over ``limit``."""
    raw = split_list(values)
    if not raw:
        raise InvalidCode(f"{param} is empty; give at least one security code, e.g. 600000.SH", {param: []})
    codes = normalize_codes(raw)
    if len(codes) > limit:
        raise TooLarge(
            f"too many codes: {len(codes)} > {limit} per request", {"count": len(codes), "limit": limit}
        )
    return codes


@dataclass(frozen=True)
class Moment:
    ms: int  # epoch milliseconds UTC
    date_only: bool

    @property
    def day(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.ms / 1000, CST).date()


def parse_moment(text: str | None, param: str, *, end: bool = False) -> Moment | None:
    """Parse ``YYYYMMDD``, ``YYYYMMDDHHMMSS``, ``YYYY-MM-DD`` or ISO 8601 (Asia/Shanghai unless it has an offset).

    A bare date means the whole day: 00:00:00 for a start, 23:59:59.999 for an end.
    """
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    date_only = False
    try:
        if _DIGITS8.match(value):
            moment = dt.datetime.strptime(value, "%Y%m%d")
            date_only = True
        elif _DIGITS14.match(value):
            moment = dt.datetime.strptime(value, "%Y%m%d%H%M%S")
        else:
            iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
            moment = dt.datetime.fromisoformat(iso)
            date_only = len(value) == 10
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=CST)
        day = moment.astimezone(CST).date()
    except (ValueError, OverflowError):
        raise InvalidDate(
            f"invalid {param} {value!r}; use YYYYMMDD, YYYYMMDDHHMMSS, YYYY-MM-DD or ISO 8601 "
            "(Asia/Shanghai unless an offset is given)",
            {param: value},
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidDate(
            f"{param} {value!r} is outside {FIRST_DAY.isoformat()} .. {LAST_DAY.isoformat()}", {param: value}
        )
    whole_day = 86_400_000 - 1 if end else 0
    ms = day_start_ms(day) + whole_day if date_only else int(moment.timestamp() * 1000)
    return Moment(ms, date_only)


def parse_range(
    start: str | None, end: str | None, *, start_param: str = "start", end_param: str = "end"
) -> tuple[Moment | None, Moment | None]:
    lo = parse_moment(start, start_param)
    hi = parse_moment(end, end_param, end=True)
    if lo is not None and hi is not None and lo.ms > hi.ms:
        raise InvalidDate(
            f"{start_param} {start!r} is after {end_param} {end!r}", {start_param: start, end_param: end}
        )
    return lo, hi


def parse_day(text: str, param: str = "date") -> dt.date:
    """A required date; blank text (``%20``, a tab, an em space) is a 422 like any other bad date."""
    moment = parse_moment(text, param)
    if moment is None:
        raise InvalidDate(f"{param} is blank; use YYYYMMDD, YYYY-MM-DD or ISO 8601", {param: text})
    return moment.day


def parse_fields(value: str | Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """Comma-separated field names -> list in the schema's order; unknown names are a 422."""
    names = split_list(value)
    if not names:
        return list(allowed)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise InvalidField(
            f"unknown field(s) {', '.join(map(repr, unknown))}; available: {', '.join(allowed)}",
            {"fields": unknown, "available": list(allowed)},
        )
    wanted = set(names)
    return [name for name in allowed if name in wanted]
